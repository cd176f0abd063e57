package agent

// The ain and dac services through a real broker, from a plain paho client
// as a user's own tool would drive them, with simulated chips: a setup,
// readings arriving, the deadband, a dac set and a dac following an ain
// reading, and addresses and pins refused naming both holders. Each
// scenario runs against the embedded broker and against mosquitto.

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/sensors/ain"
	"github.com/rollcall/rollcall/sensors/dac"
	"github.com/rollcall/rollcall/services"
)

// analogHost starts agent pi1 running gpio, ain and dac on simulated
// hardware, with i2c1 enabled, and a user watching its topics.
func analogHost(t *testing.T, broker string) *mqttUser {
	t.Helper()
	c := newTestCluster(t, broker)
	cfg := c.config("pi1")
	cfg.Buses = []string{"i2c1"}
	cfg.Services = []string{gpio.Name, ain.Name, dac.Name}
	cfg.Blocks[ain.Name] = &ain.Config{}
	cfg.Blocks[dac.Name] = &dac.Config{}
	c.start(cfg)
	u := newMQTTUser(t, broker, "pi1")
	for _, s := range cfg.Services {
		u.awaitService(s)
	}
	return u
}

// ask publishes payload to <host>/<service>/<topic> and returns the next
// result of that request's op (a read error of a channel is not it).
func (u *mqttUser) ask(service, topic, payload string) userResult {
	u.t.Helper()
	op, _, _ := strings.Cut(topic, "/")
	from := u.mark()
	u.publish(u.host+"/"+service+"/"+topic, []byte(payload))
	var r userResult
	u.await(from, "a "+op+" result from "+service, func(m userMsg) bool {
		return m.topic == u.host+"/"+service+"/result" && json.Unmarshal([]byte(m.payload), &r) == nil && r.Op == op
	})
	return r
}

// reading is an ain reading or a dac output value as a client decodes it.
type reading struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Raw   int64   `json:"raw"`
	Volts float64 `json:"volts"`
	TS    string  `json:"ts"`
}

// readings decodes the messages on topic from index from on.
func (u *mqttUser) readings(from int, topic string) []reading {
	u.t.Helper()
	var out []reading
	for _, m := range u.since(from) {
		if m.topic != topic {
			continue
		}
		var r reading
		if err := json.Unmarshal([]byte(m.payload), &r); err != nil {
			u.t.Fatalf("%s: %q: %v", topic, m.payload, err)
		}
		out = append(out, r)
	}
	return out
}

// ainChannels is the ain service's channel states, from a plain get.
func (u *mqttUser) ainChannels() map[string]ain.ChannelState {
	u.t.Helper()
	r := u.ask(ain.Name, "get", "")
	u.ok(r, services.OpGet)
	var gr struct {
		Description struct {
			State struct {
				Channels []ain.ChannelState `json:"channels"`
			} `json:"state"`
		} `json:"description"`
	}
	if err := json.Unmarshal(r.Data, &gr); err != nil {
		u.t.Fatalf("get result %s: %v", r.Data, err)
	}
	out := map[string]ain.ChannelState{}
	for _, c := range gr.Description.State.Channels {
		out[c.Name] = c
	}
	return out
}

// TestAINReadingsAndDeadband: a setup of channels alone is applied under
// --sim; readings arrive every interval as JSON with the plain value
// beside, both retained; a channel with a deadband wider than its range
// is read as often and published once.
func TestAINReadingsAndDeadband(t *testing.T) {
	forEachBroker(t, func(t *testing.T, broker string) {
		u := analogHost(t, broker)
		from := u.mark()
		r := u.ask(ain.Name, "setup", `{"id":"a1","channels":[
			{"name":"soil","channel":0,"interval":"20ms","scale":30.3,"unit":"%"},
			{"name":"calm","channel":1,"interval":"20ms","deadband":5}]}`)
		u.ok(r, services.OpSetup)
		// Five readings of soil, 20 ms apart at least. (await holds the
		// user's lock while it matches: count here, read them after.)
		n := 0
		u.await(from, "five soil readings", func(m userMsg) bool {
			if m.topic == "pi1/ain/input/soil" {
				n++
			}
			return n == 5
		})
		soil := u.readings(from, "pi1/ain/input/soil")
		for i, s := range soil {
			if s.Unit != "%" || s.Volts < 0 || s.Volts > 3.3 || abs(s.Value-s.Volts*30.3) > 1e-5 {
				t.Errorf("reading %d: %+v", i, s)
			}
			if i > 0 && s.TS <= soil[i-1].TS {
				t.Errorf("reading %d at %s, not after %s", i, s.TS, soil[i-1].TS)
			}
		}
		v := u.retained("pi1/ain/input/soil/value")
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			t.Errorf("retained plain value %q is not a number", v)
		}
		var rd reading
		if err := json.Unmarshal([]byte(u.retained("pi1/ain/input/soil")), &rd); err != nil || rd.Unit != "%" {
			t.Errorf("retained reading %+v: %v", rd, err)
		}

		// calm went through the broker once (counted before the gets
		// below, which republish it), and is read on, published no more.
		if n := len(u.readings(from, "pi1/ain/input/calm")); n != 1 {
			t.Errorf("calm published %d times through the broker, want 1", n)
		}
		var calm ain.ChannelState
		deadline := time.Now().Add(10 * time.Second)
		for calm = u.ainChannels()["calm"]; calm.Reads < 5 && time.Now().Before(deadline); calm = u.ainChannels()["calm"] {
		}
		if calm.Reads < 5 || calm.Published != 1 {
			t.Errorf("calm: %d reads, %d published; want 5 or more, and 1", calm.Reads, calm.Published)
		}
	})
}

// TestDACSetAndFollow: a dac output starts at init, takes a set in volts
// or raw, refuses one beyond its reference, and another output follows an
// ain reading of the same host; every value is retained.
func TestDACSetAndFollow(t *testing.T) {
	forEachBroker(t, func(t *testing.T, broker string) {
		u := analogHost(t, broker)
		u.ok(u.ask(ain.Name, "setup", `{"channels":[{"name":"soil","channel":0,"interval":"50ms"}]}`), services.OpSetup)
		from := u.mark()
		u.ok(u.ask(dac.Name, "setup", `{"outputs":[{"name":"level","init":1,"failsafe":0},
			{"name":"mirror","channel":1,"follow":"pi1/ain/input/soil"}]}`), services.OpSetup)
		u.awaitValue(from, "pi1/dac/output/level/value", "0.999829102") // 1241 of 4096 at 3.3 V

		from = u.mark()
		r := u.ask(dac.Name, "set/level", `{"value":2.5,"id":"s1"}`)
		u.ok(r, services.OpSet)
		var sr dac.SetResult
		if err := json.Unmarshal(r.Data, &sr); err != nil || sr.Raw != 3103 || string(r.ID) != `"s1"` {
			t.Errorf("set result %s id %s: %v", r.Data, r.ID, err)
		}
		u.awaitValue(from, "pi1/dac/output/level/value", "2.49997559")
		if got := u.retained("pi1/dac/output/level/value"); got != "2.49997559" {
			t.Errorf("retained level %q", got)
		}
		u.ok(u.ask(dac.Name, "set/level", `{"raw":0}`), services.OpSet)
		r = u.ask(dac.Name, "set/level", "4")
		if r.Status != "error" || r.Error == nil || r.Error.Code != services.CodeInvalid || r.Error.Field != "value" ||
			!strings.Contains(r.Error.Message, "4 V is outside 0–3.3 V") {
			t.Errorf("set beyond the reference: %+v", r)
		}

		// mirror takes each soil reading: the next value it publishes is
		// within one of its codes of the reading before it.
		from = u.mark()
		var soil, mirror reading
		seen := 0
		u.await(from, "mirror tracking soil", func(m userMsg) bool {
			switch m.topic {
			case "pi1/ain/input/soil":
				json.Unmarshal([]byte(m.payload), &soil)
				seen |= 1
			case "pi1/dac/output/mirror":
				json.Unmarshal([]byte(m.payload), &mirror)
				if seen&1 != 0 {
					seen |= 2
				}
			}
			return seen == 3 && abs(mirror.Volts-soil.Volts) < 3.3/4096
		})
	})
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// TestAnalogConflicts: an I2C address or a bus pin another service holds
// is refused, naming both holders; the two halves of a PCF8591 are shared
// when the ain chip says dac: true.
func TestAnalogConflicts(t *testing.T) {
	forEachBroker(t, func(t *testing.T, broker string) {
		u := analogHost(t, broker)
		u.ok(u.ask(ain.Name, "setup", `{"chips":[{"name":"yl40","chip":"pcf8591","addr":72}],"channels":[{"name":"light","channel":0}]}`), services.OpSetup)
		tests := []struct {
			name, service, payload, field string
			mention                       []string
		}{
			{"dac on the address ain holds", dac.Name,
				`{"chips":[{"name":"yl40","chip":"pcf8591","addr":72}],"outputs":[{"name":"led"}]}`,
				"chips[0].addr", []string{"dac cannot take i2c1 address 0x48", "ain (chips[0].addr, unshared)"}},
			{"ain on a gpio pin's bus", ain.Name,
				`{"chips":[{"name":"mcp","chip":"mcp3008","cs":0}],"channels":[{"name":"x","channel":0}]}`,
				"chips[0].cs", []string{"ain cannot take spi0 (its pins include GPIO 8)", "gpio (output[0].pin)"}},
		}
		u.ok(u.request("pi1/gpio/setup", []byte(`{"output":[{"name":"cs_led","pin":8}]}`)), services.OpSetup)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				u.t = t
				defer func() { u.t = t }()
				r := u.ask(tc.service, "setup", tc.payload)
				if r.Status != "error" || r.Error == nil || r.Error.Code != services.CodeConflict || r.Error.Field != tc.field {
					t.Fatalf("result %+v, want a conflict at %s", r, tc.field)
				}
				for _, m := range tc.mention {
					if !strings.Contains(r.Error.Message, m) {
						t.Errorf("%q does not say %q", r.Error.Message, m)
					}
				}
			})
		}
		u.t = t
		u.ok(u.ask(ain.Name, "setup", `{"chips":[{"name":"yl40","chip":"pcf8591","addr":72,"dac":true}],"channels":[{"name":"light","channel":0}]}`), services.OpSetup)
		u.ok(u.ask(dac.Name, "setup", `{"chips":[{"name":"yl40","chip":"pcf8591","addr":72}],"outputs":[{"name":"led","init":1}]}`), services.OpSetup)
	})
}
