package gpio

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rollcall/rollcall/services"
)

func TestValidate(t *testing.T) {
	held := func(pin int) (string, bool) {
		switch pin {
		case 2, 3:
			return "i2c1", true
		case 4:
			return "dht22", true
		}
		return "", false
	}
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
		{name: "missing name", cfg: Config{Output: []OutputPin{{Pin: 5}}},
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
			Debounce: Duration(time.Minute), Scan: Duration(time.Millisecond), OnChange: "a/+/b"}}},
			want: []problem{{services.CodeInvalid, "input[0].pull"}, {services.CodeInvalid, "input[0].edge"}, {services.CodeInvalid, "input[0].debounce"},
				{services.CodeInvalid, "input[0].scan"}, {services.CodeInvalid, "input[0].on_change"}}},
		{name: "on_change to another host", cfg: Config{Input: []InputPin{{Name: "a", Pin: 5, OnChange: "pizero1/gpio/set/lamp"}}}},
		{name: "driver", cfg: Config{Driver: "wiringpi"}, want: []problem{{services.CodeInvalid, "driver"}}},
		{name: "failsafe_after", cfg: Config{FailsafeAfter: -1}, want: []problem{{services.CodeInvalid, "failsafe_after"}}},
		{name: "wiring", cfg: Config{Wiring: []Wire{{From: 40, To: 1}}}, want: []problem{{services.CodeInvalid, "wiring[0].from"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []problem
			for _, e := range tc.cfg.Validate(held) {
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

func TestParseSetup(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Config
		field   string // of the first error; "" for success
		code    string
	}{
		{name: "json", payload: `{"output":[{"name":"a","pin":5,"init":1}],"input":[{"name":"b","pin":6,"debounce":20,"scan":"1s"}]}`,
			want: Config{Output: []OutputPin{{Name: "a", Pin: 5, Init: 1}}, Input: []InputPin{{Name: "b", Pin: 6, Debounce: Duration(20 * time.Millisecond), Scan: Duration(time.Second)}}}},
		{name: "yaml as in the seed", payload: "output:\n  - {name: pump_drive, pin: 25, init: 0, pull: down}\npwm:\n  - {name: servo, pin: 18, init: 20, period: 1000, pol: normal}\ninput:\n  - {name: button, pin: 22, pull: down, edge: both, debounce: 20ms, on_change: pizero1/gpio/set/lamp}\n",
			want: Config{Output: []OutputPin{{Name: "pump_drive", Pin: 25, Pull: "down"}}, PWM: []PWMPin{{Name: "servo", Pin: 18, Init: 20, Period: 1000, Pol: "normal"}},
				Input: []InputPin{{Name: "button", Pin: 22, Pull: "down", Edge: "both", Debounce: Duration(20 * time.Millisecond), OnChange: "pizero1/gpio/set/lamp"}}}},
		{name: "not an object", payload: `[1,2]`, code: services.CodeMalformed},
		{name: "null", payload: `null`, code: services.CodeMalformed},
		{name: "truncated", payload: `{"output":[{"name":"a"`, code: services.CodeMalformed},
		{name: "string pin", payload: `{"output":[{"name":"a","pin":"5"}]}`, code: services.CodeMalformed, field: "output[0].pin"},
		{name: "float pin", payload: `{"output":[{"name":"a","pin":5.5}]}`, code: services.CodeMalformed, field: "output[0].pin"},
		{name: "missing pin", payload: `{"input":[{"name":"a"}]}`, code: services.CodeMalformed, field: "input[0].pin"},
		{name: "bad duration", payload: `{"input":[{"name":"a","pin":5,"debounce":"soon"}]}`, code: services.CodeMalformed, field: "input[0]"},
		{name: "unknown field", payload: `{"pwm":[{"name":"a","pin":18,"freq":50}]}`, code: services.CodeMalformed, field: "pwm[0].freq"},
		{name: "field name in the wrong case", payload: `{"output":[{"name":"a","PIN":5}]}`, code: services.CodeMalformed, field: "output[0].PIN"},
		{name: "unknown mode", payload: `{"relay":[]}`, code: services.CodeMalformed, field: "relay"},
		{name: "merge not bool", payload: `{"merge":"yes"}`, code: services.CodeMalformed, field: "merge"},
		{name: "yaml non-string keys", payload: "output:\n  - {1: a}\n", code: services.CodeMalformed},
		{name: "too large", payload: strings.Repeat(" ", services.MaxPayload+1), code: services.CodeTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, errs := ParseSetup([]byte(tc.payload))
			if tc.code == "" {
				if errs != nil {
					t.Fatalf("errors %v", errs)
				}
				if !reflect.DeepEqual(s.Config, tc.want) {
					t.Errorf("config\n%+v\nwant\n%+v", s.Config, tc.want)
				}
				return
			}
			if len(errs) == 0 || errs[0].Code != tc.code || errs[0].Field != tc.field {
				t.Fatalf("errors %+v, want %s at %q", errs, tc.code, tc.field)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want time.Duration
		bad  bool
	}{
		{name: "string", in: `"20ms"`, want: 20 * time.Millisecond},
		{name: "number is ms", in: `20`, want: 20 * time.Millisecond},
		{name: "fraction of ms", in: `0.5`, want: 500 * time.Microsecond},
		{name: "numeric string", in: `"1500"`, want: 1500 * time.Millisecond},
		{name: "compound", in: `"1m30s"`, want: 90 * time.Second},
		{name: "garbage", in: `"soon"`, bad: true},
		{name: "huge", in: `1e300`, bad: true},
		{name: "bool", in: `true`, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tc.in), &d)
			if tc.bad != (err != nil) || (!tc.bad && d.D() != tc.want) {
				t.Fatalf("%s: %v, %v", tc.in, d, err)
			}
		})
	}
	// YAML and viper's mapstructure hook read the same forms.
	var y struct{ D Duration }
	if err := yaml.Unmarshal([]byte("d: 20ms"), &y); err != nil || y.D.D() != 20*time.Millisecond {
		t.Errorf("yaml: %v %v", y.D, err)
	}
	if err := yaml.Unmarshal([]byte("d: 20"), &y); err != nil || y.D.D() != 20*time.Millisecond {
		t.Errorf("yaml number: %v %v", y.D, err)
	}
	to := reflect.TypeFor[Duration]()
	for _, in := range []any{"2s", 2000, 2000.0} {
		v, err := DecodeHook(reflect.TypeOf(in), to, in)
		if err != nil || v.(Duration).D() != 2*time.Second {
			t.Errorf("DecodeHook(%v) = %v, %v", in, v, err)
		}
	}
	if v, _ := DecodeHook(reflect.TypeOf(""), reflect.TypeOf(""), "x"); v != "x" {
		t.Error("DecodeHook touched a string field")
	}
	b, _ := json.Marshal(Config{Input: []InputPin{{Name: "a", Debounce: Duration(20 * time.Millisecond)}}})
	if !strings.Contains(string(b), `"debounce":"20ms"`) {
		t.Errorf("marshal: %s", b)
	}
}

// TestSchemaCoversModel keeps the published JSON Schema in step with the
// structs: every member a payload may carry is in the schema and back.
func TestSchemaCoversModel(t *testing.T) {
	setup := Schemas()["setup"].(map[string]any)["properties"].(map[string]any)
	check := func(kind string, typ reflect.Type) {
		var props map[string]any
		if kind == "" {
			props = setup
		} else {
			props = setup[kind].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)
		}
		fields := map[string]bool{}
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			fields[name] = true
			if _, ok := props[name]; !ok {
				t.Errorf("%s.%s missing from the schema", kind, name)
			}
		}
		for name := range props {
			if !fields[name] && name != "id" && name != "merge" {
				t.Errorf("schema has %s.%s, the model does not", kind, name)
			}
		}
	}
	check("", reflect.TypeFor[Config]())
	check("output", reflect.TypeFor[OutputPin]())
	check("pwm", reflect.TypeFor[PWMPin]())
	check("input", reflect.TypeFor[InputPin]())
	check("wiring", reflect.TypeFor[Wire]())
}

func ExampleConfig_Validate() {
	s, _ := ParseSetup([]byte("pwm:\n  - {name: sonar_angle, pin: 28}\n"))
	for _, e := range s.Config.Validate(nil) {
		fmt.Println(e.Code, e.Field, e.Message)
	}
	// Output: invalid pwm[0].pin GPIO 28 is not on the header (BCM 0–27)
}
