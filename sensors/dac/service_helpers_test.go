package dac

import (
	"encoding/json"
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

// startWith runs the service on a fake bus and a fake clock, on a host
// whose claims hold i2c1 and GPIO 4 (servicestest.Claims) and e.holds.
func startWith(t *testing.T, cfg Config, dir string, e env) *harness {
	t.Helper()
	return &harness{servicestest.Start(t, servicestest.Options{Host: hostName, Dir: dir, Holds: e.holds, Bus: e.bus, Sim: !e.real, Sysfs: e.sysfs},
		func(env services.Env) (*Service, error) { return New(cfg, ServiceOptions{Env: env, Open: e.open}) })}
}

// code is what output name's simulated chip was last given.
func (h *harness) code(name string) int {
	h.T.Helper()
	s, ok := h.Svc.Sim(name)
	if !ok {
		h.T.Fatalf("output %s has no sim", name)
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
	h.T.Helper()
	p, ok := h.Bus.Retained(hostName + "/dac/output/" + name)
	if !ok {
		h.T.Fatalf("output %s has no retained value", name)
	}
	var v outputValue
	if err := json.Unmarshal([]byte(p), &v); err != nil {
		h.T.Fatalf("output %s: %q: %v", name, p, err)
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

func (h *harness) state() testState {
	h.T.Helper()
	return servicestest.DecodeState[testState](h.T, h.Svc.Describe())
}

// savedValues reads ValuesFile.
func (h *harness) savedValues() map[string]savedValue {
	h.T.Helper()
	var sv savedValues
	if err := json.Unmarshal([]byte(h.File(ValuesFile)), &sv); err != nil {
		h.T.Fatalf("%s: %v", ValuesFile, err)
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
