package dac

import (
	"testing"

	"github.com/rollcall/rollcall/services/servicestest"
)

// FuzzSetup feeds the setup decoder and checks arbitrary payloads: they
// must not panic, every error must carry a code and a message, and a
// setup that passes must survive a marshal/parse round trip unchanged.
// Seeds beyond these are in testdata/fuzz/FuzzSetup.
func FuzzSetup(f *testing.F) {
	servicestest.FuzzSetup[Config](f, topics, nil,
		``, `{}`, `{"outputs":[{"name":"level","init":1.5}]}`,
		`{"chips":[{"name":"m","chip":"mcp4725","addr":97,"vref":5}],"outputs":[{"name":"heat","scale":20,"unit":"%","init":10,"failsafe":0}]}`,
		"chips:\n  - {name: p, chip: pcf8591, addr: 0x4f}\noutputs:\n  - {name: led, follow: pi1/ain/input/light/value}\nfailsafe_after: 1m\n",
		`{"chips":[{"name":"k","chip":"iio","device":"iio:device0"}],"outputs":[{"name":"x","channel":0}]}`,
		`{"outputs":[{"name":"x","init":1e308}]}`, `{"outputs":[{"name":"x","init":"1"}]}`,
	)
}
