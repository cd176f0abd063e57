package ain

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

const hostName = "pizero2"

var topics = services.Topics{Host: hostName, Service: Name}

// harness runs the service on a fake bus and a fake clock, on a host
// whose claims hold i2c1 and GPIO 4 (servicestest.Claims) and holds.
type harness struct {
	t      *testing.T
	svc    *Service
	bus    *servicestest.Bus
	fake   *servicestest.Clock
	claims *services.Claims
	dir    string
	stop   func()
}

// env says how to run the service under test.
type env struct {
	sim   bool
	open  func(ChipConfig) (Converter, error)
	holds map[string][]services.Claim
	sysfs string
}

// start runs the service under --sim.
func start(t *testing.T, cfg Config, dir string) *harness {
	t.Helper()
	return startWith(t, cfg, dir, env{sim: true})
}

func startWith(t *testing.T, cfg Config, dir string, e env) *harness {
	t.Helper()
	h := &harness{t: t, bus: servicestest.NewBus(), fake: servicestest.NewClock(), claims: servicestest.Claims(t, e.holds), dir: dir}
	svc, err := New(cfg, ServiceOptions{
		Env:  services.Env{Host: hostName, StateDir: dir, Sim: e.sim, Sysfs: e.sysfs, Claims: h.claims, Clock: h.fake},
		Open: e.open,
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
	return h.bus.Request(h.t, topics, hostName+"/ain/"+topic, payload)
}

// setup applies payload and fails the test unless it is accepted.
func (h *harness) setup(payload string) {
	h.t.Helper()
	if r := h.request("setup", payload); r.Status != "ok" {
		h.t.Fatalf("setup %s: %+v", payload, r.Problems())
	}
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

// advance moves the fake clock on: the reads due run before it returns.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.fake.Advance(d)
}

// flush waits until everything the service queued for the bus so far
// has gone out: a setup query's answer is queued behind it.
func (h *harness) flush() {
	h.t.Helper()
	if r := h.request("setup", ""); r.Status != "ok" {
		h.t.Fatalf("setup query: %+v", r.Problems())
	}
}

// readings returns the payloads published on channel name's topic after
// mark from.
func (h *harness) readings(from int, name string) []reading {
	h.t.Helper()
	var out []reading
	for _, m := range h.bus.Published(from, hostName+"/ain/input/"+name) {
		var r reading
		if err := json.Unmarshal([]byte(m.Payload), &r); err != nil {
			h.t.Fatalf("reading %q: %v", m.Payload, err)
		}
		if !m.Retained {
			h.t.Errorf("reading %q not retained", m.Payload)
		}
		out = append(out, r)
	}
	return out
}

// reading is a published reading as a client decodes it.
type reading struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Raw   int64   `json:"raw"`
	Volts float64 `json:"volts"`
	TS    string  `json:"ts"`
}

// testState is the description's state as a client reads it.
type testState struct {
	Halted   bool            `json:"halted"`
	Chips    []ChipState     `json:"chips"`
	Channels []ChannelState  `json:"channels"`
	Config   Config          `json:"config"`
	Schema   json.RawMessage `json:"schema"`
}

func decodeState(t testing.TB, d services.Description) testState {
	t.Helper()
	b, err := json.Marshal(d.State)
	if err != nil {
		t.Fatal(err)
	}
	var st testState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("state %s: %v", b, err)
	}
	return st
}

func (h *harness) state() testState {
	h.t.Helper()
	return decodeState(h.t, h.svc.Describe())
}

// channel returns the state of channel name.
func (h *harness) channel(name string) ChannelState {
	h.t.Helper()
	for _, c := range h.state().Channels {
		if c.Name == name {
			return c
		}
	}
	h.t.Fatalf("no channel %s in the state", name)
	return ChannelState{}
}

func (h *harness) sim(chip string) *Sim {
	h.t.Helper()
	s, ok := h.svc.Sim(chip)
	if !ok {
		h.t.Fatalf("chip %s is not an open sim", chip)
	}
	return s
}

func (h *harness) saved() string {
	b, _ := os.ReadFile(filepath.Join(h.dir, Name+".json"))
	return string(b)
}

// fakeConv is a converter whose reads a test controls: it returns volts
// (raw in mV) or fails with err, and counts its conversions.
type fakeConv struct {
	mu     sync.Mutex
	volts  float64
	err    error
	calls  int
	closed bool
}

func (f *fakeConv) Convert(ch Channel) (Sample, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return Sample{}, f.err
	}
	return Sample{Raw: int64(f.volts * 1000), Volts: f.volts}, nil
}

func (f *fakeConv) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeConv) set(volts float64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.volts, f.err = volts, err
}

func (f *fakeConv) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}
