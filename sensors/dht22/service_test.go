package dht22_test

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollcall/rollcall/sensors/dht22"
	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// greenhouse is one sensor on the kernel's driver, GPIO 4.
func greenhouse() dht22.Config {
	return dht22.Config{Sensors: []dht22.SensorConfig{{Name: "greenhouse", Pin: 4}}}
}

const (
	tempTopic = host + "/dht22/input/greenhouse_temperature"
	humTopic  = host + "/dht22/input/greenhouse_humidity"
)

// TestServiceReadings: a sensor is read at once and then every interval;
// each reading is published, retained, as JSON and as a bare number,
// negative temperatures included; the description lists both inputs.
func TestServiceReadings(t *testing.T) {
	h := start(t, dht22.Config{}, t.TempDir(), options{})
	r := h.Request("setup", `{"id":1,"sensors":[{"name":"greenhouse","pin":4,"interval":"5s"}]}`)
	if r.Status != "ok" {
		t.Fatalf("setup %+v", r)
	}
	from := h.Bus.Mark()
	h.advance(0)
	h.Bus.Expect(t, from, tempTopic, `{"value":-10.1,"unit":"°C","raw":-10100,"ts":"2023-11-14T22:13:20Z"}`)
	h.Bus.Expect(t, from, tempTopic+"/value", "-10.1")
	h.Bus.Expect(t, from, humTopic, `{"value":65.2,"unit":"%RH","raw":65200,"ts":"2023-11-14T22:13:20Z"}`)
	h.Bus.Expect(t, from, humTopic+"/value", "65.2")
	for _, m := range h.Bus.Since(from) {
		if strings.HasPrefix(m.Topic, host+"/dht22/input/") && !m.Retained {
			t.Errorf("%s published without retain", m.Topic)
		}
	}

	h.fs.Set(temp0, "-0500")
	from = h.Bus.Mark()
	h.advance(4 * time.Second)
	if got := h.Published(from, tempTopic+"/value"); len(got) != 0 {
		t.Fatalf("read before the interval: %v", got)
	}
	h.advance(time.Second)
	h.Bus.Expect(t, from, tempTopic+"/value", "-0.5")

	d := h.Svc.Describe()
	if d.Health != "ok" || len(d.Inputs) != 2 {
		t.Fatalf("description %+v", d)
	}
	in := d.Inputs[0]
	if in.Name != "greenhouse_temperature" || in.Topic != tempTopic || in.Unit != "°C" || in.Type != "number" ||
		*in.Min != -40 || *in.Max != 80 || in.Interval.D() != 5*time.Second || in.Value != -0.5 {
		t.Errorf("temperature input %+v", in)
	}
	if hum := d.Inputs[1]; hum.Unit != "%RH" || *hum.Min != 0 || *hum.Max != 100 || hum.Value != 65.2 {
		t.Errorf("humidity input %+v", hum)
	}
	st := h.state()
	if len(st.Sensors) != 1 {
		t.Fatalf("state %+v", st)
	}
	s := st.Sensors[0]
	if s.Driver != "iio" || s.Device != "iio:device1 (dht11@0)" || s.Reads != 2 || s.Temperature != tempTopic || s.Interval.D() != 5*time.Second {
		t.Errorf("sensor state %+v", s)
	}
	if st.Schema["setup"] == nil {
		t.Errorf("no setup schema in %+v", st.Schema)
	}
}

// TestServiceDeadband: a reading is published only once it has moved at
// least the deadband from the last one published, each input on its own.
func TestServiceDeadband(t *testing.T) {
	cfg := dht22.Config{Sensors: []dht22.SensorConfig{{Name: "greenhouse", Pin: 4, Interval: services.Duration(2 * time.Second),
		Deadband: dht22.Deadband{Temperature: 0.5, Humidity: 2}}}}
	h := start(t, cfg, "", options{})
	h.fs.Set(temp0, "21300")
	h.fs.Set(hum0, "50000")
	from := h.Bus.Mark()
	steps := []struct {
		temp, hum string
	}{
		{"21300", "50000"}, // first reading: published
		{"21500", "51000"}, // 0.2 °C, 1 %RH: held back
		{"21700", "51900"}, // 0.4 °C, 1.9 %RH from what was published: held back
		{"21800", "52000"}, // 0.5 °C (21.8 − 21.3, 0.4999… in floating point), 2 %RH: published
		{"21800", "52000"}, // unchanged
		{"21300", "50500"}, // −0.5 °C: published; −1.5 %RH: held back
	}
	for _, s := range steps {
		h.fs.Set(temp0, s.temp)
		h.fs.Set(hum0, s.hum)
		h.advance(2 * time.Second)
	}
	if got, want := strings.Join(h.Published(from, tempTopic+"/value"), " "), "21.3 21.8 21.3"; got != want {
		t.Errorf("temperatures published %q, want %q", got, want)
	}
	if got, want := strings.Join(h.Published(from, humTopic+"/value"), " "), "50 52"; got != want {
		t.Errorf("humidities published %q, want %q", got, want)
	}
	if got := len(h.Published(from, tempTopic)); got != 3 {
		t.Errorf("%d JSON temperatures, want 3: the two topics go together", got)
	}
}

// TestServiceReadErrors: the kernel's EIO is retried 2, 4, 8 and 16 s
// apart and reported only at the fifth in a row, with its field, in the
// health and the sensor's state; a good read clears it. A missing
// attribute (the overlay unloaded) is reported at once. The other sensor
// goes on regardless.
func TestServiceReadErrors(t *testing.T) {
	cfg := dht22.Config{Sensors: []dht22.SensorConfig{
		{Name: "greenhouse", Pin: 4, Device: "dht11@0", Interval: services.Duration(30 * time.Second)},
		{Name: "shed", Pin: 17, Device: "dht11@1", Interval: services.Duration(2 * time.Second)},
	}}
	h := start(t, cfg, "", options{fs: twoFS()})
	h.advance(0)
	h.Bus.Expect(t, 0, tempTopic+"/value", "-10.1")
	h.fs.Fail(temp0, syscall.EIO)
	from := h.Bus.Mark()
	shed := from
	h.advance(30 * time.Second) // the first failure
	for i, d := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
		h.advance(d)
		if errs := h.ReadErrors(from); len(errs) != 0 {
			t.Fatalf("reported after %d retryable errors: %+v", i+2, errs)
		}
	}
	if d := h.Svc.Describe(); d.Health != "ok" {
		t.Errorf("unhealthy after 4 retryable errors: %q", d.Error)
	}
	h.advance(16 * time.Second) // the fifth
	errs := h.ReadErrors(from)
	if len(errs) != 1 || !errs[0].HasError(services.CodeHardware, "sensors[0]") ||
		!strings.Contains(errs[0].Error.Message, "greenhouse") || !strings.Contains(errs[0].Error.Message, "in_temp_input: input/output error") {
		t.Fatalf("read errors %+v", errs)
	}
	var data services.ReadErrorData
	if err := json.Unmarshal(errs[0].Data, &data); err != nil || data.Errors != 5 || data.RetryIn.D() != 32*time.Second {
		t.Errorf("read error data %s", errs[0].Data)
	}
	d := h.Svc.Describe()
	if d.Health != "error" || !strings.Contains(d.Error, "1 of 2 channels failing; greenhouse: 5 read errors, last: dht22: iio iio:device1 (dht11@0) in_temp_input: input/output error") {
		t.Errorf("health %q: %q", d.Health, d.Error)
	}
	if s := h.state().Sensors[0]; !s.Failing || s.Errors != 5 || s.Consecutive != 5 || s.LastError == "" {
		t.Errorf("sensor state %+v", s)
	}
	// shed went on: read at each of the five advances (the fake clock
	// fires a timer once per advance).
	if got := len(h.Published(shed, host+"/dht22/input/shed_temperature/value")); got != 5 {
		t.Errorf("shed published %d values while greenhouse failed, want 5", got)
	}

	// Back: published, healthy, back to its interval.
	h.fs.Fail(temp0, nil)
	h.fs.Set(temp0, "-9800")
	from = h.Bus.Mark()
	h.advance(32 * time.Second)
	h.Bus.Expect(t, from, tempTopic+"/value", "-9.8")
	if d := h.Svc.Describe(); d.Health != "ok" {
		t.Errorf("health after a good read %q", d.Error)
	}

	// A missing attribute is not retryable: reported at the first error.
	h.fs.Fail(temp0, syscall.ENOENT)
	from = h.Bus.Mark()
	h.advance(30 * time.Second)
	if errs := h.ReadErrors(from); len(errs) != 1 || !errs[0].HasError(services.CodeHardware, "sensors[0]") {
		t.Errorf("a missing attribute: read errors %+v, want one at once", errs)
	}
}

// TestServiceConflicts: a data pin another service holds, or one IIO
// device named twice, is refused naming both holders and changes nothing.
func TestServiceConflicts(t *testing.T) {
	h := start(t, greenhouse(), t.TempDir(), options{holds: map[string][]services.Claim{
		"gpio": {services.PinClaim("input[0].pin", 17)},
	}})
	tests := []servicestest.BadRequest{
		{Name: "pin held by gpio", Payload: `{"sensors":[{"name":"shed","pin":17,"device":"dht11@1"}]}`,
			Field: "sensors[0].pin", Says: "dht22 cannot take GPIO 17: gpio (input[0].pin) holds it", Code: services.CodeConflict},
		{Name: "pin of i2c1", Payload: `{"sensors":[{"name":"shed","pin":3,"driver":"sim"}]}`,
			Field: "sensors[0].pin", Says: "dht22 cannot take GPIO 3: buses (i2c1 pins, buses[0]) holds it", Code: services.CodeConflict},
		{Name: "one device twice", Payload: `{"sensors":[{"name":"a","pin":4},{"name":"b","pin":5}]}`,
			Field: "sensors[1].device", Says: "iio:dht11 is already used by sensors[0].device", Code: services.CodeConflict},
	}
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			h.Refuses(t, tc)
			if held := h.Claims.Held(dht22.Name); len(held) != 2 || held[0].Pin != 4 {
				t.Errorf("claims changed: %v", held)
			}
		})
	}
}

// TestServiceEstop: an estop halts the service (setups refused, the flag
// kept across a restart) but the sensors, which drive nothing, go on.
func TestServiceEstop(t *testing.T) {
	dir := t.TempDir()
	h := start(t, greenhouse(), dir, options{})
	if r := h.Request("control", `{"cmd":"estop","id":"e"}`); r.Status != "ok" {
		t.Fatalf("estop %+v", r)
	}
	if r := h.Request("setup", `{"sensors":[]}`); !r.HasError(services.CodeHalted, "") {
		t.Errorf("setup while halted: %+v", r)
	}
	from := h.Bus.Mark()
	h.advance(0)
	h.Bus.Expect(t, from, tempTopic+"/value", "-10.1")
	if !h.state().Halted {
		t.Error("halted not in the description")
	}
	h.Stop()
	h = start(t, greenhouse(), dir, options{})
	if !h.state().Halted {
		t.Fatal("the halt did not survive a restart")
	}
	if r := h.Request("control", "recover"); r.Status != "ok" {
		t.Fatalf("recover %+v", r)
	}
	if r := h.Request("setup", `{"sensors":[]}`); r.Status != "ok" {
		t.Errorf("setup after recover %+v", r)
	}
}

// TestServiceSim: --sim reads every sensor from the simulator, whatever
// its driver, with plausible values that change over time.
func TestServiceSim(t *testing.T) {
	cfg := dht22.Config{Sensors: []dht22.SensorConfig{
		{Name: "greenhouse", Pin: 4, Driver: "iio", Device: "dht11@9", Interval: services.Duration(time.Minute)},
		{Name: "shed", Pin: 17, Driver: "godht"},
	}}
	h := start(t, cfg, "", options{sim: true})
	seen := map[string]bool{}
	for range 60 {
		h.advance(time.Minute)
	}
	for _, p := range h.Published(0, tempTopic) {
		v := value(t, p)
		if v.Value < -40 || v.Value > 80 || v.Unit != "°C" || v.Raw != int64(v.Value*1000+0.5*sign(v.Value)) {
			t.Errorf("implausible %s", p)
		}
		seen[p[:strings.Index(p, ",")]] = true
	}
	if len(seen) < 5 {
		t.Errorf("%d different temperatures in an hour: %v", len(seen), seen)
	}
	if len(h.Published(0, host+"/dht22/input/shed_humidity/value")) == 0 {
		t.Error("the godht sensor did not read under --sim")
	}
	for _, s := range h.state().Sensors {
		if s.Driver != "sim" {
			t.Errorf("sensor %s runs on %s under --sim", s.Name, s.Driver)
		}
	}
	if sim, ok := h.Svc.Sensor("greenhouse").(*dht22.Sim); !ok {
		t.Errorf("Sensor(greenhouse) is %T, want *dht22.Sim", sim)
	}
}

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}

// TestServiceOpenErrors: a setup naming a device that is not there, or a
// pin the overlay does not use, is refused with the field and what to
// do, and changes nothing.
func TestServiceOpenErrors(t *testing.T) {
	h := start(t, greenhouse(), t.TempDir(), options{})
	tests := []struct {
		name, payload, field, message string
	}{
		{name: "no such device", payload: `{"sensors":[{"name":"greenhouse","pin":4,"device":"dht11@7"}]}`,
			field: "sensors[0]", message: `greenhouse: dht22: iio: "dht11@7": no such IIO device under bus/iio/devices (devices present: iio:device0 (mcp3008), iio:device1 (dht11@0); is the dtoverlay loaded?)`},
		{name: "not the overlay's pin", payload: `{"sensors":[{"name":"greenhouse","pin":22}]}`,
			field: "sensors[0].pin", message: "greenhouse: dht22: iio:device1 (dht11@0) is the dht11 overlay's sensor on GPIO 4, not GPIO 22"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Request("setup", tc.payload)
			if !r.HasError(services.CodeHardware, tc.field) || !strings.Contains(r.Error.Message, tc.message) {
				t.Errorf("result %+v\nwant a hardware error at %s saying %q", r.Problems(), tc.field, tc.message)
			}
			if st := h.state(); len(st.Config.Sensors) != 1 || st.Config.Sensors[0].Pin != 4 || st.Config.Sensors[0].Device != "" {
				t.Errorf("config changed: %+v", st.Config)
			}
		})
	}
}

// TestServiceBootWithoutDevice: at start a sensor whose device is not
// there yet (its overlay's module still loading) does not hold up the
// others; it is reported, retried, and read once it appears.
func TestServiceBootWithoutDevice(t *testing.T) {
	fs := twoFS()
	fs.Set("bus/iio/devices/iio:device1/name", "mcp3208\n")
	cfg := dht22.Config{Sensors: []dht22.SensorConfig{
		{Name: "greenhouse", Pin: 4, Device: "dht11@0"},
		{Name: "shed", Pin: 17, Device: "dht11@1"},
	}}
	h := start(t, cfg, "", options{fs: fs})
	h.advance(0)
	h.Bus.Expect(t, 0, host+"/dht22/input/shed_temperature/value", "21")
	if errs := h.ReadErrors(0); len(errs) != 1 || !errs[0].HasError(services.CodeHardware, "sensors[0]") || !strings.Contains(errs[0].Error.Message, "no such IIO device") {
		t.Fatalf("read errors %+v", errs)
	}
	if d := h.Svc.Describe(); !strings.Contains(d.Error, "greenhouse: 1 read errors") {
		t.Errorf("health %q", d.Error)
	}
	fs.Set("bus/iio/devices/iio:device1/name", "dht11@0\n")
	from := h.Bus.Mark()
	h.advance(2 * time.Second) // retried after dht22.MinInterval
	h.Bus.Expect(t, from, tempTopic+"/value", "-10.1")
}

// TestServiceMergeKeepsUnchanged: a merge replaces a sensor by name and
// leaves the others reading, undisturbed (not reopened, no new read).
func TestServiceMergeKeepsUnchanged(t *testing.T) {
	cfg := dht22.Config{Sensors: []dht22.SensorConfig{
		{Name: "greenhouse", Pin: 4, Device: "dht11@0"},
		{Name: "shed", Pin: 17, Device: "dht11@1"},
	}}
	h := start(t, cfg, "", options{fs: twoFS()})
	h.advance(0)
	h.Bus.Expect(t, 0, host+"/dht22/input/shed_temperature/value", "21")
	before := h.state().Sensors[1].Reads
	r := h.Request("setup", `{"merge":true,"sensors":[{"name":"greenhouse","pin":4,"device":"dht11@0","interval":"1m"},{"name":"attic","pin":5,"driver":"sim"}]}`)
	if r.Status != "ok" {
		t.Fatalf("merge %+v", r)
	}
	st := h.state()
	if len(st.Config.Sensors) != 3 || st.Config.Sensors[0].Interval.D() != time.Minute || st.Config.Sensors[2].Name != "attic" {
		t.Errorf("merged config %+v", st.Config)
	}
	if st.Sensors[1].Reads != before || st.Sensors[0].Reads != 0 {
		t.Errorf("reads after merge: greenhouse %d (reopened: 0), shed %d (kept: %d)", st.Sensors[0].Reads, st.Sensors[1].Reads, before)
	}
}

// TestServiceRemovedSensorCleared: a sensor a setup drops has its
// retained values cleared, both topics of both inputs.
func TestServiceRemovedSensorCleared(t *testing.T) {
	h := start(t, greenhouse(), "", options{})
	h.advance(0)
	h.Bus.Expect(t, 0, humTopic+"/value", "65.2")
	if r := h.Request("setup", `{"sensors":[]}`); r.Status != "ok" {
		t.Fatalf("setup %+v", r)
	}
	if got := h.Retained(); len(got) != 0 {
		t.Errorf("retained after removing the sensor: %v", got)
	}
	from := h.Bus.Mark()
	h.advance(time.Hour)
	if got := h.Published(from, tempTopic); len(got) != 0 {
		t.Errorf("a removed sensor published %v", got)
	}
	_ = servicestest.Timeout
}
