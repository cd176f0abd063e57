package dac

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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
	open  func(ChipConfig, int) (Output, error)
	holds map[string][]services.Claim
	bus   *servicestest.Bus
	sysfs string
	real  bool // not under --sim
}

func start(t *testing.T, cfg Config, dir string) *harness {
	t.Helper()
	return startWith(t, cfg, dir, env{})
}

func startWith(t *testing.T, cfg Config, dir string, e env) *harness {
	t.Helper()
	h := &harness{t: t, bus: e.bus, fake: servicestest.NewClock(), claims: servicestest.Claims(t, e.holds), dir: dir}
	if h.bus == nil {
		h.bus = servicestest.NewBus()
	}
	svc, err := New(cfg, ServiceOptions{
		Env:  services.Env{Host: hostName, StateDir: dir, Sim: !e.real, Sysfs: e.sysfs, Claims: h.claims, Clock: h.fake},
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
	return h.bus.Request(h.t, topics, hostName+"/dac/"+topic, payload)
}

// ok sends a request and fails the test unless it succeeds.
func (h *harness) ok(topic, payload string) servicestest.Result {
	h.t.Helper()
	r := h.request(topic, payload)
	if r.Status != "ok" {
		h.t.Fatalf("%s %s: %+v", topic, payload, r.Problems())
	}
	return r
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

// advance moves the fake clock on and waits until the service has done
// what the timers that fired asked of it.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.fake.Advance(d)
	h.do(func() {})
}

func (h *harness) connected(up bool) {
	h.t.Helper()
	h.svc.Connected(up)
	h.do(func() {})
}

// code is what output name's simulated chip was last given.
func (h *harness) code(name string) int {
	h.t.Helper()
	s, ok := h.svc.Sim(name)
	if !ok {
		h.t.Fatalf("output %s has no sim", name)
	}
	return s.Value()
}

// outputValue is a published output value as a client decodes it.
type outputValue struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Raw   int     `json:"raw"`
	Volts float64 `json:"volts"`
	TS    string  `json:"ts"`
}

// retained decodes the retained value of output name.
func (h *harness) retained(name string) outputValue {
	h.t.Helper()
	p, ok := h.bus.Retained(hostName + "/dac/output/" + name)
	if !ok {
		h.t.Fatalf("output %s has no retained value", name)
	}
	var v outputValue
	if err := json.Unmarshal([]byte(p), &v); err != nil {
		h.t.Fatalf("output %s: %q: %v", name, p, err)
	}
	return v
}

// testState is the description's state as a client reads it.
type testState struct {
	Halted   bool            `json:"halted"`
	Failsafe bool            `json:"failsafe"`
	Chips    []ChipState     `json:"chips"`
	Outputs  []OutputState   `json:"outputs"`
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

func (h *harness) saved(file string) string {
	b, _ := os.ReadFile(filepath.Join(h.dir, file))
	return string(b)
}

// savedValues reads ValuesFile.
func (h *harness) savedValues() map[string]savedValue {
	h.t.Helper()
	var sv savedValues
	if err := json.Unmarshal([]byte(h.saved(ValuesFile)), &sv); err != nil {
		h.t.Fatalf("%s: %v", ValuesFile, err)
	}
	return sv.Outputs
}

// rawOf is the 12-bit code for volts at 3.3 V.
func rawOf(t testing.TB, volts float64) int {
	t.Helper()
	r, err := Raw(volts, 12, 3.3)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
