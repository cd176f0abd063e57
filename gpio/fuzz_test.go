package gpio

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzSetup feeds the setup parser and validator arbitrary payloads: they
// must not panic, every error must carry a code and a message, and a
// setup that passes must survive a marshal/parse round trip unchanged.
func FuzzSetup(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"output":[{"name":"a","pin":5,"init":1}]}`,
		`{"merge":true,"id":[1],"pwm":[{"name":"s","pin":18,"init":20,"period":1000,"pol":"normal"}]}`,
		`{"input":[{"name":"b","pin":22,"pull":"down","edge":"both","debounce":"20ms","on_change":"pizero1/gpio/set/lamp","scan":1000}]}`,
		"output:\n  - {name: pump_drive, pin: 25, init: 0, pull: down}\n",
		`{"pwm":[{"name":"sonar_angle","pin":28}]}`, `{"failsafe_after":"1h","wiring":[{"from":25,"to":17}]}`,
		`{"output":[{"name":"a","pin":"5"}]}`, "- 1\n- 2", `{"input":[{"name":"x","pin":1,"debounce":1e308}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		s, errs := ParseSetup(payload)
		if errs == nil {
			errs = s.Config.Validate(func(pin int) (string, bool) { return "i2c1", pin == 2 || pin == 3 })
		}
		for _, e := range errs {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("error without code or message: %+v", e)
			}
		}
		if errs != nil {
			return
		}
		b, err := json.Marshal(s.Config)
		if err != nil {
			t.Fatal(err)
		}
		again, errs := ParseSetup(b)
		if errs != nil {
			t.Fatalf("re-parse of %s: %v", b, errs)
		}
		if !reflect.DeepEqual(normal(again.Config), normal(s.Config)) {
			t.Fatalf("round trip:\n%+v\n%+v", s.Config, again.Config)
		}
	})
}

// normal treats empty and nil lists alike.
func normal(c Config) Config {
	if len(c.Output) == 0 {
		c.Output = nil
	}
	if len(c.PWM) == 0 {
		c.PWM = nil
	}
	if len(c.Input) == 0 {
		c.Input = nil
	}
	if len(c.Wiring) == 0 {
		c.Wiring = nil
	}
	return c
}
