package dht22_test

import (
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
	servicestest.FuzzSetup[dht22.Config](f, topics, map[string][]services.Claim{"gpio": {services.PinClaim("output[0].pin", 25)}},
		``, `{}`, `{"sensors":[]}`,
		`{"sensors":[{"name":"greenhouse","pin":4}]}`,
		`{"merge":true,"id":[1],"sensors":[{"name":"shed","pin":17,"driver":"iio","device":"dht11@1","interval":"30s","deadband":{"temperature":0.2,"humidity":1}}]}`,
		"sensors:\n  - {name: attic, pin: 5, driver: sim, interval: 2000, deadband: {humidity: 2.5}}\n",
		`{"sensors":[{"name":"a","pin":4,"interval":"1s"}]}`,
		`{"sensors":[{"name":"a","pin":4,"deadband":{"temperature":1e308}}]}`,
	)
}
