package ain

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

const hostName = "pizero2"

var topics = services.Topics{Host: hostName, Service: Name}

// harness runs the service: see servicestest.Harness.
type harness struct {
	*servicestest.Harness[*Service]
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

// startWith runs the service on a fake bus and a fake clock, on a host
// whose claims hold i2c1 and GPIO 4 (servicestest.Claims) and e.holds.
func startWith(t *testing.T, cfg Config, dir string, e env) *harness {
	t.Helper()
	return &harness{servicestest.Start(t, servicestest.Options{Host: hostName, Dir: dir, Holds: e.holds, Sim: e.sim, Sysfs: e.sysfs},
		func(env services.Env) (*Service, error) { return New(cfg, ServiceOptions{Env: env, Open: e.open}) })}
}

// readings returns the payloads published on channel name's topic after
// mark from.
func (h *harness) readings(from int, name string) []reading {
	h.T.Helper()
	var out []reading
	for _, m := range h.Bus.Published(from, hostName+"/ain/input/"+name) {
		var r reading
		if err := json.Unmarshal([]byte(m.Payload), &r); err != nil {
			h.T.Fatalf("reading %q: %v", m.Payload, err)
		}
		if !m.Retained {
			h.T.Errorf("reading %q not retained", m.Payload)
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

func (h *harness) state() testState {
	h.T.Helper()
	return servicestest.DecodeState[testState](h.T, h.Svc.Describe())
}

// channel returns the state of channel name.
func (h *harness) channel(name string) ChannelState {
	h.T.Helper()
	for _, c := range h.state().Channels {
		if c.Name == name {
			return c
		}
	}
	h.T.Fatalf("no channel %s in the state", name)
	return ChannelState{}
}

func (h *harness) sim(chip string) *Sim {
	h.T.Helper()
	s, ok := h.Svc.Sim(chip)
	if !ok {
		h.T.Fatalf("chip %s is not an open sim", chip)
	}
	return s
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
