package gpio

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// validate checks cfg as the runtime does: its own checks, then its
// claims against a host with i2c1 enabled and GPIO 4 held by dht22.
func validate(t *testing.T, cfg Config) services.Errors {
	errs := cfg.Check(services.Checker{Topics: topics})
	return append(errs, servicestest.Claims(t, nil).Check(Name, cfg.Claims())...)
}

func TestCheck(t *testing.T) {
	type problem struct{ code, field string }
	tests := []struct {
		name string
		cfg  Config
		want []problem
	}{
		{name: "seed", cfg: seed()},
		{name: "empty", cfg: Config{}},
		{name: "pin 28", cfg: Config{PWM: []PWMPin{{Name: "sonar_angle", Pin: 28}}},
			want: []problem{{services.CodeInvalid, "pwm[0].pin"}}},
		{name: "negative pin", cfg: Config{Output: []OutputPin{{Name: "a", Pin: -1}}},
			want: []problem{{services.CodeInvalid, "output[0].pin"}}},
		{name: "i2c pin", cfg: Config{Input: []InputPin{{Name: "a", Pin: 3}}},
			want: []problem{{services.CodeConflict, "input[0].pin"}}},
		{name: "dht22 pin", cfg: Config{Output: []OutputPin{{Name: "a", Pin: 4}}},
			want: []problem{{services.CodeConflict, "output[0].pin"}}},
		{name: "duplicate name across kinds", cfg: Config{Output: []OutputPin{{Name: "a", Pin: 5}}, PWM: []PWMPin{{Name: "a", Pin: 6}}},
			want: []problem{{services.CodeConflict, "pwm[0].name"}}},
		{name: "duplicate pin", cfg: Config{Output: []OutputPin{{Name: "a", Pin: 5}}, Input: []InputPin{{Name: "b", Pin: 5}}},
			want: []problem{{services.CodeConflict, "input[0].pin"}}},
		{name: "empty name", cfg: Config{Output: []OutputPin{{Pin: 5}}},
			want: []problem{{services.CodeInvalid, "output[0].name"}}},
		{name: "name with slash", cfg: Config{Output: []OutputPin{{Name: "a/b", Pin: 5}}},
			want: []problem{{services.CodeInvalid, "output[0].name"}}},
		{name: "output enums", cfg: Config{Output: []OutputPin{{Name: "a", Pin: 5, Init: 2, Failsafe: -1, Pull: "sideways"}}},
			want: []problem{{services.CodeInvalid, "output[0].init"}, {services.CodeInvalid, "output[0].failsafe"}, {services.CodeInvalid, "output[0].pull"}}},
		{name: "pwm ranges", cfg: Config{PWM: []PWMPin{{Name: "a", Pin: 18, Init: 101, Failsafe: -1, Period: MaxPeriod + 1, Pol: "upside"}}},
			want: []problem{{services.CodeInvalid, "pwm[0].init"}, {services.CodeInvalid, "pwm[0].failsafe"}, {services.CodeInvalid, "pwm[0].period"}, {services.CodeInvalid, "pwm[0].pol"}}},
		{name: "hardware pwm may be fast", cfg: Config{PWM: []PWMPin{{Name: "a", Pin: 18, Period: 20}}}},
		{name: "software pwm may not", cfg: Config{PWM: []PWMPin{{Name: "a", Pin: 5, Period: 20}}},
			want: []problem{{services.CodeInvalid, "pwm[0].period"}}},
		{name: "input enums and ranges", cfg: Config{Input: []InputPin{{Name: "a", Pin: 5, Edge: "up", Pull: "x",
			Debounce: services.Duration(time.Minute), Scan: services.Duration(time.Millisecond), OnChange: "a/+/b"}}},
			want: []problem{{services.CodeInvalid, "input[0].pull"}, {services.CodeInvalid, "input[0].edge"}, {services.CodeInvalid, "input[0].debounce"},
				{services.CodeInvalid, "input[0].scan"}, {services.CodeInvalid, "input[0].on_change"}}},
		{name: "on_change to another host", cfg: Config{Input: []InputPin{{Name: "a", Pin: 5, OnChange: "pizero1/gpio/set/lamp"}}}},
		{name: "on_change to a topic of one's own", cfg: Config{Input: []InputPin{{Name: "a", Pin: 5, OnChange: "sensors/door"}}}},
		{name: "on_change loops", cfg: Config{Input: []InputPin{{Name: "a", Pin: 5, OnChange: host + "/gpio/get"}, {Name: "b", Pin: 6, OnChange: host + "/gpio/set/x"}}},
			want: []problem{{services.CodeInvalid, "input[0].on_change"}, {services.CodeInvalid, "input[1].on_change"}}},
		{name: "on_change onto another host's state", cfg: Config{Input: []InputPin{{Name: "a", Pin: 5, OnChange: "otherpi/status"},
			{Name: "b", Pin: 6, OnChange: "otherpi/description"}, {Name: "c", Pin: 7, OnChange: "rollcall/inventory"}, {Name: "d", Pin: 8, OnChange: "otherpi/gpio/setup"}}},
			want: []problem{{services.CodeInvalid, "input[0].on_change"}, {services.CodeInvalid, "input[1].on_change"}, {services.CodeInvalid, "input[2].on_change"}, {services.CodeInvalid, "input[3].on_change"}}},
		{name: "follow", cfg: Config{Output: []OutputPin{{Name: "a", Pin: 5, Follow: "pizero1/gpio/input/button"}, {Name: "b", Pin: 6, Follow: host + "/gpio/input/x"}},
			PWM: []PWMPin{{Name: "c", Pin: 18, Follow: "lights/level"}, {Name: "e", Pin: 19, Follow: "pizero1/ain/input/light/value"}}}},
		{name: "follow loops", cfg: Config{Output: []OutputPin{{Name: "a", Pin: 5, Follow: host + "/gpio/output/a"}, {Name: "b", Pin: 6, Follow: host + "/gpio/set/b"},
			{Name: "c", Pin: 7, Follow: "otherpi/gpio/setup"}, {Name: "d", Pin: 8, Follow: "x/#"}, {Name: "e", Pin: 9, Follow: host + "/gpio/output/a/value"}}},
			want: []problem{{services.CodeInvalid, "output[0].follow"}, {services.CodeInvalid, "output[1].follow"}, {services.CodeInvalid, "output[2].follow"}, {services.CodeInvalid, "output[3].follow"},
				{services.CodeInvalid, "output[4].follow"}}},
		{name: "driver", cfg: Config{Driver: "wiringpi"}, want: []problem{{services.CodeInvalid, "driver"}}},
		{name: "failsafe_after", cfg: Config{FailsafeAfter: -1}, want: []problem{{services.CodeInvalid, "failsafe_after"}}},
		{name: "wiring", cfg: Config{Wiring: []Wire{{From: 40, To: 1}}}, want: []problem{{services.CodeInvalid, "wiring[0].from"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []problem
			for _, e := range validate(t, tc.cfg) {
				got = append(got, problem{e.Code, e.Field})
				if e.Message == "" {
					t.Errorf("%s: empty message", e.Field)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecodeSetup(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Config
		field   string // of the first error; "" for success
		code    string
	}{
		{name: "json", payload: `{"output":[{"name":"a","pin":5,"init":1}],"input":[{"name":"b","pin":6,"debounce":20,"scan":"1s"}]}`,
			want: Config{Output: []OutputPin{{Name: "a", Pin: 5, Init: 1}}, Input: []InputPin{{Name: "b", Pin: 6, Debounce: services.Duration(20 * time.Millisecond), Scan: services.Duration(time.Second)}}}},
		{name: "yaml as in the seed", payload: "output:\n  - {name: pump_drive, pin: 25, init: 0, pull: down}\npwm:\n  - {name: servo, pin: 18, init: 20, period: 1000, pol: normal}\ninput:\n  - {name: button, pin: 22, pull: down, edge: both, debounce: 20ms, on_change: pizero1/gpio/set/lamp}\n",
			want: Config{Output: []OutputPin{{Name: "pump_drive", Pin: 25, Pull: "down"}}, PWM: []PWMPin{{Name: "servo", Pin: 18, Init: 20, Period: 1000, Pol: "normal"}},
				Input: []InputPin{{Name: "button", Pin: 22, Pull: "down", Edge: "both", Debounce: services.Duration(20 * time.Millisecond), OnChange: "pizero1/gpio/set/lamp"}}}},
		{name: "not an object", payload: `[1,2]`, code: services.CodeMalformed},
		{name: "null", payload: `null`, code: services.CodeMalformed},
		{name: "truncated", payload: `{"output":[{"name":"a"`, code: services.CodeMalformed},
		{name: "string pin", payload: `{"output":[{"name":"a","pin":"5"}]}`, code: services.CodeMalformed, field: "output[0].pin"},
		{name: "float pin", payload: `{"output":[{"name":"a","pin":5.5}]}`, code: services.CodeMalformed, field: "output[0].pin"},
		{name: "bool pin", payload: `{"output":[{"name":"a","pin":true}]}`, code: services.CodeMalformed, field: "output[0].pin"},
		{name: "missing pin", payload: `{"input":[{"name":"a"}]}`, code: services.CodeMalformed, field: "input[0].pin"},
		{name: "bad duration", payload: `{"input":[{"name":"a","pin":5,"debounce":"soon"}]}`, code: services.CodeMalformed, field: "input[0].debounce"},
		{name: "unknown field", payload: `{"pwm":[{"name":"a","pin":18,"freq":50}]}`, code: services.CodeMalformed, field: "pwm[0].freq"},
		{name: "field name in the wrong case", payload: `{"output":[{"name":"a","PIN":5}]}`, code: services.CodeMalformed, field: "output[0].PIN"},
		{name: "unknown mode", payload: `{"relay":[]}`, code: services.CodeMalformed, field: "relay"},
		{name: "map for a list", payload: `{"output":{"name":"a","pin":5}}`, code: services.CodeMalformed, field: "output"},
		{name: "yaml non-string keys", payload: "output:\n  - {[1]: a}\n", code: services.CodeMalformed},
		{name: "yaml alias", payload: "a: &x {name: a, pin: 5}\noutput: [*x]\n", code: services.CodeMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			errs := services.Decode([]byte(tc.payload), 0, &cfg)
			if tc.code == "" {
				if errs != nil {
					t.Fatalf("errors %v", errs)
				}
				if !reflect.DeepEqual(cfg, tc.want) {
					t.Errorf("config\n%+v\nwant\n%+v", cfg, tc.want)
				}
				return
			}
			if len(errs) == 0 || errs[0].Code != tc.code || errs[0].Field != tc.field {
				t.Fatalf("errors %+v, want %s at %q", errs, tc.code, tc.field)
			}
		})
	}
}

// TestSchemaCoversModel keeps the published JSON Schema in step with the
// structs: every member a payload may carry is in the schema and back.
func TestSchemaCoversModel(t *testing.T) {
	servicestest.SchemaCoversModel(t, Schemas()["setup"].(map[string]any), map[string]reflect.Type{
		"":       reflect.TypeFor[Config](),
		"output": reflect.TypeFor[OutputPin](),
		"pwm":    reflect.TypeFor[PWMPin](),
		"input":  reflect.TypeFor[InputPin](),
		"wiring": reflect.TypeFor[Wire](),
	})
}

func ExampleConfig_Check() {
	var cfg Config
	_ = services.Decode([]byte("pwm:\n  - {name: sonar_angle, pin: 28}\n"), 0, &cfg)
	for _, e := range cfg.Check(services.Checker{Topics: services.Topics{Host: "pizero2", Service: "gpio"}}) {
		fmt.Println(e.Code, e.Field, e.Message)
	}
	// Output: invalid pwm[0].pin GPIO 28 is not on the header (BCM 0–27)
}
