package dht22_test

import (
	"encoding/json"
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

// harness runs the service (see servicestest.Harness) on a sysfs tree
// the test can change.
type harness struct {
	*servicestest.Harness[*dht22.Service]
	fs *iiotest.MapFS
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
	h := &harness{fs: o.fs}
	if h.fs == nil {
		h.fs = piFS()
	}
	h.Harness = servicestest.Start(t, servicestest.Options{Host: host, Dir: dir, Holds: o.holds, Sim: o.sim},
		func(env services.Env) (*dht22.Service, error) {
			return dht22.New(cfg, dht22.ServiceOptions{Env: env, Sysfs: h.fs})
		})
	return h
}

// advance moves the fake clock on (the scans due read, synchronously)
// and waits until what they published is on the bus: the outbox keeps
// only the last of two retained values for one topic that wait to go
// out, so a test counting publishes must not let them pile up.
func (h *harness) advance(d time.Duration) {
	h.T.Helper()
	h.Advance(d)
	h.Flush()
}

// testState is a description's state as a client reads it.
type testState struct {
	Halted  bool                `json:"halted"`
	Config  dht22.Config        `json:"config"`
	Schema  map[string]any      `json:"schema"`
	Sensors []dht22.SensorState `json:"sensors"`
}

func (h *harness) state() testState {
	h.T.Helper()
	return servicestest.DecodeState[testState](h.T, h.Svc.Describe())
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
