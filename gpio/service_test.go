package gpio

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// seed is the seed's pizero2 example: outputs on 25 and 23, pull-down
// inputs on 17 and 22, with 25 wired to 17 on the sim board.
func seed() Config {
	return Config{
		Driver: DriverSim,
		Output: []OutputPin{
			{Name: "pump_drive", Pin: 25, Init: 0, Pull: "down"},
			{Name: "valve", Pin: 23, Init: 0},
		},
		Input: []InputPin{
			{Name: "pump_running", Pin: 17, Pull: "down", Edge: "both"},
			{Name: "button", Pin: 22, Pull: "down", Edge: "both", Debounce: services.Duration(20 * time.Millisecond)},
		},
		Wiring: []Wire{{From: 25, To: 17}},
	}
}

func TestServiceSetupSetInput(t *testing.T) {
	h := start(t, Config{Driver: DriverSim}, t.TempDir())
	b := h.Bus
	setup := `{"id":7,"output":[{"name":"lamp","pin":25,"init":0}],
		"input":[{"name":"lamp_sense","pin":17,"pull":"down"},
		         {"name":"switch","pin":22,"pull":"down","on_change":"pizero1/gpio/set/lamp"}],
		"wiring":[{"from":25,"to":17}]}`
	from := b.Mark()
	r := h.Request("setup", setup)
	if r.Status != "ok" || string(r.ID) != "7" {
		t.Fatalf("setup result %+v", r)
	}
	b.Expect(t, from, host+"/gpio/output/lamp", "0")
	b.Expect(t, from, host+"/gpio/input/lamp_sense", "0")
	if st := h.state(); len(st.Pins) != 3 || st.Config.Output[0].Name != "lamp" {
		t.Fatalf("state after setup: %+v", st)
	}

	// set → the output changes → the wired input reports it.
	for _, tc := range []struct{ payload, want string }{
		{"1", "1"}, {"off", "0"}, {"ON", "1"}, {"false", "0"}, {`{"value":true}`, "1"}, {`{"value":"off","id":"x"}`, "0"},
	} {
		from := b.Mark()
		if r := h.Request("set/lamp", tc.payload); r.Status != "ok" {
			t.Fatalf("set %s: %+v", tc.payload, r)
		}
		b.Expect(t, from, host+"/gpio/output/lamp", tc.want)
		b.Expect(t, from, host+"/gpio/input/lamp_sense", tc.want)
		if got := h.level(25); got != (tc.want == "1") {
			t.Errorf("set %s: pin 25 = %v", tc.payload, got)
		}
	}

	// An input with on_change publishes each change there too, not
	// retained: another host's set topic, so the switch on 22 drives
	// pizero1's lamp with no rule engine. Its own topic keeps the
	// retained value.
	from = b.Mark()
	h.sim.Drive(22, pgpio.High)
	b.Expect(t, from, "pizero1/gpio/set/lamp", "1")
	b.Expect(t, from, host+"/gpio/input/switch", "1")
	for _, m := range b.Since(from) {
		if m.Topic == "pizero1/gpio/set/lamp" && m.Retained {
			t.Error("on_change published retained: a restarted pizero1 would replay it")
		}
		if m.Topic == host+"/gpio/input/switch" && !m.Retained {
			t.Error("the input's own value is not retained")
		}
	}
	set1 := b.Mark()
	h.Request("set/lamp", "1")
	b.Expect(t, set1, host+"/gpio/input/lamp_sense", "1")

	// The description lists every pin with its topics and value.
	d := h.Svc.Describe()
	if len(d.Outputs) != 1 || d.Outputs[0].Set != host+"/gpio/set/lamp" || d.Outputs[0].Value != 1.0 {
		t.Errorf("outputs %+v", d.Outputs)
	}
	if len(d.Inputs) != 2 || d.Inputs[1].Topic != host+"/gpio/input/switch" || d.Inputs[1].Value != 1 {
		t.Errorf("inputs %+v", d.Inputs)
	}
	st := servicestest.DecodeState[testState](t, d)
	if st.Pins[2].OnChange != "pizero1/gpio/set/lamp" {
		t.Errorf("on_change not in the pin's state: %+v", st.Pins[2])
	}
	var schema map[string]map[string]any
	if err := json.Unmarshal(st.Schema, &schema); err != nil || schema["setup"]["type"] != "object" || schema["set"]["oneOf"] == nil {
		t.Errorf("schema %s: %v", st.Schema, err)
	}
}

func TestServiceSeedConfig(t *testing.T) {
	h := start(t, seed(), "")
	b := h.Bus
	b.Expect(t, 0, host+"/gpio/output/pump_drive", "0")
	b.Expect(t, 0, host+"/gpio/input/pump_running", "0")
	b.Expect(t, 0, host+"/gpio/input/button", "0")
	from := b.Mark()
	b.Send(host+"/gpio/set/pump_drive", "1")
	b.Expect(t, from, host+"/gpio/input/pump_running", "1")

	// The button is debounced: bounces within 20ms publish nothing, the
	// level that holds does.
	from = b.Mark()
	for _, l := range []pgpio.Level{pgpio.High, pgpio.Low, pgpio.High} {
		h.sim.Drive(22, l)
	}
	servicestest.WaitUntil(t, "the debounce timer", func() bool { return h.Clock.Pending() > 0 })
	servicestest.WaitUntil(t, "all three edges taken", func() bool { return h.inputLevelRead(22) == pgpio.High })
	if got := b.Published(from, host+"/gpio/input/button"); len(got) != 0 {
		t.Fatalf("published before debounce: %v", got)
	}
	h.Clock.Advance(20 * time.Millisecond)
	b.Expect(t, from, host+"/gpio/input/button", "1")
	if got := b.Published(from, host+"/gpio/input/button"); len(got) != 1 {
		t.Errorf("button published %v, want one 1", got)
	}
}

// inputLevelRead reports the level the watcher of pin last took.
func (h *harness) inputLevelRead(pin int) pgpio.Level {
	l := pgpio.Low
	h.Do(func() {
		for _, in := range h.Svc.ins {
			if in.spec.Pin == pin {
				l = in.line.Read()
			}
		}
	})
	return l
}

func TestServiceBadRequestsChangeNothing(t *testing.T) {
	dir := t.TempDir()
	h := start(t, seed(), dir)
	ok := h.Request("setup", `{"merge":true,"output":[{"name":"valve","pin":23,"init":1}]}`)
	if ok.Status != "ok" {
		t.Fatalf("merge setup: %+v", ok)
	}
	if h.Saved() == "" {
		t.Fatal("no state file to compare")
	}
	before := h.Snapshot()

	big := `{"output":[{"name":"x","pin":5}],"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	tests := []servicestest.BadRequest{
		{Name: "malformed json", Topic: "setup", Payload: `{"output":[`, Code: services.CodeMalformed},
		{Name: "wrong type", Topic: "setup", Payload: `{"output":[{"name":"a","pin":"25"}]}`, Code: services.CodeMalformed, Field: "output[0].pin"},
		{Name: "list not object", Topic: "setup", Payload: `{"output":{"name":"a"}}`, Code: services.CodeMalformed, Field: "output"},
		{Name: "unknown mode", Topic: "setup", Payload: `{"relay":[{"name":"a","pin":5}]}`, Code: services.CodeMalformed, Field: "relay"},
		{Name: "unknown field", Topic: "setup", Payload: `{"output":[{"name":"a","pin":5,"inital":1}]}`, Code: services.CodeMalformed, Field: "output[0].inital"},
		{Name: "duplicate name", Topic: "setup", Payload: `{"output":[{"name":"a","pin":5}],"input":[{"name":"a","pin":6}]}`, Code: services.CodeConflict, Field: "input[0].name"},
		{Name: "duplicate pin", Topic: "setup", Payload: `{"output":[{"name":"a","pin":5},{"name":"b","pin":5}]}`, Code: services.CodeConflict, Field: "output[1].pin"},
		{Name: "reserved pin", Topic: "setup", Payload: `{"input":[{"name":"sda","pin":2}]}`, Code: services.CodeConflict, Field: "input[0].pin"},
		{Name: "pin 28", Topic: "setup", Payload: `{"pwm":[{"name":"sonar_angle","pin":28}]}`, Code: services.CodeInvalid, Field: "pwm[0].pin", Says: "GPIO 28 is not on the header"},
		{Name: "bad enum", Topic: "setup", Payload: `{"input":[{"name":"a","pin":5,"edge":"up"}]}`, Code: services.CodeInvalid, Field: "input[0].edge"},
		{Name: "bad range", Topic: "setup", Payload: `{"pwm":[{"name":"a","pin":5,"init":150}]}`, Code: services.CodeInvalid, Field: "pwm[0].init"},
		{Name: "1 MiB", Topic: "setup", Payload: big, Code: services.CodeTooLarge},
		{Name: "yaml garbage", Topic: "setup", Payload: "output: [", Code: services.CodeMalformed},
		{Name: "driver change", Topic: "setup", Payload: `{"driver":"periph"}`, Code: services.CodeInvalid, Field: "driver"},
		{Name: "set unknown", Topic: "set/nope", Payload: "1", Code: services.CodeNotFound},
		{Name: "set input", Topic: "set/button", Payload: "1", Code: services.CodeNotFound},
		{Name: "set bad word", Topic: "set/valve", Payload: "maybe", Code: services.CodeMalformed, Field: "value"},
		{Name: "set out of range", Topic: "set/valve", Payload: "2", Code: services.CodeInvalid, Field: "value"},
		{Name: "set bad json", Topic: "set/valve", Payload: `{"value":1,"for":"soon"}`, Code: services.CodeMalformed, Field: "for"},
		{Name: "set unknown member", Topic: "set/valve", Payload: `{"value":1,"colour":"red"}`, Code: services.CodeMalformed, Field: "colour"},
		{Name: "set period on output", Topic: "set/valve", Payload: `{"value":1,"period":100}`, Code: services.CodeInvalid, Field: "period"},
		{Name: "set 1 MiB", Topic: "set/valve", Payload: big, Code: services.CodeTooLarge},
		{Name: "control unknown", Topic: "control", Payload: "explode", Code: services.CodeInvalid, Field: "cmd"},
		{Name: "get unknown", Topic: "get/input/nope", Payload: "", Code: services.CodeNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			// The first problem is the one named: checks go in order.
			if r := h.Refuses(t, tc); r.Error.Code != tc.Code || r.Error.Field != tc.Field {
				t.Errorf("first error %+v, want code %s field %q", *r.Error, tc.Code, tc.Field)
			}
			h.Unchanged(t, before)
		})
	}
	// Every problem is reported, not just the first.
	r := h.Request("setup", `{"output":[{"name":"a","pin":28,"init":3}],"input":[{"name":"a","pin":3,"pull":"sideways"}]}`)
	if len(r.Errors) != 5 {
		t.Errorf("errors %+v, want 5", r.Errors)
	}
}

func TestServiceQueryAndYAML(t *testing.T) {
	h := start(t, seed(), t.TempDir())
	b := h.Bus
	r := h.Request("setup", "")
	var got services.SetupResult[Config]
	if err := json.Unmarshal(r.Data, &got); err != nil || r.Status != "ok" {
		t.Fatalf("query %+v: %v", r, err)
	}
	if !reflect.DeepEqual(got.Config, seed()) {
		t.Errorf("query config %+v", got.Config)
	}
	yaml := "id: 3\noutput:\n  - {name: pump_drive, pin: 25, init: 1, pull: down}\npwm:\n  - {name: servo, pin: 18, init: 20, period: 1000, pol: normal}\n" +
		"input:\n  - {name: button, pin: 22, pull: down, edge: both, debounce: 20ms, on_change: pizero1/gpio/set/lamp}\n"
	from := b.Mark()
	r = h.Request("setup", yaml)
	if r.Status != "ok" || string(r.ID) != "3" {
		t.Fatalf("yaml setup %+v", r)
	}
	b.Expect(t, from, host+"/gpio/output/servo", "20")
	b.Expect(t, from, host+"/gpio/input/button", "0")
	if duty, period, ok := h.sim.PWMState(18); !ok || duty != dutyOf(20) || period != time.Millisecond {
		t.Errorf("pwm 18: %v %v %v", duty, period, ok)
	}
	if h.sim.Mode(23) != "" || h.sim.Mode(17) != "" {
		t.Error("pins of the old setup still open")
	}
	// PWM set with a new period.
	if r := h.Request("set/servo", `{"value":7.5,"period":20000}`); r.Status != "ok" {
		t.Fatalf("pwm set %+v", r)
	}
	if duty, period, _ := h.sim.PWMState(18); duty != dutyOf(7.5) || period != 20*time.Millisecond {
		t.Errorf("pwm 18 after set: %v %v", duty, period)
	}
	// get republishes values.
	from = b.Mark()
	r = h.Request("get", `{"id":1}`)
	if r.Status != "ok" {
		t.Fatalf("get %+v", r)
	}
	b.Expect(t, from, host+"/gpio/output/pump_drive", "1")
	b.Expect(t, from, host+"/gpio/input/button", "0")
	// ...and a plain get answers with the service's description too.
	var gr services.GetResult
	if err := json.Unmarshal(r.Data, &gr); err != nil || gr.Description == nil ||
		gr.Description.Function != "gpio" || len(gr.Description.Outputs) == 0 {
		t.Errorf("get result carries no description: %s", r.Data)
	}
	from = b.Mark()
	if r := h.Request("get/input/button", ""); r.Status != "ok" {
		t.Fatalf("get input %+v", r)
	}
	if len(b.Published(from, host+"/gpio/output/pump_drive")) != 0 {
		t.Error("get/input/button republished an output")
	}
}

func TestServiceRestoresSetup(t *testing.T) {
	dir := t.TempDir()
	h := start(t, seed(), dir)
	r := h.Request("setup", `{"output":[{"name":"fan","pin":24,"init":1}]}`)
	if r.Status != "ok" {
		t.Fatalf("setup %+v", r)
	}
	h.Stop() // a new service below knows only what is on disk
	if h.level(24) != pgpio.Low {
		t.Error("fan not driven to failsafe on shutdown")
	}
	h2 := start(t, seed(), dir)
	h2.Bus.Expect(t, 0, host+"/gpio/output/fan", "1")
	if st := h2.state(); len(st.Pins) != 1 || st.Pins[0].Name != "fan" {
		t.Fatalf("restored state %+v", st)
	}
	if h2.level(24) != pgpio.High {
		t.Error("fan not at its init level after restore")
	}
	if held := h2.Claims.Held(Name); len(held) != 1 || held[0].Pin != 24 {
		t.Errorf("claimed %v", held)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state dir holds %v, want only gpio.json", entries)
	}
}

func TestServiceEstopRecover(t *testing.T) {
	dir := t.TempDir()
	cfg := seed()
	cfg.Output[1].Failsafe = 1
	h := start(t, cfg, dir)
	b := h.Bus
	b.Send(host+"/gpio/set/pump_drive", "1")
	b.Expect(t, 0, host+"/gpio/output/pump_drive", "1")
	// The set's result may follow its output message: take it first, so
	// the next result read is the estop's.
	if r := b.AwaitResult(t, topics, 0, services.OpSet); r.Status != "ok" {
		t.Fatalf("set %+v", r)
	}
	from := b.Mark()
	r := h.Request("control", `{"cmd":"estop","id":9}`)
	if r.Status != "ok" || string(r.ID) != "9" {
		t.Fatalf("estop %+v", r)
	}
	b.Expect(t, from, host+"/gpio/output/pump_drive", "0")
	b.Expect(t, from, host+"/gpio/output/valve", "1")
	if !h.state().Halted {
		t.Error("halted not in the description")
	}
	for _, req := range []struct{ topic, payload string }{
		{"set/pump_drive", "1"}, {"setup", `{"output":[]}`},
	} {
		r := h.Request(""+req.topic, req.payload)
		if r.Error == nil || r.Error.Code != services.CodeHalted || !strings.Contains(string(r.Data), `"halted":true`) {
			t.Errorf("%s while halted: %+v", req.topic, r)
		}
	}
	if h.level(25) != pgpio.Low {
		t.Error("pump driven while halted")
	}
	// The halt survives a restart.
	h.Stop()
	h = start(t, cfg, dir)
	b = h.Bus
	if !h.state().Halted || h.level(23) != pgpio.High {
		t.Fatal("halt not restored with outputs at failsafe")
	}
	if r := h.Request("control", "recover"); r.Status != "ok" {
		t.Fatalf("recover %+v", r)
	}
	if r := h.Request("set/pump_drive", "1"); r.Status != "ok" {
		t.Fatalf("set after recover %+v", r)
	}
}

func TestServicePulse(t *testing.T) {
	h := start(t, seed(), "")
	b := h.Bus
	from := b.Mark()
	if r := h.Request("set/valve", `{"value":1,"for":"5s"}`); r.Status != "ok" {
		t.Fatalf("pulse %+v", r)
	}
	b.Expect(t, from, host+"/gpio/output/valve", "1")
	h.Advance(4 * time.Second)
	if h.level(23) != pgpio.High {
		t.Fatal("pulse ended early")
	}
	h.Advance(time.Second)
	b.Expect(t, from, host+"/gpio/output/valve", "0")

	// A second pulse inside the first returns to the level before both;
	// a plain set cancels a pulse.
	h.Request("set/valve", `{"value":1,"for":5000}`)
	h.Advance(time.Second)
	h.Request("set/valve", `{"value":1,"for":"10s"}`)
	h.Advance(5 * time.Second)
	if h.level(23) != pgpio.High {
		t.Fatal("first pulse not cancelled by the second")
	}
	h.Advance(5 * time.Second)
	if h.level(23) != pgpio.Low {
		t.Fatal("second pulse did not return to 0")
	}
	h.Request("set/valve", `{"value":1,"for":"1s"}`)
	h.Request("set/valve", `1`)
	h.Advance(2 * time.Second)
	if h.level(23) != pgpio.High {
		t.Fatal("plain set did not cancel the pulse")
	}
}

func TestServiceFailsafeAfter(t *testing.T) {
	cfg := seed()
	cfg.FailsafeAfter = services.Duration(30 * time.Second)
	h := start(t, cfg, "")
	h.Request("set/pump_drive", "1")
	servicestest.WaitUntil(t, "pump on", func() bool { return h.level(25) == pgpio.High })
	h.Connected(false)
	h.Advance(29 * time.Second)
	h.Connected(true) // back in time
	h.Advance(time.Hour)
	if h.level(25) != pgpio.High {
		t.Fatal("failsafe although the broker came back")
	}
	h.Connected(false)
	h.Advance(30 * time.Second)
	if h.level(25) != pgpio.Low || !h.state().Failsafe {
		t.Fatal("outputs not at failsafe after losing the broker")
	}
	h.Connected(true)
	if h.state().Failsafe {
		t.Error("failsafe flag kept after reconnect")
	}
}

// failingDriver fails to open one pin, to exercise rollback.
type failingDriver struct {
	*Sim
	pin int
}

func (d failingDriver) Input(pin int, pull pgpio.Pull) (InputLine, error) {
	if pin == d.pin {
		return nil, errors.New("line busy")
	}
	return d.Sim.Input(pin, pull)
}

func TestServiceSetupRollback(t *testing.T) {
	dir := t.TempDir()
	sim := NewSim()
	h := startWith(t, seed(), dir, failingDriver{sim, 5}, servicestest.NewBus())
	b := h.Bus
	h.Request("set/valve", "1")
	b.Expect(t, 0, host+"/gpio/output/valve", "1")

	r := h.Request("setup", `{"output":[{"name":"valve","pin":24}],"input":[{"name":"new","pin":5}]}`)
	if r.Error == nil || r.Error.Code != services.CodeHardware {
		t.Fatalf("result %+v, want a hardware error", r)
	}
	if sim.Mode(24) != "" || sim.Mode(23) != "output" || sim.Mode(17) != "input" {
		t.Errorf("not rolled back: 24=%q 23=%q 17=%q", sim.Mode(24), sim.Mode(23), sim.Mode(17))
	}
	if l, _ := sim.Level(23); l != pgpio.High {
		t.Error("valve lost its level in the rollback")
	}
	if _, err := os.Stat(filepath.Join(dir, "gpio.json")); !os.IsNotExist(err) {
		t.Error("failed setup was saved")
	}
	if st := h.state(); !reflect.DeepEqual(st.Config, seed()) {
		t.Errorf("config after rollback %+v", st.Config)
	}
	if held := h.Claims.Held(Name); len(held) != 4 {
		t.Errorf("claims after rollback %v", held)
	}
	// The rolled-back inputs still report.
	from := b.Mark()
	h.Request("set/pump_drive", "1")
	b.Expect(t, from, host+"/gpio/input/pump_running", "1")
}

func TestServiceMergeKeepsUnchangedPins(t *testing.T) {
	h := start(t, seed(), "")
	b := h.Bus
	b.Send(host+"/gpio/set/pump_drive", "1")
	b.Expect(t, 0, host+"/gpio/input/pump_running", "1")
	from := b.Mark()
	r := h.Request("setup", `{"merge":true,"input":[{"name":"valve","pin":24}]}`)
	if r.Status != "ok" {
		t.Fatalf("merge %+v", r)
	}
	// valve moved from output 23 to input 24; pump_drive kept its level
	// and was not reopened (no new init publish of 0).
	if h.sim.Mode(23) != "" || h.sim.Mode(24) != "input" || h.level(25) != pgpio.High {
		t.Errorf("after merge: 23=%q 24=%q 25=%v", h.sim.Mode(23), h.sim.Mode(24), h.level(25))
	}
	for _, m := range b.Published(from, host+"/gpio/output/pump_drive") {
		if m.Payload != "1" {
			t.Errorf("pump_drive republished as %q", m.Payload)
		}
	}
	st := h.state()
	if len(st.Config.Output) != 1 || len(st.Config.Input) != 3 {
		t.Errorf("merged config %+v", st.Config)
	}
}

// TestServiceFollow: an output that follows another host's retained input
// takes its value as a set would, including the value the broker kept
// while this host was down, and keeps following it.
func TestServiceFollow(t *testing.T) {
	bus := servicestest.NewBus()
	bus.Retain("pizero1/gpio/input/button", "1")
	cfg := Config{Driver: DriverSim, Output: []OutputPin{{Name: "lamp", Pin: 25, Follow: "pizero1/gpio/input/button"}}}
	h := startWith(t, cfg, "", NewSim(), bus)
	servicestest.WaitUntil(t, "the lamp to take the retained button", func() bool { return h.level(25) == pgpio.High })
	from := bus.Mark()
	bus.Send("pizero1/gpio/input/button", "0")
	bus.Expect(t, from, host+"/gpio/output/lamp", "0")
	if h.level(25) != pgpio.Low {
		t.Error("the lamp did not follow the button")
	}
	// A value the output cannot take changes nothing.
	bus.Send("pizero1/gpio/input/button", "7")
	h.Do(func() {})
	if h.level(25) != pgpio.Low {
		t.Error("an unusable value drove the lamp")
	}
	// While halted, the output stays at failsafe.
	h.Request("control", "estop")
	bus.Send("pizero1/gpio/input/button", "1")
	h.Do(func() {})
	if h.level(25) != pgpio.Low {
		t.Error("a followed value drove the lamp while halted")
	}
}
