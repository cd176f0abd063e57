package dht22_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/sensors/dht22"
	"github.com/rollcall/rollcall/sensors/iio/iiotest"
	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

const host = "pi1"

var topics = services.Topics{Host: host, Service: dht22.Name}

// Attributes of the two sensors of piFS.
const (
	temp0 = "bus/iio/devices/iio:device1/in_temp_input"
	hum0  = "bus/iio/devices/iio:device1/in_humidityrelative_input"
	temp1 = "bus/iio/devices/iio:device2/in_temp_input"
)

// gpios is a device-tree gpios property: phandle, line, flags.
func gpios(line byte) string {
	return "\x00\x00\x00\x0b\x00\x00\x00" + string(line) + "\x00\x00\x00\x00"
}

// piFS is a Pi's sysfs with the dht11 overlay, dht11@0 on GPIO 4
// (−10.1 °C, 65.2 %RH), and an MCP3008.
func piFS() *iiotest.MapFS {
	m := iiotest.NewMapFS(nil)
	m.AddDevice("iio:device0", "mcp3008", map[string]string{"in_voltage0_raw": "512"})
	m.AddDevice("iio:device1", "dht11@0", map[string]string{
		"in_temp_input": "-10100\n", "in_humidityrelative_input": "65200\n", "of_node/gpios": gpios(4)})
	return m
}

// twoFS is piFS with a second dht11 overlay, dht11@1 on GPIO 17 (21 °C,
// 40 %RH).
func twoFS() *iiotest.MapFS {
	m := piFS()
	m.AddDevice("iio:device2", "dht11@1", map[string]string{
		"in_temp_input": "21000\n", "in_humidityrelative_input": "40000\n", "of_node/gpios": gpios(17)})
	return m
}

type harness struct {
	t      *testing.T
	svc    *dht22.Service
	bus    *servicestest.Bus
	clock  *servicestest.Clock
	claims *services.Claims
	fs     *iiotest.MapFS
	dir    string
	stop   func()
}

// options shape a harness.
type options struct {
	sim   bool
	holds map[string][]services.Claim // other services' claims
	fs    *iiotest.MapFS
}

// start runs the service on piFS, a fake bus and a fake clock, on a host
// whose claims hold i2c1 (see servicestest.Claims) and o.holds.
func start(t *testing.T, cfg dht22.Config, dir string, o options) *harness {
	t.Helper()
	h := &harness{t: t, bus: servicestest.NewBus(), clock: servicestest.NewClock(), claims: servicestest.Claims(t, o.holds), fs: o.fs, dir: dir}
	if h.fs == nil {
		h.fs = piFS()
	}
	svc, err := dht22.New(cfg, dht22.ServiceOptions{
		Env:   services.Env{Host: host, StateDir: dir, Claims: h.claims, Clock: h.clock, Sim: o.sim},
		Sysfs: h.fs,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx, h.bus) }()
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(servicestest.Timeout):
			t.Fatal("Run did not return")
		}
	}
	t.Cleanup(h.stop)
	<-svc.Serving()
	return h
}

func (h *harness) request(topic, payload string) servicestest.Result {
	h.t.Helper()
	return h.bus.Request(h.t, topics, host+"/dht22/"+topic, payload)
}

// advance moves the fake clock on (the scans due read, synchronously)
// and waits until what they published is on the bus: the outbox keeps
// only the last of two retained values for one topic that wait to go
// out, so a test counting publishes must not let them pile up.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	h.flush()
}

// flush waits until everything the service sent so far is on the bus: a
// get's result goes out after it, in order.
func (h *harness) flush() {
	h.t.Helper()
	h.request("get/output", "")
}

// published returns the payloads published on topic after from, once
// everything sent so far has arrived.
func (h *harness) published(from int, topic string) []string {
	h.t.Helper()
	h.flush()
	var out []string
	for _, m := range h.bus.Published(from, topic) {
		out = append(out, m.Payload)
	}
	return out
}

// readErrors returns the read error results after from.
func (h *harness) readErrors(from int) []servicestest.Result {
	h.t.Helper()
	h.flush()
	var out []servicestest.Result
	for _, m := range h.bus.Published(from, topics.Result()) {
		if r := servicestest.DecodeResult(h.t, m.Payload); r.Op == services.OpRead {
			out = append(out, r)
		}
	}
	return out
}

// retained is every retained message of the service's topics, as a
// client subscribing now would get them.
func (h *harness) retained() map[string]string {
	h.t.Helper()
	h.flush()
	out := map[string]string{}
	for _, m := range h.bus.Since(0) {
		if !m.Retained || !strings.HasPrefix(m.Topic, host+"/dht22/") {
			continue
		}
		if m.Payload == "" {
			delete(out, m.Topic)
		} else {
			out[m.Topic] = m.Payload
		}
	}
	return maps.Clone(out)
}

func (h *harness) saved() string {
	b, _ := os.ReadFile(filepath.Join(h.dir, "dht22.json"))
	return string(b)
}

// testState is a description's state as a client reads it.
type testState struct {
	Halted  bool                `json:"halted"`
	Config  dht22.Config        `json:"config"`
	Schema  map[string]any      `json:"schema"`
	Sensors []dht22.SensorState `json:"sensors"`
}

func (h *harness) state() testState {
	h.t.Helper()
	b, err := json.Marshal(h.svc.Describe().State)
	if err != nil {
		h.t.Fatal(err)
	}
	var st testState
	if err := json.Unmarshal(b, &st); err != nil {
		h.t.Fatalf("state %s: %v", b, err)
	}
	return st
}

// value decodes a published reading.
func value(t *testing.T, payload string) dht22.Value {
	t.Helper()
	var v dht22.Value
	if err := json.Unmarshal([]byte(payload), &v); err != nil {
		t.Fatalf("reading %q: %v", payload, err)
	}
	return v
}
