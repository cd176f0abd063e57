package sonar_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/rollcall/rollcall/sensors/sonar"
	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// FuzzSetup feeds the setup decoder and checks arbitrary payloads: they
// must not panic, every error must carry a code and a message, and a
// setup that passes must survive a marshal/parse round trip unchanged,
// as the state file makes it do. The seed corpus is in
// testdata/fuzz/FuzzSetup.
func FuzzSetup(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"rangers":[]}`,
		`{"rangers":[{"name":"front","trigger":23,"echo":24}]}`,
		`{"merge":true,"id":"x","rangers":[{"name":"back","driver":"gpio","trigger":5,"echo":6,"samples":3,"min":0.1,"max":2.5,"interval":"250ms","deadband":0.01,"temperature":"air"}]}`,
		"rangers:\n  - {name: bin, driver: sim, trigger: 12, echo: 13, sim_target: {topic: pi1/gpio/output/lamp, high: 1, near: 0.3, far: 1.8}}\n",
		`{"rangers":[{"name":"a","trigger":23,"echo":24,"temperature":"pi1/sonar/input/a"}]}`,
		`{"rangers":[{"name":"a","trigger":23,"echo":23,"max":1e309}]}`,
	} {
		f.Add([]byte(s))
	}
	claims := servicestest.Claims(f, map[string][]services.Claim{"gpio": {services.PinClaim("output[0].pin", 25)}})
	f.Fuzz(func(t *testing.T, payload []byte) {
		var cfg sonar.Config
		errs := services.Decode(payload, services.MaxPayload, &cfg)
		if errs == nil {
			errs = append(cfg.Check(services.Checker{Topics: topics}), claims.Check(sonar.Name, cfg.Claims())...)
		}
		for _, e := range errs {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("error without code or message: %+v", e)
			}
		}
		if errs != nil {
			return
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var again sonar.Config
		if errs := services.Decode(b, 0, &again); errs != nil {
			t.Fatalf("re-parse of %s: %v", b, errs)
		}
		if len(again.Rangers) == 0 && len(cfg.Rangers) == 0 {
			return // nil and empty lists alike
		}
		if !reflect.DeepEqual(again, cfg) {
			t.Fatalf("round trip:\n%+v\n%+v", cfg, again)
		}
	})
}
