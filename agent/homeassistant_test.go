package agent

// End to end through mosquitto: an agent with Home Assistant discovery
// on, a pin set up and removed over MQTT, Home Assistant restarting, the
// feature turned off, and a broker whose ACL refuses the prefix.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rollcall/rollcall/agent/broker"
	"github.com/rollcall/rollcall/agent/clustertest"
	"github.com/rollcall/rollcall/agent/homeassistant"
	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/sensors/dht22"
)

// Loopback ports of this file's brokers and monitors.
const (
	haFirstTCPPort, haLastTCPPort = 27100, 27199
	haFirstUDPPort, haLastUDPPort = 27200, 27299
)

const haModel = "Raspberry Pi Zero 2 W Rev 1.0"

func haFreePort(t *testing.T, network string, first, last int) int {
	t.Helper()
	for port := first; port <= last; port++ {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if network == "udp" {
			c, err := net.ListenPacket("udp4", addr)
			if err == nil {
				c.Close()
				return port
			}
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatalf("no free %s port in %d–%d", network, first, last)
	return 0
}

// haMosquitto runs a stock mosquitto on a free loopback port. acl, when
// set, is its ACL file: without a password file, mosquitto still matches
// the "user" sections on the name a client gives.
func haMosquitto(t *testing.T, acl string) string {
	t.Helper()
	extra := ""
	if acl != "" {
		path := filepath.Join(t.TempDir(), "acl")
		if err := os.WriteFile(path, []byte(acl), 0o644); err != nil {
			t.Fatal(err)
		}
		extra = "acl_file " + path + "\n"
	}
	return clustertest.LocalMosquitto(t, extra)
}

// haClient is Home Assistant's side of the broker, as a test sees it:
// every message under the filters, in order.
type haClient struct {
	t  *testing.T
	cl paho.Client
	ch chan paho.Message
}

func newHAClient(t *testing.T, url, user string, filters ...string) *haClient {
	t.Helper()
	c := &haClient{t: t, ch: make(chan paho.Message, 1000)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("ha-test-%d", time.Now().UnixNano())).
		SetUsername(user).SetAutoReconnect(false).SetOrderMatters(true)
	c.cl = paho.NewClient(o)
	if tk := c.cl.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("test client: %v", tk.Error())
	}
	t.Cleanup(func() { c.cl.Disconnect(100) })
	for _, f := range filters {
		tk := c.cl.Subscribe(f, 1, func(_ paho.Client, m paho.Message) { c.ch <- m })
		if !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tk.Error())
		}
	}
	return c
}

func (c *haClient) publish(topic string, retained bool, payload string) {
	c.t.Helper()
	if tk := c.cl.Publish(topic, 1, retained, payload); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		c.t.Fatalf("publish %s: %v", topic, tk.Error())
	}
}

// next waits for the next message on topic that ok accepts, passing
// over the others.
func (c *haClient) next(topic string, what string, ok func(m paho.Message) bool) paho.Message {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-c.ch:
			if m.Topic() == topic && ok(m) {
				return m
			}
		case <-deadline:
			c.t.Fatalf("no message on %s: %s", topic, what)
			return nil
		}
	}
}

// haConfig is the part of a device config the tests read.
type haConfig struct {
	Dev struct {
		IDs  []string `json:"ids"`
		Name string   `json:"name"`
		Mdl  string   `json:"mdl"`
		SW   string   `json:"sw"`
	} `json:"dev"`
	Cmps map[string]map[string]any `json:"cmps"`
}

func parseHAConfig(t *testing.T, b []byte) haConfig {
	t.Helper()
	var c haConfig
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("device config %q: %v", b, err)
	}
	return c
}

func hasComponent(key string, want bool) func(paho.Message) bool {
	return func(m paho.Message) bool {
		var c haConfig
		if json.Unmarshal(m.Payload(), &c) != nil {
			return false
		}
		_, ok := c.Cmps[key]
		return ok == want
	}
}

// lockedBuffer collects an agent's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type haHost struct {
	t      *testing.T
	broker string
	dir    string
	sysfs  string
	port   int
	logs   *lockedBuffer
	last   *Agent
}

// lastAgent is the agent run started last.
func (h *haHost) lastAgent() *Agent { return h.last }

func newHAHost(t *testing.T, url string) *haHost {
	t.Helper()
	h := &haHost{t: t, broker: url, dir: t.TempDir(), sysfs: t.TempDir(), port: haFreePort(t, "udp", haFirstUDPPort, haLastUDPPort), logs: &lockedBuffer{}}
	model := filepath.Join(h.sysfs, "firmware", "devicetree", "base", "model")
	if err := os.MkdirAll(filepath.Dir(model), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(model, []byte(haModel+"\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *haHost) config(enabled bool) Config {
	cfg := DefaultConfig()
	cfg.Host = "hapi"
	cfg.StateDir = h.dir
	cfg.Sim = true
	cfg.Sysfs = h.sysfs
	cfg.Services = []string{gpio.Name, dht22.Name}
	cfg.MQTT.Broker, cfg.MQTT.Keepalive, cfg.MQTT.Username = h.broker, 2*time.Second, "rollcall"
	cfg.Discovery.Port = h.port
	cfg.Discovery.Interfaces = []string{"lo"}
	cfg.Blocks[gpio.Name] = &gpio.Config{
		Output: []gpio.OutputPin{{Name: "pump_drive", Pin: 25}, {Name: "lamp", Pin: 23}},
		Input:  []gpio.InputPin{{Name: "button", Pin: 22, Pull: "down"}},
	}
	cfg.Blocks[dht22.Name] = &dht22.Config{Sensors: []dht22.SensorConfig{{Name: "air", Pin: 4}}}
	cfg.HomeAssistant.Enabled = enabled
	return cfg
}

// run starts the agent and returns a function that stops it.
func (h *haHost) run(cfg Config, echoTimeout time.Duration) (*Agent, func()) {
	h.t.Helper()
	a, err := New(cfg, slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		h.t.Fatal(err)
	}
	a.haEchoTimeout = echoTimeout
	h.last = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Run(ctx); err != nil {
			h.t.Errorf("agent: %v", err)
		}
	}()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	h.t.Cleanup(stop)
	select {
	case <-a.Ready():
	case <-time.After(10 * time.Second):
		h.t.Fatalf("agent not ready; log:\n%s", h.logs.String())
	}
	return a, stop
}

const haTopic = "homeassistant/device/hapi/config"

// haEmbedded runs the embedded broker (mochi-mqtt) on a free port of
// this file's range, as an agent's embedded broker serves a small
// cluster.
func haEmbedded(t *testing.T) string {
	t.Helper()
	b, err := broker.Start(fmt.Sprintf("127.0.0.1:%d", haFreePort(t, "tcp", haFirstTCPPort, haLastTCPPort)), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b.URL()
}

func TestHomeAssistantEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name   string
		broker func(*testing.T) string
	}{
		{name: "mosquitto", broker: func(t *testing.T) string { return haMosquitto(t, "") }},
		{name: "embedded broker", broker: haEmbedded},
	} {
		t.Run(tc.name, func(t *testing.T) { haEndToEnd(t, tc.broker(t)) })
	}
}

func haEndToEnd(t *testing.T, url string) {
	h := newHAHost(t, url)
	ha := newHAClient(t, url, "homeassistant", "homeassistant/#", "hapi/gpio/output/+")
	a, stop := h.run(h.config(true), 0)

	m := ha.next(haTopic, "the device config", func(m paho.Message) bool { return len(m.Payload()) > 0 })
	// The broker delivers it back to the agent, which tells a broker
	// that takes the prefix from one that refuses it.
	waitFor(t, 10*time.Second, "the agent seeing its config back", func() bool {
		return strings.Contains(h.logs.String(), "delivered the Home Assistant device config back")
	})
	cfg := parseHAConfig(t, m.Payload())
	if len(cfg.Dev.IDs) != 1 || cfg.Dev.IDs[0] != a.Machine() || cfg.Dev.Name != "hapi" || cfg.Dev.Mdl != haModel || cfg.Dev.SW != Version {
		t.Errorf("device %+v, want ids [%s], name hapi, model %q, sw %s", cfg.Dev, a.Machine(), haModel, Version)
	}
	for key, want := range map[string]string{"gpio_lamp": "switch", "gpio_pump_drive": "switch", "gpio_button": "binary_sensor", "dht22_air_temperature": "sensor", "dht22_air_humidity": "sensor"} {
		if got := cfg.Cmps[key]["p"]; got != want {
			t.Errorf("%s: platform %v, want %s", key, got, want)
		}
	}
	if c := cfg.Cmps["dht22_air_temperature"]; c["dev_cla"] != "temperature" || c["unit_of_meas"] != "°C" {
		t.Errorf("temperature component %v", c)
	}

	// Home Assistant turns the lamp on: the payload it sends is one the
	// gpio service takes.
	lamp := cfg.Cmps["gpio_lamp"]
	ha.publish(lamp["cmd_t"].(string), false, lamp["pl_on"].(string))
	ha.next(lamp["stat_t"].(string), "the lamp on", func(m paho.Message) bool { return string(m.Payload()) == lamp["pl_on"] })

	// A pin set up over MQTT appears in the device.
	ha.publish("hapi/gpio/setup", false, `{"merge":true,"output":[{"name":"heater","pin":24}]}`)
	m = ha.next(haTopic, "the heater added", hasComponent("gpio_heater", true))
	if c := parseHAConfig(t, m.Payload()).Cmps["gpio_heater"]; c["p"] != "switch" || c["cmd_t"] != "hapi/gpio/set/heater" || c["uniq_id"] != a.Machine()+"_gpio_heater" {
		t.Errorf("heater component %v", c)
	}

	// Removed: the retained config carries it with its platform alone
	// (how Home Assistant removes a component) until Home Assistant's
	// next birth, so that one down at this moment learns of it too.
	ha.publish("hapi/gpio/setup", false, `{"output":[{"name":"pump_drive","pin":25},{"name":"lamp","pin":23}],"input":[{"name":"button","pin":22,"pull":"down"}]}`)
	isRemoval := func(m paho.Message) bool {
		c := parseHAConfig(t, m.Payload()).Cmps["gpio_heater"]
		return len(c) == 1 && c["p"] == "switch"
	}
	m = ha.next(haTopic, "the heater reduced to its platform", isRemoval)
	if n := len(parseHAConfig(t, m.Payload()).Cmps); n != 6 {
		t.Errorf("removal config has %d components, want the 5 left and the heater", n)
	}
	if m := newHAClient(t, url, "homeassistant", haTopic).next(haTopic, "the retained config", func(paho.Message) bool { return true }); !isRemoval(m) {
		t.Errorf("a Home Assistant starting now reads %s, without the heater's removal", m.Payload())
	}

	// Home Assistant restarts: the removal again, then the config of what
	// there is.
	ha.publish("homeassistant/status", false, "online")
	ha.next(haTopic, "the removal at Home Assistant's birth", isRemoval)
	final := ha.next(haTopic, "the config without the heater", hasComponent("gpio_heater", false)).Payload()

	// What a Home Assistant starting now reads.
	late := newHAClient(t, url, "homeassistant", haTopic)
	if m := late.next(haTopic, "the retained config", func(paho.Message) bool { return true }); !m.Retained() || !bytes.Equal(m.Payload(), final) {
		t.Errorf("retained config (retained %v) differs from the last one published", m.Retained())
	}

	// Turned off: the device goes at the next start, and the state file
	// with it.
	stop()
	_, stop = h.run(h.config(false), 0)
	ha.next(haTopic, "the device removed", func(m paho.Message) bool { return len(m.Payload()) == 0 })
	waitFor(t, 5*time.Second, "the state file removed", func() bool {
		_, err := os.Stat(filepath.Join(h.dir, homeassistant.StateFile))
		return os.IsNotExist(err)
	})
	stop()

	// Off from then on: nothing under the prefix.
	a, stop = h.run(h.config(false), 0)
	defer stop()
	ha.publish("homeassistant/status", false, "online")
	ha.next("homeassistant/status", "our own birth message back", func(paho.Message) bool { return true })
	ha.publish("hapi/gpio/set/lamp", false, "0")
	ha.next("hapi/gpio/output/lamp", "the lamp off", func(m paho.Message) bool { return string(m.Payload()) == "0" })
	for len(ha.ch) > 0 {
		if m := <-ha.ch; strings.HasPrefix(m.Topic(), "homeassistant/device/") {
			t.Errorf("published %s %q while off", m.Topic(), m.Payload())
		}
	}
	if strings.Contains(h.logs.String(), "did not deliver back") {
		t.Errorf("warned of a refusing broker:\n%s", h.logs.String())
	}
}

// TestHomeAssistantRefusedByACL: a broker that refuses the prefix to the
// agent leaves the rest of the agent working, and the agent says so once.
func TestHomeAssistantRefusedByACL(t *testing.T) {
	url := haMosquitto(t, "user rollcall\ntopic deny homeassistant/#\ntopic readwrite #\n\nuser homeassistant\ntopic readwrite #\n")
	h := newHAHost(t, url)
	ha := newHAClient(t, url, "homeassistant", "homeassistant/#", "hapi/#")
	_, stop := h.run(h.config(true), 200*time.Millisecond)
	defer stop()

	waitFor(t, 10*time.Second, "the warning about the refused prefix", func() bool {
		return strings.Contains(h.logs.String(), "did not deliver back")
	})
	// Everything else works: a set, and Home Assistant's birth once more.
	ha.publish("hapi/gpio/set/lamp", false, "1")
	ha.next("hapi/gpio/output/lamp", "the lamp on", func(m paho.Message) bool { return string(m.Payload()) == "1" })
	ha.publish("homeassistant/status", false, "online")
	ha.next("homeassistant/status", "our own birth message back", func(paho.Message) bool { return true })
	ha.publish("hapi/gpio/set/lamp", false, "0")
	ha.next("hapi/gpio/output/lamp", "the lamp off", func(m paho.Message) bool { return string(m.Payload()) == "0" })
	for len(ha.ch) > 0 {
		if m := <-ha.ch; strings.HasPrefix(m.Topic(), "homeassistant/device/") {
			t.Errorf("the broker let %s through", m.Topic())
		}
	}
	logs := h.logs.String()
	if n := strings.Count(logs, "did not deliver back"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, logs)
	}
	if strings.Contains(logs, "connection lost") {
		t.Errorf("the session dropped:\n%s", logs)
	}
}

// TestHomeAssistantExternalService: a program of its own on the host
// shows up with the rest; what rollcall has no mapping for is a plain
// sensor; going offline makes it unavailable, not gone; clearing its
// description removes it.
func TestHomeAssistantExternalService(t *testing.T) {
	url := haEmbedded(t)
	h := newHAHost(t, url)
	ha := newHAClient(t, url, "homeassistant", "homeassistant/#")
	h.run(h.config(true), 0)
	ha.next(haTopic, "the device config", hasComponent("gpio_lamp", true))

	ext := newHAClient(t, url, "weather")
	ext.publish("hapi/weather/description", true, `{"function":"weather","inputs":[`+
		`{"name":"uv","topic":"hapi/weather/input/uv","type":"number","unit":"UV index"},`+
		`{"name":"sky","topic":"hapi/weather/input/sky","type":"text","mode":"condition"}],"outputs":[],`+
		`"control":"","setup":"","get":"","health":"ok"}`)
	ext.publish("hapi/weather/status", true, "online")
	m := ha.next(haTopic, "the weather service's components", hasComponent("weather_sky", true))
	cmps := parseHAConfig(t, m.Payload()).Cmps
	if uv := cmps["weather_uv"]; uv["p"] != "sensor" || uv["dev_cla"] != nil || uv["unit_of_meas"] != "UV index" {
		t.Errorf("uv %v, want a sensor in UV index without a device class", uv)
	}
	if sky := cmps["weather_sky"]; sky["p"] != "sensor" || sky["unit_of_meas"] != nil || sky["stat_cla"] != nil {
		t.Errorf("sky %v, want a plain sensor", sky)
	}
	avty, _ := json.Marshal(cmps["weather_uv"]["avty"])
	if !strings.Contains(string(avty), `"t":"hapi/weather/status"`) || !strings.Contains(string(avty), `"t":"hapi/status"`) {
		t.Errorf("weather availability %s, want the host's and the program's status", avty)
	}

	// Offline: still there (unavailable), as Home Assistant's next
	// config shows.
	ext.publish("hapi/weather/status", true, "offline")
	waitFor(t, 5*time.Second, "weather offline", func() bool {
		for _, s := range h.lastAgent().Describe().Services {
			if s.Function == "weather" {
				return false
			}
		}
		return true
	})
	ha.publish("homeassistant/status", false, "online")
	m = ha.next(haTopic, "the config after Home Assistant's birth", func(paho.Message) bool { return true })
	if c := parseHAConfig(t, m.Payload()).Cmps["weather_uv"]; len(c) < 2 {
		t.Errorf("an offline program's entity was removed: %v", c)
	}

	// Its description cleared: gone, as documented (carried as a removal
	// until Home Assistant's next birth).
	ext.publish("hapi/weather/description", true, "")
	uvRemoved := func(m paho.Message) bool {
		c := parseHAConfig(t, m.Payload()).Cmps["weather_uv"]
		return len(c) == 1 && c["p"] == "sensor"
	}
	ha.next(haTopic, "uv reduced to its platform", uvRemoved)
	ha.publish("homeassistant/status", false, "online")
	ha.next(haTopic, "the removal at Home Assistant's birth", uvRemoved)
	ha.next(haTopic, "the config without the weather service", hasComponent("weather_uv", false))
}
