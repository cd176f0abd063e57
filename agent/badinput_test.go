package agent

// The agent-level part of the project's bad-input corpus: one running
// host with every service, through mosquitto, fed hostile probes over UDP
// and malformed or invalid requests over MQTT. Each request is refused
// with a result naming its code and field; no probe is answered or
// reported; and the state on disk and every retained topic of the host
// are the same after as before. The services' own corpora (their
// config_test.go files) and the configuration file's (cmd/rollcall) are
// the rest of it.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/sensors/ain"
	"github.com/rollcall/rollcall/sensors/dac"
	"github.com/rollcall/rollcall/sensors/dht22"
	"github.com/rollcall/rollcall/sensors/sonar"
	"github.com/rollcall/rollcall/services"
)

// badRequest is one request the host must refuse.
type badRequest struct {
	name    string
	service string
	suffix  string // setup, set/<name>, get[/...], control
	payload string
	code    string
	field   string // "" when the refusal is about the whole payload
}

// badRequests is the corpus of requests, every service's.
func badRequests() []badRequest {
	huge := `{"pad":"` + strings.Repeat("x", services.MaxPayload) + `"}`
	deep := strings.Repeat("[", 200) + strings.Repeat("]", 200)
	bomb := "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	var rs []badRequest
	// Every service's setup parser gets the same shapeless payloads.
	for _, svc := range []string{gpio.Name, ain.Name, dac.Name, dht22.Name, sonar.Name} {
		for _, c := range []struct{ name, payload, code string }{
			{"malformed JSON", `{"x":`, services.CodeMalformed},
			{"a list", `[1,2]`, services.CodeMalformed},
			{"a string", `"setup"`, services.CodeMalformed},
			{"a number", `42`, services.CodeMalformed},
			{"true", `true`, services.CodeMalformed},
			{"YAML garbage", "a: [\n", services.CodeMalformed},
			{"unknown member", `{"relays":[]}`, services.CodeMalformed},
			{"over the size limit", huge, services.CodeTooLarge},
			{"nested 200 deep", deep, services.CodeMalformed},
			{"alias bomb", bomb, services.CodeMalformed},
			{"binary", "\x00\x01\xff\xfe", services.CodeMalformed},
			{"merge not a bool", `{"merge":"yes"}`, services.CodeMalformed},
		} {
			field := ""
			switch c.name {
			case "unknown member":
				field = "relays"
			case "merge not a bool":
				field = "merge"
			}
			rs = append(rs, badRequest{name: svc + " setup " + c.name, service: svc, suffix: "setup", payload: c.payload, code: c.code, field: field})
		}
		for _, c := range []struct{ name, payload, code string }{
			{"control not an object", `[1]`, services.CodeInvalid},
			{"control unknown command", `{"cmd":"reboot"}`, services.CodeInvalid},
			{"control command missing", `{"id":1}`, services.CodeMalformed},
			{"control command a number", `{"cmd":1}`, services.CodeMalformed},
			{"control unknown member", `{"cmd":"estop","force":true}`, services.CodeMalformed},
		} {
			field := "cmd"
			if c.name == "control unknown member" {
				field = "force"
			}
			rs = append(rs, badRequest{name: svc + " " + c.name, service: svc, suffix: "control", payload: c.payload, code: c.code, field: field})
		}
		rs = append(rs,
			badRequest{name: svc + " get of no such kind", service: svc, suffix: "get/relay", payload: `{}`, code: services.CodeNotFound},
			badRequest{name: svc + " get of no such input", service: svc, suffix: "get/input/nosuch", payload: `{}`, code: services.CodeNotFound},
		)
	}
	g := func(name, payload, code, field string) badRequest {
		return badRequest{name: "gpio setup " + name, service: gpio.Name, suffix: "setup", payload: payload, code: code, field: field}
	}
	rs = append(rs,
		g("pin a float", `{"output":[{"name":"lamp","pin":23.5}]}`, services.CodeMalformed, "output[0].pin"),
		g("pin a bool", `{"output":[{"name":"lamp","pin":true}]}`, services.CodeMalformed, "output[0].pin"),
		g("pin a string", `{"output":[{"name":"lamp","pin":"23"}]}`, services.CodeMalformed, "output[0].pin"),
		g("pin negative", `{"output":[{"name":"lamp","pin":-1}]}`, services.CodeInvalid, "output[0].pin"),
		g("pin off the header", `{"output":[{"name":"lamp","pin":28}]}`, services.CodeInvalid, "output[0].pin"),
		g("pin overflowing", `{"output":[{"name":"lamp","pin":99999999999999999999}]}`, services.CodeMalformed, "output[0].pin"),
		g("pin missing", `{"output":[{"name":"lamp"}]}`, services.CodeMalformed, "output[0].pin"),
		g("name missing", `{"output":[{"pin":23}]}`, services.CodeMalformed, "output[0].name"),
		g("name with a slash", `{"output":[{"name":"a/b","pin":23}]}`, services.CodeInvalid, "output[0].name"),
		g("name with a wildcard", `{"output":[{"name":"a+","pin":23}]}`, services.CodeInvalid, "output[0].name"),
		g("name empty", `{"output":[{"name":"","pin":23}]}`, services.CodeInvalid, "output[0].name"),
		g("name case-variant key", `{"output":[{"Name":"lamp","pin":23}]}`, services.CodeMalformed, "output[0].Name"),
		g("init 2", `{"output":[{"name":"lamp","pin":23,"init":2}]}`, services.CodeInvalid, "output[0].init"),
		g("pull sideways", `{"input":[{"name":"b","pin":22,"pull":"sideways"}]}`, services.CodeInvalid, "input[0].pull"),
		g("edge unknown", `{"input":[{"name":"b","pin":22,"edge":"middle"}]}`, services.CodeInvalid, "input[0].edge"),
		g("debounce negative", `{"input":[{"name":"b","pin":22,"debounce":"-5ms"}]}`, services.CodeInvalid, "input[0].debounce"),
		g("debounce not a duration", `{"input":[{"name":"b","pin":22,"debounce":"soon"}]}`, services.CodeMalformed, "input[0].debounce"),
		g("on_change at its own get", `{"input":[{"name":"b","pin":22,"on_change":"pi1/gpio/get"}]}`, services.CodeInvalid, "input[0].on_change"),
		g("on_change at a status", `{"input":[{"name":"b","pin":22,"on_change":"pi2/status"}]}`, services.CodeInvalid, "input[0].on_change"),
		g("on_change at a description", `{"input":[{"name":"b","pin":22,"on_change":"pi2/description"}]}`, services.CodeInvalid, "input[0].on_change"),
		g("on_change at the inventory", `{"input":[{"name":"b","pin":22,"on_change":"rollcall/inventory"}]}`, services.CodeInvalid, "input[0].on_change"),
		g("on_change at a setup", `{"input":[{"name":"b","pin":22,"on_change":"pi2/gpio/setup"}]}`, services.CodeInvalid, "input[0].on_change"),
		g("on_change with a wildcard", `{"input":[{"name":"b","pin":22,"on_change":"pi2/gpio/set/#"}]}`, services.CodeInvalid, "input[0].on_change"),
		g("follow a wildcard", `{"output":[{"name":"lamp","pin":23,"follow":"pi2/gpio/input/+"}]}`, services.CodeInvalid, "output[0].follow"),
		g("duplicate pin", `{"output":[{"name":"a","pin":23},{"name":"b","pin":23}]}`, services.CodeConflict, "output[1].pin"),
		g("duplicate name", `{"output":[{"name":"a","pin":23},{"name":"a","pin":24}]}`, services.CodeConflict, "output[1].name"),
		g("pin of the dht22", `{"output":[{"name":"a","pin":4}]}`, services.CodeConflict, "output[0].pin"),
		g("pin of the sonar", `{"input":[{"name":"a","pin":6}]}`, services.CodeConflict, "input[0].pin"),
		g("pwm period negative", `{"pwm":[{"name":"s","pin":18,"period":-20000,"init":10}]}`, services.CodeInvalid, "pwm[0].period"),
		g("pwm duty over 100", `{"pwm":[{"name":"s","pin":18,"init":101}]}`, services.CodeInvalid, "pwm[0].init"),
		g("failsafe_after negative", `{"failsafe_after":"-1s"}`, services.CodeInvalid, "failsafe_after"),
		g("failsafe_after a number word", `{"failsafe_after":"ten"}`, services.CodeMalformed, "failsafe_after"),
		g("wiring to itself", `{"wiring":[{"from":23,"to":23}]}`, services.CodeInvalid, "wiring[0].to"),
	)
	s := func(name, value, code, field string) badRequest {
		return badRequest{name: "gpio set " + name, service: gpio.Name, suffix: "set/lamp", payload: value, code: code, field: field}
	}
	rs = append(rs,
		s("empty", ``, services.CodeMalformed, ""),
		s("2", `2`, services.CodeInvalid, "value"),
		s("-1", `-1`, services.CodeInvalid, "value"),
		s("0.5", `0.5`, services.CodeInvalid, "value"),
		s("a word", `maybe`, services.CodeMalformed, "value"),
		s("NaN", `NaN`, services.CodeMalformed, "value"),
		s("Inf", `Inf`, services.CodeMalformed, "value"),
		s("1e400", `1e400`, services.CodeMalformed, "value"),
		s("value missing", `{"for":"1s"}`, services.CodeMalformed, "value"),
		s("value a list", `{"value":[1]}`, services.CodeMalformed, "value"),
		s("for negative", `{"value":1,"for":"-1s"}`, services.CodeInvalid, "for"),
		s("for over the limit", `{"value":1,"for":"9999h"}`, services.CodeInvalid, "for"),
		s("for not a duration", `{"value":1,"for":"later"}`, services.CodeMalformed, "for"),
		s("period on a plain output", `{"value":1,"period":20000}`, services.CodeInvalid, "period"),
		s("unknown member", `{"value":1,"colour":"red"}`, services.CodeMalformed, "colour"),
		s("malformed JSON", `{"value":`, services.CodeMalformed, ""),
		badRequest{name: "gpio set of no such output", service: gpio.Name, suffix: "set/nosuch", payload: `1`, code: services.CodeNotFound},
		badRequest{name: "gpio set of an input", service: gpio.Name, suffix: "set/button", payload: `1`, code: services.CodeNotFound},
	)
	d := func(name, sensor, code, field string) badRequest {
		return badRequest{name: "dht22 setup " + name, service: dht22.Name, suffix: "setup", payload: `{"sensors":[` + sensor + `]}`, code: code, field: field}
	}
	rs = append(rs,
		d("pin of the gpio", `{"name":"air","pin":23}`, services.CodeConflict, "sensors[0].pin"),
		d("pin of the sonar", `{"name":"air","pin":5}`, services.CodeConflict, "sensors[0].pin"),
		d("pin a float", `{"name":"air","pin":4.5}`, services.CodeMalformed, "sensors[0].pin"),
		d("interval too short", `{"name":"air","pin":4,"interval":"100ms"}`, services.CodeInvalid, "sensors[0].interval"),
		d("name too long", `{"name":"`+strings.Repeat("n", 100)+`","pin":4}`, services.CodeInvalid, "sensors[0].name"),
		d("two on one pin", `{"name":"a","pin":4},{"name":"b","pin":4}`, services.CodeConflict, "sensors[1].pin"),
		d("driver unknown", `{"name":"air","pin":4,"driver":"dht11"}`, services.CodeInvalid, "sensors[0].driver"),
		d("deadband negative", `{"name":"air","pin":4,"deadband":{"humidity":-1}}`, services.CodeInvalid, "sensors[0].deadband.humidity"),
	)
	r := func(name, ranger, code, field string) badRequest {
		return badRequest{name: "sonar setup " + name, service: sonar.Name, suffix: "setup", payload: `{"rangers":[` + ranger + `]}`, code: code, field: field}
	}
	rs = append(rs,
		r("trigger is echo", `{"name":"f","trigger":5,"echo":5}`, services.CodeConflict, "rangers[0].echo"),
		r("trigger of the gpio", `{"name":"f","trigger":25,"echo":6}`, services.CodeConflict, "rangers[0].trigger"),
		r("echo of the dht22", `{"name":"f","trigger":5,"echo":4}`, services.CodeConflict, "rangers[0].echo"),
		r("samples zero or less", `{"name":"f","trigger":5,"echo":6,"samples":-1}`, services.CodeInvalid, "rangers[0].samples"),
		r("samples too many", `{"name":"f","trigger":5,"echo":6,"samples":1000}`, services.CodeInvalid, "rangers[0].samples"),
		r("max beyond the range", `{"name":"f","trigger":5,"echo":6,"max":50}`, services.CodeInvalid, "rangers[0].max"),
		r("temperature of no sensor", `{"name":"f","trigger":5,"echo":6,"temperature":"pi2/+/air"}`, services.CodeInvalid, "rangers[0].temperature"),
		r("sim target at a status", `{"name":"f","trigger":5,"echo":6,"sim_target":{"topic":"pi2/status","high":1,"far":2}}`, services.CodeInvalid, "rangers[0].sim_target.topic"),
		r("echo missing", `{"name":"f","trigger":5}`, services.CodeMalformed, "rangers[0].echo"),
	)
	v := func(name, value, code, field string) badRequest {
		return badRequest{name: "dac set " + name, service: dac.Name, suffix: "set/level", payload: value, code: code, field: field}
	}
	rs = append(rs,
		v("over vref", `4`, services.CodeInvalid, "value"),
		v("negative", `-0.5`, services.CodeInvalid, "value"),
		v("a word", `high`, services.CodeMalformed, "value"),
		v("NaN", `{"value":"NaN"}`, services.CodeMalformed, "value"),
		v("raw over the code range", `{"raw":70000}`, services.CodeInvalid, "raw"),
		v("raw and value both", `{"raw":1,"value":1}`, services.CodeInvalid, "raw"),
		v("unknown member", `{"value":1,"volts":1}`, services.CodeMalformed, "volts"),
		badRequest{name: "dac set of no such output", service: dac.Name, suffix: "set/nosuch", payload: `1`, code: services.CodeNotFound},
	)
	a := func(name, channel, code, field string) badRequest {
		return badRequest{name: "ain setup " + name, service: ain.Name, suffix: "setup", payload: `{"chips":[{"name":"adc","chip":"sim"}],"channels":[` + channel + `]}`, code: code, field: field}
	}
	rs = append(rs,
		a("channel off the chip", `{"name":"x","channel":99}`, services.CodeInvalid, "channels[0].channel"),
		a("interval under 1 ms", `{"name":"x","channel":0,"interval":"100us"}`, services.CodeInvalid, "channels[0].interval"),
		a("deadband negative", `{"name":"x","channel":0,"deadband":-1}`, services.CodeInvalid, "channels[0].deadband"),
		a("chip unknown", `{"name":"x","channel":0,"chip":"nosuch"}`, services.CodeInvalid, "channels[0].chip"),
		a("two with one name", `{"name":"x","channel":0},{"name":"x","channel":1}`, services.CodeConflict, "channels[1].name"),
	)
	return rs
}

// badProbes are datagrams the monitor must drop without a report or a
// reply.
func badProbes() []struct{ name, datagram string } {
	probe := func(topic, replyto string) string {
		return fmt.Sprintf(`{"cmd":"status","replyto":%q,"topic":%q,"id":%d}`, replyto, topic, time.Now().UnixNano()%1e9)
	}
	return []struct{ name, datagram string }{
		{"not JSON", `who are you`},
		{"empty object", `{}`},
		{"null", `null`},
		{"a list", `[{"cmd":"status"}]`},
		{"binary", "\x00\xff\xfe\x01"},
		{"truncated", `{"cmd":"status","replyto":"pibot01","topic":"/stat/data","id":`},
		{"no topic", `{"cmd":"status","replyto":"pibot01","id":1}`},
		{"no replyto", `{"cmd":"status","topic":"/stat/data","id":2}`},
		{"id a string", `{"cmd":"status","replyto":"pibot01","topic":"/stat/data","id":"3"}`},
		{"id overflowing", `{"cmd":"status","replyto":"pibot01","topic":"/stat/data","id":1e400}`},
		{"unknown command", `{"cmd":"reboot","replyto":"pibot01","topic":"/stat/data","id":4}`},
		{"oversize", `{"cmd":"status","replyto":"pibot01","topic":"/stat/data","id":5,"pad":"` + strings.Repeat("x", 5000) + `"}`},
		{"deeply nested", strings.Repeat("[", 3000) + strings.Repeat("]", 3000)},
		{"reply topic a host's description", probe("pi1/description", "pibot01")},
		{"reply topic another host's description", probe("otherpi/description", "pibot01")},
		{"reply topic a status", probe("pi1/status", "pibot01")},
		{"reply topic the summary", probe("pi1/services", "pibot01")},
		{"reply topic a setup", probe("pi1/gpio/setup", "pibot01")},
		{"reply topic a set", probe("pi1/gpio/set/lamp", "pibot01")},
		{"reply topic a control", probe("pi1/gpio/control", "pibot01")},
		{"reply topic an output", probe("pi1/gpio/output/lamp", "pibot01")},
		{"reply topic a result", probe("pi1/gpio/result", "pibot01")},
		{"reply topic the inventory", probe("rollcall/inventory", "pibot01")},
		{"reply topic a wildcard", probe("/stat/#", "pibot01")},
		{"reply topic a plus", probe("/stat/+/data", "pibot01")},
		{"reply topic outside the prefixes", probe("home/lights/set", "pibot01")},
		{"reply topic empty", probe("", "pibot01")},
		{"reply topic with a NUL", probe("/stat/da\x00ta", "pibot01")},
		{"replyto a topic", probe("/stat/data", "pi1/gpio")},
		{"replyto a wildcard", probe("/stat/data", "#")},
		{"jitter negative", `{"cmd":"status","replyto":"pibot01","topic":"/stat/data","id":6,"jitter_ms":-5}`},
		{"heard not a list", `{"cmd":"status","replyto":"pibot01","topic":"/stat/data","id":7,"heard":"all"}`},
	}
}

// TestBadInputChangesNothing runs the corpus against pi1 and compares its
// state directory and retained topics before and after.
func TestBadInputChangesNothing(t *testing.T) {
	broker := mosquitto(t)
	c := newTestCluster(t, broker)
	cfg := c.config("pi1")
	cfg.Services = []string{gpio.Name, ain.Name, dac.Name, dht22.Name, sonar.Name}
	cfg.Blocks[dht22.Name] = &dht22.Config{Sensors: []dht22.SensorConfig{{Name: "air", Pin: 4}}}
	cfg.Blocks[sonar.Name] = &sonar.Config{Rangers: []sonar.RangerConfig{{Name: "front", Trigger: 5, Echo: 6,
		SimTarget: sonar.SimTarget{Topic: "pi1/gpio/output/lamp", High: 1, Far: 2}}}}
	a := c.start(cfg)
	u := newMQTTUser(t, broker, "pi1")
	for _, svc := range cfg.Services {
		u.awaitService(svc)
	}
	// Something of each on disk: a setup of each service, saved.
	for svc, setup := range map[string]string{
		gpio.Name:  `{"output":[{"name":"pump_drive","pin":25},{"name":"lamp","pin":23,"init":1}],"input":[{"name":"button","pin":22,"pull":"down"}]}`,
		dht22.Name: `{"sensors":[{"name":"air","pin":4,"interval":"3s"}]}`,
		sonar.Name: `{"rangers":[{"name":"front","trigger":5,"echo":6,"samples":3,"sim_target":{"topic":"pi1/gpio/output/lamp","high":1,"far":2}}]}`,
		ain.Name:   `{"chips":[{"name":"adc","chip":"sim"}],"channels":[{"name":"light","chip":"adc","channel":0,"interval":"2s","deadband":0.05}]}`,
		dac.Name:   `{"chips":[{"name":"dac0","chip":"sim"}],"outputs":[{"name":"level","chip":"dac0","init":1}]}`,
	} {
		if r := u.ask(svc, "setup", setup); r.Status != "ok" {
			t.Fatalf("%s setup: %+v", svc, r.problems())
		}
	}
	// The setups' descriptions and version file are written after their
	// results: the state is taken once it holds still.
	var before snapshot
	waitFor(t, 10*time.Second, "the host's state to settle", func() bool {
		s1 := hostSnapshot(t, c, cfg.StateDir)
		time.Sleep(300 * time.Millisecond)
		before = hostSnapshot(t, c, cfg.StateDir)
		return maps.Equal(s1.files, before.files) && maps.Equal(s1.retained, before.retained)
	})
	if len(before.files) < len(cfg.Services) || len(before.retained) < 5 {
		t.Fatalf("nothing to compare: files %v, retained %v", slices.Sorted(maps.Keys(before.files)), slices.Sorted(maps.Keys(before.retained)))
	}

	// Everything published from here on, on any topic.
	all := newTopicLog(t, broker)

	t.Run("probes", func(t *testing.T) {
		conn, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", c.port))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		from := all.mark()
		for _, p := range badProbes() {
			if _, err := conn.Write([]byte(p.datagram)); err != nil {
				t.Fatalf("%s: %v", p.name, err)
			}
			time.Sleep(5 * time.Millisecond) // under the monitor's per-source rate
		}
		// A good probe after them, so that "nothing came" means dropped,
		// not late: its report is the first and only one.
		// The bad ones used up the source's rate: it is sent until the
		// monitor takes it.
		reported := func(m userMsg) bool {
			return m.topic == "/udp/report" && strings.Contains(m.payload, `"replyto":"badprobe"`)
		}
		for i := 0; ; i++ {
			good := fmt.Sprintf(`{"cmd":"status","replyto":"badprobe","topic":"/stat/badprobe","id":%d}`, 1000+i)
			conn.Write([]byte(good))
			if _, _, ok := all.u.tryAwait(from, 250*time.Millisecond, reported); ok {
				break
			}
			if i == 40 {
				t.Fatal("a good probe after the bad ones was never reported")
			}
		}
		for _, m := range all.since(from) {
			switch {
			case m.topic == "/udp/report" && strings.Contains(m.payload, `"replyto":"badprobe"`):
			case m.topic == "/stat/badprobe":
			case isReading(m.topic):
			default:
				t.Errorf("after the bad probes: %s %.120q", m.topic, m.payload)
			}
		}
	})

	t.Run("requests", func(t *testing.T) {
		for _, br := range badRequests() {
			t.Run(br.name, func(t *testing.T) {
				u.t = t
				defer func() { u.t = c.t }()
				r := u.ask(br.service, br.suffix, br.payload)
				if r.Status != "error" {
					t.Fatalf("status %q, want error; result %+v", r.Status, r)
				}
				ps := r.problems()
				if !slices.ContainsFunc(ps, func(e services.Error) bool {
					return e.Code == br.code && e.Field == br.field && e.Message != ""
				}) {
					t.Errorf("no problem with code %s and field %q in %+v", br.code, br.field, ps)
				}
				for _, e := range ps {
					if len(e.Message) > 2000 {
						t.Errorf("a %d-byte message: an error must not echo the payload", len(e.Message))
					}
				}
			})
		}
	})

	after := hostSnapshot(t, c, cfg.StateDir)
	before.compare(t, after)
	if err := a.Healthy(context.Background()); err != nil {
		t.Errorf("the agent is not healthy after the corpus: %v", err)
	}
	inv := c.sweep(cluster.SweepOptions{Expect: 1})
	if !inv.Sweep.Complete || len(inv.Hosts) != 1 || len(inv.Hosts[0].Services) != len(cfg.Services) {
		t.Errorf("a sweep after the corpus: complete %v, hosts %+v", inv.Sweep.Complete, inv.Hosts)
	}
	t.Logf("%d probes and %d requests refused; %d state files and %d retained topics unchanged",
		len(badProbes()), len(badRequests()), len(before.files), len(before.retained))
}

// isReading reports whether topic carries a value that changes by itself:
// a sensor's reading.
func isReading(topic string) bool {
	parts := strings.Split(topic, "/")
	return len(parts) >= 4 && parts[2] == "input" && (parts[1] == dht22.Name || parts[1] == sonar.Name || parts[1] == ain.Name)
}

// snapshot is a host's state directory and retained topics.
type snapshot struct {
	files    map[string]string
	retained map[string]string
}

// hostSnapshot reads the state directory and every retained topic of the
// host but its sensors' readings, with its description's "state" members
// left out where they carry readings.
func hostSnapshot(t *testing.T, c *testCluster, dir string) snapshot {
	t.Helper()
	s := snapshot{files: map[string]string{}, retained: map[string]string{}}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(d.Name(), ".tmp") {
			return err // a temporary is a write under way, removed at start
		}
		b, err := os.ReadFile(p)
		s.files[strings.TrimPrefix(p, dir)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := cluster.Dial(ctx, c.sweepConfig(), "snapshot", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got, err := cl.Retained(ctx, "pi1/#")
	if err != nil {
		t.Fatal(err)
	}
	for topic, b := range got {
		if isReading(topic) {
			continue
		}
		s.retained[topic] = string(withoutReadings(b))
	}
	return s
}

// withoutReadings drops the readings from a description: the "value" of
// each interface and the sensors' state.
func withoutReadings(b []byte) []byte {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	var strip func(any) any
	strip = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			delete(x, "value")
			if fn, _ := x["function"].(string); fn == dht22.Name || fn == sonar.Name || fn == ain.Name {
				delete(x, "state")
			}
			for k, e := range x {
				x[k] = strip(e)
			}
		case []any:
			for i, e := range x {
				x[i] = strip(e)
			}
		}
		return v
	}
	out, _ := json.Marshal(strip(v))
	return out
}

func (s snapshot) compare(t *testing.T, after snapshot) {
	t.Helper()
	for _, kind := range []struct {
		name          string
		before, after map[string]string
	}{{"state file", s.files, after.files}, {"retained topic", s.retained, after.retained}} {
		for k, v := range kind.before {
			w, ok := kind.after[k]
			switch {
			case !ok:
				t.Errorf("%s %s gone", kind.name, k)
			case v != w:
				t.Errorf("%s %s changed:\nbefore %s\nafter  %s", kind.name, k, v, w)
			}
		}
		for k, v := range kind.after {
			if _, ok := kind.before[k]; !ok {
				t.Errorf("%s %s appeared: %.200s", kind.name, k, v)
			}
		}
	}
}

// topicLog records every message on the broker.
type topicLog struct {
	u *mqttUser
}

func newTopicLog(t *testing.T, broker string) *topicLog {
	t.Helper()
	u := &mqttUser{t: t, broker: broker, more: make(chan struct{})}
	u.cl = connectUser(t, broker, userID("everything"))
	tk := u.cl.Subscribe("#", 0, func(_ paho.Client, m paho.Message) {
		if m.Retained() {
			return
		}
		u.mu.Lock()
		u.msgs = append(u.msgs, userMsg{m.Topic(), string(m.Payload()), false})
		close(u.more)
		u.more = make(chan struct{})
		u.mu.Unlock()
	})
	if !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("subscribe #: %v", tk.Error())
	}
	t.Cleanup(func() { u.cl.Disconnect(0) })
	return &topicLog{u: u}
}

func (l *topicLog) mark() int                { return l.u.mark() }
func (l *topicLog) since(from int) []userMsg { return l.u.since(from) }
func (l *topicLog) await(t *testing.T, from int, what string, match func(userMsg) bool) {
	t.Helper()
	l.u.t = t
	l.u.await(from, what, match)
}
