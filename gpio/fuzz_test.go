package gpio

import (
	"errors"
	"testing"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// FuzzSetup feeds the setup decoder and checks arbitrary payloads: they
// must not panic, every error must carry a code and a message, and a
// setup that passes must survive a marshal/parse round trip unchanged.
func FuzzSetup(f *testing.F) {
	servicestest.FuzzSetup[Config](f, topics, nil,
		``, `{}`, `{"output":[{"name":"a","pin":5,"init":1}]}`,
		`{"merge":true,"id":[1],"pwm":[{"name":"s","pin":18,"init":20,"period":1000,"pol":"normal"}]}`,
		`{"input":[{"name":"b","pin":22,"pull":"down","edge":"both","debounce":"20ms","on_change":"pizero1/gpio/set/lamp","scan":1000}]}`,
		"output:\n  - {name: pump_drive, pin: 25, init: 0, pull: down}\n",
		`{"pwm":[{"name":"sonar_angle","pin":28}]}`, `{"failsafe_after":"1h","wiring":[{"from":25,"to":17}]}`,
		`{"output":[{"name":"a","pin":"5"}]}`, "- 1\n- 2", `{"input":[{"name":"x","pin":1,"debounce":1e308}]}`,
	)
}

// FuzzSet feeds the set payload parser, for a plain output and a PWM
// output: it must not panic, a refusal carries a code, a message and, for
// a value it names, the field; an accepted level is 0 or 1 and an
// accepted duty is within 0–100 %.
func FuzzSet(f *testing.F) {
	for _, s := range []string{
		`1`, `0`, `on`, `OFF`, ` true `, `{"value":1}`, `{"value":"on","for":"5s"}`, `{"value":50,"period":20000}`,
		`{"value":1,"for":"-1s"}`, `{"value":1,"period":7}`, `{"value":null}`, `{"id":3}`, `NaN`, `1e400`, `-0`,
		`{"value":"{\"value\":1}"}`, `{"value":1,"value":0}`, "\x00", `{"value":[1]}`,
	} {
		f.Add([]byte(s))
	}
	outs := []*output{{name: "lamp", pin: 23}, {name: "servo", pin: 18, pwm: true, period: 20000}}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, o := range outs {
			c, err := parseSet(payload, o)
			if err != nil {
				var e services.Error
				var es services.Errors
				switch {
				case errors.As(err, &e):
					es = services.Errors{e}
				case errors.As(err, &es):
				default:
					t.Fatalf("%s: error of type %T: %v", o.name, err, err)
				}
				for _, e := range es {
					if e.Code == "" || e.Message == "" {
						t.Fatalf("%s: error without code or message: %+v", o.name, e)
					}
				}
				continue
			}
			switch {
			case o.pwm && !validDuty(c.value):
				t.Fatalf("%s: duty %v accepted from %q", o.name, c.value, payload)
			case !o.pwm && c.value != 0 && c.value != 1:
				t.Fatalf("%s: level %v accepted from %q", o.name, c.value, payload)
			case c.dur < 0 || c.dur > MaxFailsafeAfter:
				t.Fatalf("%s: for %v accepted from %q", o.name, c.dur, payload)
			}
		}
	})
}
