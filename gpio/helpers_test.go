package gpio

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

const host = "pizero2"

var topics = services.Topics{Host: host, Service: Name}

type harness struct {
	t      *testing.T
	svc    *Service
	bus    *servicestest.Bus
	sim    *Sim
	clock  *servicestest.Clock
	claims *services.Claims
	dir    string
	stop   func()
}

// start runs the service on a sim board, a fake bus and a fake clock, on a
// host whose claims hold i2c1 and GPIO 4 (see servicestest.Claims).
func start(t *testing.T, cfg Config, dir string) *harness {
	t.Helper()
	return startWith(t, cfg, dir, NewSim(), servicestest.NewBus())
}

func startWith(t *testing.T, cfg Config, dir string, d Driver, bus *servicestest.Bus) *harness {
	t.Helper()
	h := &harness{t: t, bus: bus, clock: servicestest.NewClock(), claims: servicestest.Claims(t, nil), dir: dir}
	h.sim, _ = d.(*Sim)
	if f, ok := d.(failingDriver); ok {
		h.sim = f.Sim
	}
	svc, err := New(cfg, Options{Env: services.Env{Host: host, StateDir: dir, Claims: h.claims, Clock: h.clock}, Driver: d})
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
		case <-timeout():
			t.Fatal("Run did not return")
		}
	}
	t.Cleanup(h.stop)
	<-svc.Serving()
	return h
}

// testState is a description's state as a client reads it.
type testState struct {
	Driver   string          `json:"driver"`
	Halted   bool            `json:"halted"`
	Reason   string          `json:"halt_reason"`
	Failsafe bool            `json:"failsafe"`
	Pins     []PinState      `json:"pins"`
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

func (h *harness) level(pin int) pgpio.Level {
	l, _ := h.sim.Level(pin)
	return l
}

func (h *harness) request(topic, payload string) servicestest.Result {
	h.t.Helper()
	return h.bus.Request(h.t, topics, host+"/gpio/"+topic, payload)
}

// do runs f on the service's goroutine and waits for it, to read the
// service's own state without a race.
func (h *harness) do(f func()) {
	h.t.Helper()
	done := make(chan struct{})
	h.svc.Do(func() { f(); close(done) })
	select {
	case <-done:
	case <-timeout():
		h.t.Fatal("the service's goroutine did not run")
	}
}

func timeout() <-chan time.Time { return time.After(servicestest.Timeout) }

// advance moves the fake clock on and waits until the service has done
// what the timers that fired asked of it.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	h.do(func() {})
}

// connected tells the service the session is up or down and waits until
// it has acted on it.
func (h *harness) connected(up bool) {
	h.t.Helper()
	h.svc.Connected(up)
	h.do(func() {})
}
