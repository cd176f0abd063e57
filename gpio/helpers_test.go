package gpio

import (
	"encoding/json"
	"testing"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

const host = "pizero2"

var topics = services.Topics{Host: host, Service: Name}

// harness runs the service (see servicestest.Harness) on a sim board.
type harness struct {
	*servicestest.Harness[*Service]
	sim *Sim
}

// start runs the service on a sim board, a fake bus and a fake clock, on a
// host whose claims hold i2c1 and GPIO 4 (see servicestest.Claims).
func start(t *testing.T, cfg Config, dir string) *harness {
	t.Helper()
	return startWith(t, cfg, dir, NewSim(), servicestest.NewBus())
}

func startWith(t *testing.T, cfg Config, dir string, d Driver, bus *servicestest.Bus) *harness {
	t.Helper()
	h := &harness{}
	h.sim, _ = d.(*Sim)
	if f, ok := d.(failingDriver); ok {
		h.sim = f.Sim
	}
	h.Harness = servicestest.Start(t, servicestest.Options{Host: host, Dir: dir, Bus: bus},
		func(env services.Env) (*Service, error) { return New(cfg, Options{Env: env, Driver: d}) })
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

func (h *harness) state() testState {
	h.T.Helper()
	return servicestest.DecodeState[testState](h.T, h.Svc.Describe())
}

func (h *harness) level(pin int) pgpio.Level {
	l, _ := h.sim.Level(pin)
	return l
}

func timeout() <-chan time.Time { return time.After(servicestest.Timeout) }
