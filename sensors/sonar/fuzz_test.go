package sonar_test

import (
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
	servicestest.FuzzSetup[sonar.Config](f, topics, map[string][]services.Claim{"gpio": {services.PinClaim("output[0].pin", 25)}},
		``, `{}`, `{"rangers":[]}`,
		`{"rangers":[{"name":"front","trigger":23,"echo":24}]}`,
		`{"merge":true,"id":"x","rangers":[{"name":"back","driver":"gpio","trigger":5,"echo":6,"samples":3,"min":0.1,"max":2.5,"interval":"250ms","deadband":0.01,"temperature":"air"}]}`,
		"rangers:\n  - {name: bin, driver: sim, trigger: 12, echo: 13, sim_target: {topic: pi1/gpio/output/lamp, high: 1, near: 0.3, far: 1.8}}\n",
		`{"rangers":[{"name":"a","trigger":23,"echo":24,"temperature":"pi1/sonar/input/a"}]}`,
		`{"rangers":[{"name":"a","trigger":23,"echo":23,"max":1e309}]}`,
	)
}
