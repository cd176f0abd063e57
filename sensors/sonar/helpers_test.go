package sonar_test

import (
	"encoding/json"
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

// harness runs the service (see servicestest.Harness) on piFS, which the
// test can change.
type harness struct {
	*servicestest.Harness[*sonar.Service]
	fs *iiotest.MapFS
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
	h := &harness{fs: piFS()}
	h.Harness = servicestest.Start(t, servicestest.Options{Host: host, Dir: dir, Holds: o.holds, Bus: o.bus, Sim: o.sim, RealClock: o.real},
		func(env services.Env) (*sonar.Service, error) {
			return sonar.New(cfg, sonar.ServiceOptions{Env: env, Sysfs: h.fs, Lookup: o.lookup})
		})
	return h
}

// sim returns the simulated ranger called name.
func (h *harness) sim(name string) *sonar.Sim {
	h.T.Helper()
	s, ok := h.Svc.Ranger(name).(*sonar.Sim)
	if !ok {
		h.T.Fatalf("ranger %s is %T, not a sim", name, h.Svc.Ranger(name))
	}
	return s
}

// readings returns the readings published on name's input after from.
func (h *harness) readings(from int, name string) []sonar.Value {
	h.T.Helper()
	h.Flush()
	var out []sonar.Value
	for _, m := range h.Bus.Published(from, topics.Input(name)) {
		out = append(out, value(h.T, m.Payload))
	}
	return out
}

// reading advances the clock by d and returns the one reading of name it
// published.
func (h *harness) reading(d time.Duration, name string) sonar.Value {
	h.T.Helper()
	from := h.Bus.Mark()
	h.Advance(d)
	got := h.readings(from, name)
	if len(got) != 1 {
		h.T.Fatalf("%d readings of %s after %v, want 1: %+v", len(got), name, d, got)
	}
	return got[0]
}

// testState is a description's state as a client reads it.
type testState struct {
	Halted  bool                `json:"halted"`
	Config  sonar.Config        `json:"config"`
	Schema  map[string]any      `json:"schema"`
	Rangers []sonar.RangerState `json:"rangers"`
}

func (h *harness) state() testState {
	h.T.Helper()
	return servicestest.DecodeState[testState](h.T, h.Svc.Describe())
}

// value decodes a published reading.
func value(t testing.TB, payload string) sonar.Value {
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
