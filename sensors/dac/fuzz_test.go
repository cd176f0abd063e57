package dac

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// FuzzSetup feeds the setup decoder and checks arbitrary payloads: they
// must not panic, every error must carry a code and a message, and a
// setup that passes must survive a marshal/parse round trip unchanged.
// Seeds beyond these are in testdata/fuzz/FuzzSetup.
func FuzzSetup(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"outputs":[{"name":"level","init":1.5}]}`,
		`{"chips":[{"name":"m","chip":"mcp4725","addr":97,"vref":5}],"outputs":[{"name":"heat","scale":20,"unit":"%","init":10,"failsafe":0}]}`,
		"chips:\n  - {name: p, chip: pcf8591, addr: 0x4f}\noutputs:\n  - {name: led, follow: pi1/ain/input/light/value}\nfailsafe_after: 1m\n",
		`{"chips":[{"name":"k","chip":"iio","device":"iio:device0"}],"outputs":[{"name":"x","channel":0}]}`,
		`{"outputs":[{"name":"x","init":1e308}]}`, `{"outputs":[{"name":"x","init":"1"}]}`,
	} {
		f.Add([]byte(s))
	}
	claims := servicestest.Claims(f, nil)
	f.Fuzz(func(t *testing.T, payload []byte) {
		var cfg Config
		errs := services.Decode(payload, services.MaxPayload, &cfg)
		if errs == nil {
			errs = append(cfg.Check(services.Checker{Topics: topics}), claims.Check(Name, cfg.Claims())...)
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
		var again Config
		if errs := services.Decode(b, 0, &again); errs != nil {
			t.Fatalf("re-parse of %s: %v", b, errs)
		}
		if !reflect.DeepEqual(normal(again), normal(cfg)) {
			t.Fatalf("round trip:\n%+v\n%+v", cfg, again)
		}
	})
}

// normal treats empty and nil lists alike.
func normal(c Config) Config {
	if len(c.Chips) == 0 {
		c.Chips = nil
	}
	if len(c.Outputs) == 0 {
		c.Outputs = nil
	}
	return c
}
