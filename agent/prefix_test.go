package agent

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/agent/homeassistant"
	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/services"
)

// recorder is a client subscribed to "#": every topic anyone publishes.
type recorder struct {
	mu   sync.Mutex
	msgs []userMsg
}

func newRecorder(t *testing.T, broker string) *recorder {
	t.Helper()
	r := &recorder{}
	cl := connectUser(t, broker, userID("recorder"))
	tk := cl.Subscribe("#", 0, func(_ paho.Client, m paho.Message) {
		r.mu.Lock()
		r.msgs = append(r.msgs, userMsg{m.Topic(), string(m.Payload()), m.Retained()})
		r.mu.Unlock()
	})
	if !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("subscribe #: %v", tk.Error())
	}
	return r
}

func (r *recorder) all() []userMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// has reports whether a message on topic was recorded.
func (r *recorder) has(topic string) bool {
	return slices.ContainsFunc(r.all(), func(m userMsg) bool { return m.topic == topic })
}

func hostNames(inv cluster.Inventory) []string {
	var names []string
	for _, h := range inv.Hosts {
		names = append(names, h.Host)
	}
	return names
}

// TestTopicPrefix: an agent under mqtt.topic_prefix site1 and one without
// share a broker and a discovery port. Each cluster's sweeps, inventories
// and verbs see only its own host; requests to the prefixed host go
// through its prefixed topics and are answered on its prefixed result
// topic; and nothing the prefixed host and its commands publish lies
// outside site1/ but the report topic, the probe's reply topic and Home
// Assistant's discovery topic, whose payload names the prefixed topics.
func TestTopicPrefix(t *testing.T) {
	b := embeddedBroker(t)
	rec := newRecorder(t, b.URL())
	c := newTestCluster(t, b.URL())
	ctx := context.Background()
	log := testLogger(t)

	cfgA := c.config("pa")
	cfgA.MQTT.TopicPrefix = "site1"
	cfgA.HomeAssistant.Enabled = true
	a := c.start(cfgA)
	site1 := c.config("sweeper")
	site1.MQTT.TopicPrefix = "site1"

	// The prefixed host alone on the broker: sweep, inventory, requests
	// as a plain MQTT client and through the verbs' client, health.
	inv, err := cluster.Sweep(ctx, site1.Client(), cluster.SweepOptions{Expect: 1, Timeout: 5 * time.Second}, log)
	if err != nil {
		t.Fatal(err)
	}
	if got := hostNames(inv); !slices.Equal(got, []string{"pa"}) || !inv.Sweep.Complete {
		t.Fatalf("prefixed sweep: hosts %v complete %v, want [pa]", got, inv.Sweep.Complete)
	}
	if s := inv.Hosts[0].Services; len(s) != 1 || s[0].Setup != "site1/pa/gpio/setup" || s[0].Outputs[0].Set != "site1/pa/gpio/set/"+s[0].Outputs[0].Name {
		t.Errorf("prefixed sweep's gpio: %+v", s)
	}

	u := newMQTTUser(t, b.URL(), "site1/pa")
	u.ok(u.request("site1/pa/gpio/set/lamp", []byte(`{"id":"s1","value":1}`)), services.OpSet)
	u.awaitValue(0, "site1/pa/gpio/output/lamp", "1")
	next := wiredSetup
	next.Wiring = nil
	next.Output = append(slices.Clone(next.Output), gpio.OutputPin{Name: "fan", Pin: 24})
	u.ok(u.request("site1/pa/gpio/setup", setupPayload(t, "u1", next)), services.OpSetup)
	u.awaitValue(0, "site1/pa/gpio/output/fan", "0")

	cl, err := cluster.Dial(ctx, site1.Client(), "test", log)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if r, err := cl.Do(ctx, "pa", "gpio", "set/fan", cluster.SetPayload("1", 0)); err != nil || r.Status != "ok" {
		t.Fatalf("set through the verbs' client: %+v %v", r, err)
	}
	u.awaitValue(0, "site1/pa/gpio/output/fan", "1")
	hosts, err := cl.Hosts(ctx)
	if err != nil || len(hosts) != 1 || hosts[0].Host != "pa" {
		t.Errorf("prefixed client's hosts: %+v %v", hosts, err)
	}
	if d, err := cl.Descriptions(ctx, "pa"); err != nil || !strings.Contains(string(d["pa"]), `"site1/pa/gpio/setup"`) {
		t.Errorf("prefixed client's description of pa: %q %v", d["pa"], err)
	}
	if err := a.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	ri, err := cluster.ReadInventory(ctx, site1.Client(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := hostNames(ri); !slices.Equal(got, []string{"pa"}) || ri.Sweep == nil || ri.Sweep.ID != inv.Sweep.ID {
		t.Errorf("prefixed inventory: hosts %v, last sweep %+v; want [pa] and sweep %d", got, ri.Sweep, inv.Sweep.ID)
	}
	waitFor(t, 10*time.Second, "Home Assistant's device config", func() bool { return rec.has("homeassistant/device/pa/config") })
	// The acknowledgement completed the sweep at once; the report and
	// the replies follow within the sweep's jitter.
	waitFor(t, 5*time.Second, "the report and the replies", func() bool {
		return rec.has(discovery.DefaultReportTopic) && rec.has(discovery.DefaultReplyTopic)
	})

	// Everything published so far: under site1/, or one of the topics
	// the prefix does not move.
	for _, want := range []string{"site1/pa/status", "site1/pa/description", "site1/pa/services", "site1/pa/gpio/result",
		"site1/rollcall/inventory", "site1/rollcall/alive/pa"} {
		if !rec.has(want) {
			t.Errorf("nothing published on %s", want)
		}
	}
	for _, m := range rec.all() {
		switch {
		case strings.HasPrefix(m.topic, "site1/"):
		case m.topic == discovery.DefaultReportTopic:
			if r, err := discovery.ParseReport([]byte(m.payload)); err != nil || r.Prefix != "site1" {
				t.Errorf("report %s: prefix %q, want site1 (%v)", m.payload, r.Prefix, err)
			}
		case m.topic == discovery.DefaultReplyTopic:
			if r, err := discovery.ParseReply([]byte(m.payload)); err != nil || r.Prefix != "site1" || r.Setup != "site1/pa/gpio/setup" {
				t.Errorf("reply %s: prefix %q setup %q, want site1 and site1/pa/gpio/setup (%v)", m.payload, r.Prefix, r.Setup, err)
			}
		case strings.HasPrefix(m.topic, homeassistant.DefaultPrefix+"/"):
			if m.topic != homeassistant.DeviceTopic(homeassistant.DefaultPrefix, "pa") || m.payload == "" {
				continue
			}
			var dc homeassistant.DeviceConfig
			if err := json.Unmarshal([]byte(m.payload), &dc); err != nil {
				t.Fatalf("Home Assistant's config: %v", err)
			}
			if len(dc.Components) == 0 {
				t.Errorf("Home Assistant's config has no components: %s", m.payload)
			}
			for key, comp := range dc.Components {
				topics := []string{comp.StateTopic, comp.CommandTopic}
				for _, av := range comp.Availability {
					topics = append(topics, av.Topic)
				}
				for _, tp := range topics {
					if tp != "" && !strings.HasPrefix(tp, "site1/pa/") {
						t.Errorf("Home Assistant's %s names %q, outside site1/pa/", key, tp)
					}
				}
			}
		default:
			t.Errorf("published outside site1/: %s %q", m.topic, m.payload)
		}
	}

	// A second cluster with no prefix on the same broker and port: each
	// side sees its own host only, though both answer every probe on the
	// same reply topic.
	c.start(c.config("pb"))
	for _, tt := range []struct {
		name string
		cfg  cluster.Config
		want string
	}{
		{"site1", site1.Client(), "pa"},
		{"no prefix", c.sweepConfig(), "pb"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The quiet period lets the other cluster's replies arrive.
			inv, err := cluster.Sweep(ctx, tt.cfg, cluster.SweepOptions{Expect: 1, Quiet: 300 * time.Millisecond, Timeout: 5 * time.Second}, log)
			if err != nil {
				t.Fatal(err)
			}
			if got := hostNames(inv); !slices.Equal(got, []string{tt.want}) || !inv.Sweep.Complete {
				t.Errorf("sweep: hosts %v complete %v, want [%s]", got, inv.Sweep.Complete, tt.want)
			}
			ri, err := cluster.ReadInventory(ctx, tt.cfg, log, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := hostNames(ri); !slices.Equal(got, []string{tt.want}) || ri.Sweep == nil || ri.Sweep.ID != inv.Sweep.ID {
				t.Errorf("inventory: hosts %v, last sweep %+v; want [%s] and sweep %d", got, ri.Sweep, tt.want, inv.Sweep.ID)
			}
			cl, err := cluster.Dial(ctx, tt.cfg, "test", log)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			hosts, err := cl.Hosts(ctx)
			if err != nil || len(hosts) != 1 || hosts[0].Host != tt.want {
				t.Errorf("hosts: %+v %v, want %s", hosts, err, tt.want)
			}
			if r, err := cl.Do(ctx, tt.want, "gpio", "get", map[string]any{}); err != nil || r.Status != "ok" {
				t.Errorf("get %s: %+v %v", tt.want, r, err)
			}
		})
	}

	// A program outside the agent announces itself under the prefix; its
	// unprefixed twin is another system's and is not listed.
	ext := connectUser(t, b.URL(), userID("display"))
	for _, m := range []struct{ topic, payload string }{
		{"pa/clock/description", `{"function":"clock","inputs":[],"outputs":[]}`},
		{"pa/clock/status", "online"},
		{"site1/pa/display/description", `{"function":"display","inputs":[],"outputs":[],"control":"site1/pa/display/control","setup":"site1/pa/display/setup","get":"site1/pa/display/get"}`},
		{"site1/pa/display/status", "online"},
	} {
		if tk := ext.Publish(m.topic, 1, true, m.payload); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
			t.Fatalf("publish %s: %v", m.topic, tk.Error())
		}
	}
	t.Cleanup(func() {
		for _, tp := range []string{"site1/pa/display/description", "site1/pa/display/status", "pa/clock/description", "pa/clock/status"} {
			ext.Publish(tp, 1, true, "").WaitTimeout(time.Second)
		}
	})
	waitFor(t, 5*time.Second, "pa to list the display", func() bool {
		return slices.ContainsFunc(a.Describe().Services, func(d services.Description) bool { return d.Function == "display" && d.External })
	})
	if slices.ContainsFunc(a.Describe().Services, func(d services.Description) bool { return d.Function == "clock" }) {
		t.Error("pa lists a service announced outside its prefix")
	}
}
