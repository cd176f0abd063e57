package ain

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
		``, `{}`, `{"channels":[{"name":"soil","channel":0}]}`,
		`{"chips":[{"name":"ads","chip":"ads1115","addr":73}],"channels":[{"name":"b","chip":"ads","channel":0,"neg":1,"range":0.256,"rate":860,"interval":"2ms"}]}`,
		"chips:\n  - {name: adc, chip: mcp3008, cs: 1, vref: 5, speed_hz: 1350000}\nchannels:\n  - {name: level, channel: 7, scale: 20, offset: -10, unit: cm, deadband: 0.5}\n",
		`{"chips":[{"name":"k","chip":"iio","device":"iio:device0","vref":3.3}],"channels":[{"name":"x","channel":12}]}`,
		`{"chips":[{"name":"yl40","chip":"pcf8591","dac":true}],"channels":[{"name":"x","channel":0,"neg":3}]}`,
		`{"channels":[{"name":"x","channel":0,"interval":1e308}]}`, `{"channels":[{"name":"x","channel":"0"}]}`,
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
	if len(c.Channels) == 0 {
		c.Channels = nil
	}
	return c
}
