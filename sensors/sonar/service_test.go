package sonar_test

import (
	"encoding/json"
	"math"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/rollcall/rollcall/sensors/sonar"
	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

var nan = math.NaN()

// front is one simulated ranger on GPIO 23 and 24.
func front(extra func(*sonar.RangerConfig)) sonar.Config {
	r := sonar.RangerConfig{Name: "front", Driver: "sim", Trigger: 23, Echo: 24}
	if extra != nil {
		extra(&r)
	}
	return sonar.Config{Rangers: []sonar.RangerConfig{r}}
}

const frontTopic = host + "/sonar/input/front"

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// simTol is how far a sim reading may be from its target: the median of
// pings with 10 µs (1.7 mm) of noise each, to the millimetre.
const simTol = 0.005

// TestServiceReadings: a ranger reads at once and then every interval;
// each reading is the median of its pings, published retained as JSON
// and as a bare number; the description lists the input with its unit,
// range and interval.
func TestServiceReadings(t *testing.T) {
	h := start(t, sonar.Config{}, t.TempDir(), options{})
	r := h.Request("setup", `{"id":1,"rangers":[{"name":"front","driver":"sim","trigger":23,"echo":24,"interval":"500ms","samples":3}]}`)
	if r.Status != "ok" {
		t.Fatalf("setup %+v", r)
	}
	h.sim("front").SetTarget(1.2)
	v := h.reading(0, "front")
	// 1.2 m there and back at 343.2 m/s (20 °C) is 6993 µs.
	if !near(metres(v), 1.2, simTol) || v.Unit != "m" || v.Raw == nil || !near(float64(*v.Raw), 6993, 10) ||
		v.TS != "2023-11-14T22:13:20Z" || v.Status != "" || v.Celsius != nil {
		t.Errorf("reading %+v", v)
	}
	bare := h.Bus.Published(0, frontTopic+"/value")
	if len(bare) != 1 || bare[0].Payload != *jsonNumber(v.Value) || !bare[0].Retained {
		t.Errorf("bare value %+v, want %v retained", bare, *v.Value)
	}
	for _, m := range h.Bus.Published(0, frontTopic) {
		if !m.Retained {
			t.Error("reading not retained")
		}
	}
	h.sim("front").SetTarget(0.8)
	from := h.Bus.Mark()
	h.Advance(499 * time.Millisecond)
	if got := h.readings(from, "front"); len(got) != 0 {
		t.Fatalf("read before the interval: %+v", got)
	}
	if v := h.reading(time.Millisecond, "front"); !near(metres(v), 0.8, simTol) {
		t.Errorf("second reading %+v", v)
	}

	d := h.Svc.Describe()
	if d.Health != "ok" || len(d.Inputs) != 1 {
		t.Fatalf("description %+v", d)
	}
	in := d.Inputs[0]
	if in.Name != "front" || in.Topic != frontTopic || in.Unit != "m" || in.Type != "number" || *in.Min != 0 || *in.Max != 4 ||
		in.Interval.D() != 500*time.Millisecond || !near(in.Value.(float64), 0.8, simTol) {
		t.Errorf("input %+v", in)
	}
	st := h.state()
	if rs := st.Rangers[0]; rs.Driver != "sim" || rs.Samples != 3 || rs.Reads != 2 || rs.Speed != 343.2 || rs.Topic != frontTopic {
		t.Errorf("ranger state %+v", rs)
	}
	if st.Schema["setup"] == nil {
		t.Error("no setup schema in the description")
	}
}

func jsonNumber(v *float64) *string {
	b, _ := json.Marshal(v)
	s := string(b)
	return &s
}

// TestServiceDeadbandAndNoTarget: a reading is published once it moved
// the deadband from the last one published; losing the target and
// finding it again are always published; no target is {"value":null,
// "status":"no_target"} with the bare value's retained message cleared.
func TestServiceDeadbandAndNoTarget(t *testing.T) {
	h := start(t, front(func(r *sonar.RangerConfig) { r.Deadband = 0.05; r.Min = 0.3; r.Max = 2 }), "", options{})
	sim := h.sim("front")
	steps := []struct {
		name    string
		target  float64
		publish bool
		want    float64 // NaN: no target
	}{
		{name: "first reading", target: 1.0, publish: true, want: 1.0},
		{name: "within the deadband", target: 1.03, publish: false},
		{name: "past it", target: 1.06, publish: true, want: 1.06},
		{name: "nothing in range", target: math.Inf(1), publish: true, want: nan},
		{name: "still nothing", target: 4.5, publish: false},
		{name: "beyond max", target: 2.5, publish: false},
		{name: "back", target: 1.07, publish: true, want: 1.07},
		{name: "nearer than min", target: 0.2, publish: true, want: nan},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			sim.SetTarget(s.target)
			from := h.Bus.Mark()
			h.Advance(time.Second)
			got := h.readings(from, "front")
			if !s.publish {
				if len(got) != 0 {
					t.Fatalf("published %+v", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d readings, want 1", len(got))
			}
			v, bare := got[0], h.Bus.Published(from, frontTopic+"/value")
			if math.IsNaN(s.want) {
				if v.Value != nil || v.Status != "no_target" || v.Unit != "m" {
					t.Errorf("reading %+v, want no target", v)
				}
				if len(bare) != 1 || bare[0].Payload != "" || !bare[0].Retained {
					t.Errorf("bare value %+v, want its retained message cleared", bare)
				}
				return
			}
			if !near(metres(v), s.want, simTol) || v.Status != "" {
				t.Errorf("reading %v m %+v, want %v m", metres(v), v, s.want)
			}
		})
	}
	// An echo beyond max still says how long it took.
	h2 := start(t, front(func(r *sonar.RangerConfig) { r.Max = 2 }), "", options{})
	h2.sim("front").SetTarget(2.5)
	if v := h2.reading(0, "front"); v.Value != nil || v.Raw == nil || !near(float64(*v.Raw), 14568, 20) {
		t.Errorf("beyond max: %+v, want no target with the echo's round trip", v)
	}
}

// TestServiceCompensation: a ranger naming a dht22 sensor takes the speed
// of sound from its retained temperature, and follows its changes; one
// naming a topic reads a bare number there.
func TestServiceCompensation(t *testing.T) {
	bus := servicestest.NewBus()
	bus.Retain(host+"/dht22/input/air_temperature", `{"value":-10,"unit":"°C","raw":-10000,"ts":"2023-11-14T22:13:00Z"}`)
	cfg := sonar.Config{Rangers: []sonar.RangerConfig{
		{Name: "front", Driver: "sim", Trigger: 23, Echo: 24, Temperature: "air"},
		{Name: "back", Driver: "sim", Trigger: 5, Echo: 6, Temperature: "weather/outside/celsius"},
		{Name: "side", Driver: "sim", Trigger: 12, Echo: 13},
	}}
	h := start(t, cfg, "", options{bus: bus})
	for _, n := range []string{"front", "back", "side"} {
		h.sim(n).SetTarget(1.5)
	}
	from := h.Bus.Mark()
	h.Advance(0)
	f := h.readings(from, "front")
	if len(f) != 1 || !near(metres(f[0]), 1.5, simTol) || f[0].Celsius == nil || *f[0].Celsius != -10 {
		t.Fatalf("front at −10 °C: %+v", f)
	}
	// The echo of 1.5 m in air at −10 °C: 9224 µs, 5 % longer than at 20 °C.
	if !near(float64(*f[0].Raw), 9224, 10) {
		t.Errorf("front's round trip %d µs, want about 9224", *f[0].Raw)
	}
	if rs := h.state().Rangers[0]; rs.Temperature != host+"/dht22/input/air_temperature" || *rs.Celsius != -10 || rs.Speed != 325.2 {
		t.Errorf("front's state %+v", rs)
	}
	if b := h.readings(from, "back"); len(b) != 1 || b[0].Celsius != nil {
		t.Errorf("back before its topic said anything: %+v, want 20 °C assumed", b)
	}

	bus.Send(host+"/dht22/input/air_temperature", `{"value":35,"unit":"°C","raw":35000,"ts":"2023-11-14T22:13:30Z"}`)
	bus.Send("weather/outside/celsius", "-5.5")
	from = h.Bus.Mark()
	h.Advance(time.Second)
	if f := h.readings(from, "front"); len(f) != 1 || *f[0].Celsius != 35 || !near(metres(f[0]), 1.5, simTol) {
		t.Errorf("front at 35 °C: %+v", f)
	}
	if b := h.readings(from, "back"); len(b) != 1 || b[0].Celsius == nil || *b[0].Celsius != -5.5 {
		t.Errorf("back: %+v", b)
	}
	if c := h.Svc.Celsius("side"); c != nil {
		t.Errorf("side compensates with %v", *c)
	}
	// Something that is not a number changes nothing; a number no air
	// has is not used.
	bus.Send("weather/outside/celsius", "warm")
	if c := h.Svc.Celsius("back"); c == nil || *c != -5.5 {
		t.Errorf("back's temperature after a word: %v", c)
	}
	bus.Send("weather/outside/celsius", "3276.7")
	if c := h.Svc.Celsius("back"); c != nil {
		t.Errorf("back compensates with %v °C", *c)
	}
}

// TestServiceSimTarget: a sim ranger's target follows a topic's value,
// mapped from low..high to near..far metres, wandering a little.
func TestServiceSimTarget(t *testing.T) {
	bus := servicestest.NewBus()
	bus.Retain(host+"/gpio/output/sonar_angle", "20")
	cfg := front(func(r *sonar.RangerConfig) {
		r.SimTarget = sonar.SimTarget{Topic: host + "/gpio/output/sonar_angle", Low: 0, High: 100, Near: 0.5, Far: 4.5}
	})
	h := start(t, cfg, "", options{bus: bus})
	if v := h.reading(0, "front"); !near(metres(v), 1.3, 0.025) {
		t.Errorf("at the retained 20 %%: %+v, want 1.3 m", v)
	}
	tests := []struct {
		name, payload string
		want          float64
	}{
		{name: "half", payload: "50", want: 2.5},
		{name: "a reading's JSON", payload: `{"value":25,"unit":"%"}`, want: 1.5},
		{name: "below low: held at near", payload: "-30", want: 0.5},
		{name: "beyond range", payload: "100", want: nan},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bus.Send(host+"/gpio/output/sonar_angle", tc.payload)
			v := h.reading(time.Second, "front")
			if math.IsNaN(tc.want) {
				if v.Status != "no_target" {
					t.Errorf("%+v, want no target", v)
				}
				return
			}
			if !near(metres(v), tc.want, 0.025) {
				t.Errorf("%+v, want %v m", v, tc.want)
			}
		})
	}
}

// TestServiceReadErrors: a ranger whose pings fail is reported at once
// with its field, retried after its interval, then twice, four times
// that (up to a minute), and in
// the health until it reads again; no echo is not an error.
func TestServiceReadErrors(t *testing.T) {
	cfg := sonar.Config{Rangers: []sonar.RangerConfig{
		{Name: "front", Driver: "sim", Trigger: 23, Echo: 24},
		{Name: "back", Driver: "sim", Trigger: 5, Echo: 6},
	}}
	h := start(t, cfg, "", options{})
	h.sim("back").SetTarget(math.Inf(1))
	h.sim("front").Fail(syscall.ETIMEDOUT)
	h.Advance(0)
	errs := h.ReadErrors(0)
	if len(errs) != 1 || !errs[0].HasError(services.CodeHardware, "rangers[0]") || !strings.Contains(errs[0].Error.Message, "front: 5 of 5 pings failed: sonar: sim: connection timed out") {
		t.Fatalf("read errors %+v", errs)
	}
	if d := h.Svc.Describe(); !strings.Contains(d.Error, "1 of 2 channels failing; front: 1 read errors") {
		t.Errorf("health %q", d.Error)
	}
	st := h.state().Rangers
	if !st[0].Failing || st[1].Failing || st[1].Errors != 0 {
		t.Errorf("states %+v", st)
	}
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		h.Advance(d - time.Millisecond)
		if n := h.state().Rangers[0].Errors; n != i+1 {
			t.Fatalf("%d errors %v after the last, want %d: retried early", n, d-time.Millisecond, i+1)
		}
		h.Advance(time.Millisecond)
		if n := h.state().Rangers[0].Errors; n != i+2 {
			t.Fatalf("%d errors %v after the last, want %d", n, d, i+2)
		}
	}
	if errs := h.ReadErrors(0); len(errs) != 1 {
		t.Errorf("%d read error results in 7 s, want 1 (rate-limited)", len(errs))
	}
	h.sim("front").Fail(nil)
	h.sim("front").SetTarget(1)
	if v := h.reading(8*time.Second, "front"); !near(metres(v), 1, simTol) {
		t.Errorf("after the fault: %+v", v)
	}
	if d := h.Svc.Describe(); d.Health != "ok" {
		t.Errorf("health %q", d.Error)
	}
}

// stuckPin is an echo pin whose waits hang until Halt, as a line whose
// driver never answers would.
type stuckPin struct {
	*gpiotest.Pin
	once    sync.Once
	halted  chan struct{}
	waiting chan struct{} // closed when a wait has begun
	began   sync.Once
}

func (p *stuckPin) WaitForEdge(time.Duration) bool {
	p.began.Do(func() { close(p.waiting) })
	<-p.halted
	return false
}

func (p *stuckPin) Halt() error {
	p.once.Do(func() { close(p.halted) })
	return nil
}

// TestServiceStuckRangerBlocksNothing: a ranger stuck in a ping (the real
// clock: each scan in its own goroutine) holds up neither requests nor
// the other rangers, and a setup that drops it still goes through.
func TestServiceStuckRangerBlocksNothing(t *testing.T) {
	stuck := &stuckPin{Pin: &gpiotest.Pin{N: "GPIO6", Num: 6, EdgesChan: make(chan gpio.Level)}, halted: make(chan struct{}), waiting: make(chan struct{})}
	lookup := func(name string) gpio.PinIO {
		switch name {
		case "GPIO5":
			return &gpiotest.Pin{N: name, Num: 5}
		case "GPIO6":
			return stuck
		}
		return nil
	}
	cfg := sonar.Config{Rangers: []sonar.RangerConfig{
		{Name: "stuck", Driver: "gpio", Trigger: 5, Echo: 6},
		{Name: "front", Driver: "sim", Trigger: 23, Echo: 24, Samples: 1, Interval: services.Duration(100 * time.Millisecond)},
	}}
	h := start(t, cfg, "", options{real: true, lookup: lookup})
	select {
	case <-stuck.waiting:
	case <-time.After(servicestest.Timeout):
		t.Fatal("the stuck ranger never pinged")
	}
	from := h.Bus.Mark()
	h.Bus.WaitFor(t, "three readings of front while stuck pings", func(msgs []servicestest.Message, _, _ int) bool {
		n := 0
		for _, m := range msgs[min(from, len(msgs)):] {
			if m.Topic == frontTopic {
				n++
			}
		}
		return n >= 3
	})
	if r := h.Request("get", ""); r.Status != "ok" {
		t.Errorf("get while a ranger is stuck: %+v", r)
	}
	if r := h.Request("setup", `{"rangers":[{"name":"front","driver":"sim","trigger":23,"echo":24}]}`); r.Status != "ok" {
		t.Errorf("setup dropping the stuck ranger: %+v", r)
	}
	if held := h.Claims.Held(sonar.Name); len(held) != 2 {
		t.Errorf("claims %v, want front's two pins", held)
	}
}

// TestServiceConflicts: pins another service holds, one pin for both
// trigger and echo, or one IIO device twice, are refused naming both
// holders.
func TestServiceConflicts(t *testing.T) {
	h := start(t, front(nil), t.TempDir(), options{holds: map[string][]services.Claim{
		"gpio": {services.PinClaim("input[0].pin", 17)},
	}})
	tests := []servicestest.BadRequest{
		{Name: "echo held by gpio", Payload: `{"rangers":[{"name":"back","driver":"sim","trigger":27,"echo":17}]}`,
			Field: "rangers[0].echo", Says: "sonar cannot take GPIO 17: gpio (input[0].pin) holds it", Code: services.CodeConflict},
		{Name: "trigger on i2c1", Payload: `{"rangers":[{"name":"back","driver":"sim","trigger":2,"echo":22}]}`,
			Field: "rangers[0].trigger", Says: "sonar cannot take GPIO 2: buses (i2c1 pins, buses[0]) holds it", Code: services.CodeConflict},
		{Name: "one pin for both", Payload: `{"rangers":[{"name":"back","driver":"sim","trigger":22,"echo":22}]}`,
			Field: "rangers[0].echo", Says: "GPIO 22 is already used by rangers[0].trigger", Code: services.CodeConflict},
		{Name: "one device twice", Payload: `{"rangers":[{"name":"a","trigger":23,"echo":24},{"name":"b","trigger":5,"echo":6}]}`,
			Field: "rangers[1].device", Says: "iio:srf04 is already used by rangers[0].device", Code: services.CodeConflict},
	}
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			h.Refuses(t, tc)
			if held := h.Claims.Held(sonar.Name); len(held) != 2 || held[0].Pin != 23 {
				t.Errorf("claims changed: %v", held)
			}
		})
	}
}

// TestServiceIIO: the kernel's driver, its millimetres turned back into
// the echo and read at the air's speed; a setup naming other pins than
// the overlay's is refused at the field that differs.
func TestServiceIIO(t *testing.T) {
	cfg := sonar.Config{Rangers: []sonar.RangerConfig{{Name: "front", Trigger: 23, Echo: 24, Samples: 1}}}
	h := start(t, cfg, t.TempDir(), options{})
	// 1000 mm at the kernel's 343.5 m/s is 0.999 m at 343.2 m/s (20 °C).
	if v := h.reading(0, "front"); metres(v) != 0.999 || *v.Raw != 5822 {
		t.Errorf("reading %+v", v)
	}
	if rs := h.state().Rangers[0]; rs.Driver != "iio" || rs.Device != "iio:device0 (srf04)" {
		t.Errorf("state %+v", rs)
	}
	h.fs.Set("bus/iio/devices/iio:device0/in_distance_raw", "6500")
	if v := h.reading(time.Second, "front"); v.Status != "no_target" || v.Raw != nil {
		t.Errorf("the module's 38 ms no-target pulse: %+v", v)
	}
	tests := []struct {
		name, payload, field, message string
	}{
		{name: "trigger", payload: `{"rangers":[{"name":"front","trigger":22,"echo":24}]}`, field: "rangers[0].trigger",
			message: "front: sonar: iio:device0 (srf04) is the srf04 overlay's ranger on trigger GPIO 23 and echo GPIO 24, not 22 and 24"},
		{name: "echo", payload: `{"rangers":[{"name":"front","trigger":23,"echo":25}]}`, field: "rangers[0].echo",
			message: "dtoverlay=srf04,trig=23,echo=25"},
		{name: "no such device", payload: `{"rangers":[{"name":"front","trigger":23,"echo":24,"device":"iio:device3"}]}`, field: "rangers[0]",
			message: `"iio:device3": no such IIO device`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Request("setup", tc.payload)
			if !r.HasError(services.CodeHardware, tc.field) || !strings.Contains(r.Error.Message, tc.message) {
				t.Errorf("result %+v\nwant a hardware error at %s saying %q", r.Problems(), tc.field, tc.message)
			}
			// Still live: the ranger the failed setup closed is back.
			h.fs.Set("bus/iio/devices/iio:device0/in_distance_raw", "1500")
			if v := h.reading(time.Second, "front"); metres(v) != 1.499 {
				t.Errorf("after the refused setup: %+v", v)
			}
		})
	}
}

// TestServiceEstop: an estop halts the service (setups refused, kept
// across a restart) but the rangers, which drive nothing that moves, go
// on reading.
func TestServiceEstop(t *testing.T) {
	dir := t.TempDir()
	h := start(t, front(nil), dir, options{})
	if r := h.Request("control", "estop"); r.Status != "ok" {
		t.Fatalf("estop %+v", r)
	}
	if r := h.Request("setup", `{"rangers":[]}`); !r.HasError(services.CodeHalted, "") {
		t.Errorf("setup while halted: %+v", r)
	}
	h.sim("front").SetTarget(2)
	if v := h.reading(0, "front"); !near(metres(v), 2, simTol) {
		t.Errorf("reading while halted %+v", v)
	}
	h.Stop()
	h = start(t, front(nil), dir, options{})
	if !h.state().Halted {
		t.Fatal("the halt did not survive a restart")
	}
	if r := h.Request("control", `{"cmd":"recover"}`); r.Status != "ok" {
		t.Fatalf("recover %+v", r)
	}
}

// TestServiceSim: --sim runs every ranger on the simulator, whatever its
// driver, with a target that moves by itself.
func TestServiceSim(t *testing.T) {
	cfg := sonar.Config{Rangers: []sonar.RangerConfig{
		{Name: "front", Trigger: 23, Echo: 24, Device: "srf04"},
		{Name: "back", Driver: "gpio", Trigger: 5, Echo: 6},
	}}
	h := start(t, cfg, "", options{sim: true})
	seen := map[float64]bool{}
	for range 30 {
		for _, v := range []sonar.Value{h.reading(3*time.Second, "front")} {
			if v.Value == nil || *v.Value < 0.25 || *v.Value > 2.75 {
				t.Fatalf("implausible %+v", v)
			}
			seen[math.Round(*v.Value*10)] = true
		}
	}
	if len(seen) < 10 {
		t.Errorf("%d different decimetres in 90 s: %v", len(seen), seen)
	}
	for _, rs := range h.state().Rangers {
		if rs.Driver != "sim" {
			t.Errorf("%s runs on %s under --sim", rs.Name, rs.Driver)
		}
	}
	h.sim("back")
}
