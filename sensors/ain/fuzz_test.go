package ain

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
		``, `{}`, `{"channels":[{"name":"soil","channel":0}]}`,
		`{"chips":[{"name":"ads","chip":"ads1115","addr":73}],"channels":[{"name":"b","chip":"ads","channel":0,"neg":1,"range":0.256,"rate":860,"interval":"2ms"}]}`,
		"chips:\n  - {name: adc, chip: mcp3008, cs: 1, vref: 5, speed_hz: 1350000}\nchannels:\n  - {name: level, channel: 7, scale: 20, offset: -10, unit: cm, deadband: 0.5}\n",
		`{"chips":[{"name":"k","chip":"iio","device":"iio:device0","vref":3.3}],"channels":[{"name":"x","channel":12}]}`,
		`{"chips":[{"name":"yl40","chip":"pcf8591","dac":true}],"channels":[{"name":"x","channel":0,"neg":3}]}`,
		`{"channels":[{"name":"x","channel":0,"interval":1e308}]}`, `{"channels":[{"name":"x","channel":"0"}]}`,
	)
}
