package dht22_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/rollcall/rollcall/sensors/dht22"
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
		``, `{}`, `{"sensors":[]}`,
		`{"sensors":[{"name":"greenhouse","pin":4}]}`,
		`{"merge":true,"id":[1],"sensors":[{"name":"shed","pin":17,"driver":"iio","device":"dht11@1","interval":"30s","deadband":{"temperature":0.2,"humidity":1}}]}`,
		"sensors:\n  - {name: attic, pin: 5, driver: sim, interval: 2000, deadband: {humidity: 2.5}}\n",
		`{"sensors":[{"name":"a","pin":4,"interval":"1s"}]}`,
		`{"sensors":[{"name":"a","pin":4,"deadband":{"temperature":1e308}}]}`,
	} {
		f.Add([]byte(s))
	}
	claims := servicestest.Claims(f, map[string][]services.Claim{"gpio": {services.PinClaim("output[0].pin", 25)}})
	f.Fuzz(func(t *testing.T, payload []byte) {
		var cfg dht22.Config
		errs := services.Decode(payload, services.MaxPayload, &cfg)
		if errs == nil {
			errs = append(cfg.Check(services.Checker{Topics: topics}), claims.Check(dht22.Name, cfg.Claims())...)
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
		var again dht22.Config
		if errs := services.Decode(b, 0, &again); errs != nil {
			t.Fatalf("re-parse of %s: %v", b, errs)
		}
		if len(again.Sensors) == 0 && len(cfg.Sensors) == 0 {
			return // nil and empty lists alike
		}
		if !reflect.DeepEqual(again, cfg) {
			t.Fatalf("round trip:\n%+v\n%+v", cfg, again)
		}
	})
}
