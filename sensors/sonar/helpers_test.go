package sonar_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/rollcall/rollcall/sensors/iio/iiotest"
	"github.com/rollcall/rollcall/sensors/sonar"
	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

const host = "pi1"

var topics = services.Topics{Host: host, Service: sonar.Name}

// gpios is a device-tree gpios property: phandle, line, flags.
func gpios(line byte) string {
	return "\x00\x00\x00\x0b\x00\x00\x00" + string(line) + "\x00\x00\x00\x00"
}

// piFS is a Pi's sysfs with the srf04 overlay on trigger GPIO 23 and echo
// GPIO 24, reading 1000 mm.
func piFS() *iiotest.MapFS {
	m := iiotest.NewMapFS(nil)
	m.AddDevice("iio:device0", "srf04", map[string]string{"in_distance_raw": "1000\n", "in_distance_scale": "0.001000\n",
		"of_node/trig-gpios": gpios(23), "of_node/echo-gpios": gpios(24)})
	return m
}

type harness struct {
	t      *testing.T
	svc    *sonar.Service
	bus    *servicestest.Bus
	clock  *servicestest.Clock
	claims *services.Claims
	fs     *iiotest.MapFS
	dir    string
	stop   func()
}

// options shape a harness.
type options struct {
	sim    bool
	holds  map[string][]services.Claim // other services' claims
	bus    *servicestest.Bus
	real   bool // the real clock, for tests of reads that block
	lookup func(string) gpio.PinIO
}

// start runs the service on piFS, a fake bus and a fake clock, on a host
// whose claims hold i2c1 (see servicestest.Claims) and o.holds.
func start(t *testing.T, cfg sonar.Config, dir string, o options) *harness {
	t.Helper()
	h := &harness{t: t, bus: o.bus, clock: servicestest.NewClock(), claims: servicestest.Claims(t, o.holds), fs: piFS(), dir: dir}
	if h.bus == nil {
		h.bus = servicestest.NewBus()
	}
	env := services.Env{Host: host, StateDir: dir, Claims: h.claims, Clock: h.clock, Sim: o.sim}
	if o.real {
		env.Clock = nil
	}
	svc, err := sonar.New(cfg, sonar.ServiceOptions{Env: env, Sysfs: h.fs, Lookup: o.lookup})
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
	return h.bus.Request(h.t, topics, host+"/sonar/"+topic, payload)
}

// do runs f on the service's goroutine and waits for it.
func (h *harness) do(f func()) {
	h.t.Helper()
	done := make(chan struct{})
	h.svc.Do(func() { f(); close(done) })
	select {
	case <-done:
	case <-time.After(servicestest.Timeout):
		h.t.Fatal("the service's goroutine did not run")
	}
}

// advance moves the fake clock on (the scans due read, synchronously)
// and waits until the service has done what they asked of it.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	h.do(func() {})
}

// flush waits until everything the service sent so far is on the bus: a
// get's result goes out after it, in order.
func (h *harness) flush() {
	h.t.Helper()
	h.request("get/output", "")
}

// sim returns the simulated ranger called name.
func (h *harness) sim(name string) *sonar.Sim {
	h.t.Helper()
	s, ok := h.svc.Ranger(name).(*sonar.Sim)
	if !ok {
		h.t.Fatalf("ranger %s is %T, not a sim", name, h.svc.Ranger(name))
	}
	return s
}

// readings returns the readings published on name's input after from.
func (h *harness) readings(from int, name string) []sonar.Value {
	h.t.Helper()
	h.flush()
	var out []sonar.Value
	for _, m := range h.bus.Published(from, topics.Input(name)) {
		out = append(out, value(h.t, m.Payload))
	}
	return out
}

// reading advances the clock by d and returns the one reading of name it
// published.
func (h *harness) reading(d time.Duration, name string) sonar.Value {
	h.t.Helper()
	from := h.bus.Mark()
	h.advance(d)
	got := h.readings(from, name)
	if len(got) != 1 {
		h.t.Fatalf("%d readings of %s after %v, want 1: %+v", len(got), name, d, got)
	}
	return got[0]
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
		if !m.Retained || !strings.HasPrefix(m.Topic, host+"/sonar/") {
			continue
		}
		if m.Payload == "" {
			delete(out, m.Topic)
		} else {
			out[m.Topic] = m.Payload
		}
	}
	return out
}

func (h *harness) saved() string {
	b, _ := os.ReadFile(filepath.Join(h.dir, "sonar.json"))
	return string(b)
}

// testState is a description's state as a client reads it.
type testState struct {
	Halted  bool                `json:"halted"`
	Config  sonar.Config        `json:"config"`
	Schema  map[string]any      `json:"schema"`
	Rangers []sonar.RangerState `json:"rangers"`
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
func value(t *testing.T, payload string) sonar.Value {
	t.Helper()
	var v sonar.Value
	if err := json.Unmarshal([]byte(payload), &v); err != nil {
		t.Fatalf("reading %q: %v", payload, err)
	}
	return v
}

// metres is a reading's distance, NaN for no target.
func metres(v sonar.Value) float64 {
	if v.Value == nil {
		return nan
	}
	return *v.Value
}
