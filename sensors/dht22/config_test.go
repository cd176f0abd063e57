package dht22_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/sensors/dht22"
	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// TestServiceBadRequestsChangeNothing is the dht22 part of the project's
// bad-input corpus: every payload is refused with a clear error naming
// its field, and changes nothing (the state file, the retained topics,
// the description).
func TestServiceBadRequestsChangeNothing(t *testing.T) {
	dir := t.TempDir()
	h := start(t, greenhouse(), dir, options{holds: map[string][]services.Claim{"gpio": {services.PinClaim("output[0].pin", 25)}}})
	if r := h.Request("setup", `{"id":"ok","sensors":[{"name":"greenhouse","pin":4,"interval":"30s","deadband":{"temperature":0.2}}]}`); r.Status != "ok" {
		t.Fatalf("setup %+v", r)
	}
	h.advance(0)
	h.Bus.Expect(t, 0, tempTopic+"/value", "-10.1")
	before := h.Snapshot()
	if saved, retained := h.Saved(), h.Retained(); saved == "" || len(retained) != 4 {
		t.Fatalf("nothing to compare: saved %q, retained %v", saved, retained)
	}

	big := `{"sensors":[],"pad":"` + strings.Repeat("x", services.MaxPayload) + `"}`
	sensor := func(members string) string {
		return `{"sensors":[{"name":"greenhouse","pin":4` + members + `}]}`
	}
	tests := []servicestest.BadRequest{
		{Name: "malformed JSON", Payload: `{"sensors":[`, Code: services.CodeMalformed, Says: "not valid JSON"},
		{Name: "YAML garbage", Payload: "sensors: [", Code: services.CodeMalformed, Says: "neither JSON nor YAML"},
		{Name: "not an object", Payload: `[1,2]`, Code: services.CodeMalformed, Says: "must be an object"},
		{Name: "sensors not a list", Payload: `{"sensors":{"name":"greenhouse","pin":4}}`, Code: services.CodeMalformed, Field: "sensors", Says: "must be a list"},
		{Name: "unknown member", Payload: `{"sensor":[]}`, Code: services.CodeMalformed, Field: "sensor", Says: `unknown field "sensor" (fields: sensors)`},
		{Name: "unknown sensor member", Payload: sensor(`,"offset":0.5`), Code: services.CodeMalformed, Field: "sensors[0].offset", Says: "unknown field"},
		{Name: "pin as a string", Payload: `{"sensors":[{"name":"greenhouse","pin":"4"}]}`, Code: services.CodeMalformed, Field: "sensors[0].pin", Says: "must be an integer"},
		{Name: "pin missing", Payload: `{"sensors":[{"name":"greenhouse"}]}`, Code: services.CodeMalformed, Field: "sensors[0].pin", Says: "pin is required"},
		{Name: "name missing", Payload: `{"sensors":[{"pin":4}]}`, Code: services.CodeMalformed, Field: "sensors[0].name", Says: "name is required"},
		{Name: "pin off the header", Payload: `{"sensors":[{"name":"greenhouse","pin":28}]}`, Code: services.CodeInvalid, Field: "sensors[0].pin", Says: "GPIO 28 is not on the header"},
		{Name: "interval too short", Payload: sensor(`,"interval":"1s"`), Code: services.CodeInvalid, Field: "sensors[0].interval", Says: "cannot be read more often than every 2s"},
		{Name: "interval in ms too short", Payload: sensor(`,"interval":1500`), Code: services.CodeInvalid, Field: "sensors[0].interval", Says: "1.5s"},
		{Name: "interval negative", Payload: sensor(`,"interval":"-10s"`), Code: services.CodeInvalid, Field: "sensors[0].interval", Says: "-10s"},
		{Name: "interval not a duration", Payload: sensor(`,"interval":"soon"`), Code: services.CodeMalformed, Field: "sensors[0].interval", Says: `"soon"`},
		{Name: "interval over a day", Payload: sensor(`,"interval":"25h"`), Code: services.CodeInvalid, Field: "sensors[0].interval", Says: "at most 24h"},
		{Name: "unknown driver", Payload: sensor(`,"driver":"dht11"`), Code: services.CodeInvalid, Field: "sensors[0].driver", Says: `unknown driver "dht11" (want iio, godht or sim)`},
		{Name: "device for sim", Payload: sensor(`,"driver":"sim","device":"dht11@0"`), Code: services.CodeInvalid, Field: "sensors[0].device", Says: "only for the iio driver"},
		{Name: "device a path", Payload: sensor(`,"device":"../../../dev/mem"`), Code: services.CodeInvalid, Field: "sensors[0].device", Says: "not an IIO device name"},
		{Name: "negative deadband", Payload: sensor(`,"deadband":{"temperature":-0.5}`), Code: services.CodeInvalid, Field: "sensors[0].deadband.temperature", Says: "-0.5 °C"},
		{Name: "deadband over the range", Payload: sensor(`,"deadband":{"humidity":150}`), Code: services.CodeInvalid, Field: "sensors[0].deadband.humidity", Says: "150 %RH"},
		{Name: "deadband unit", Payload: sensor(`,"deadband":{"temperature":"0.5°C"}`), Code: services.CodeMalformed, Field: "sensors[0].deadband.temperature", Says: "must be a number"},
		{Name: "deadband unknown member", Payload: sensor(`,"deadband":{"pressure":1}`), Code: services.CodeMalformed, Field: "sensors[0].deadband.pressure", Says: "unknown field"},
		{Name: "deadband a number", Payload: sensor(`,"deadband":0.5`), Code: services.CodeMalformed, Field: "sensors[0].deadband", Says: "must be an object"},
		{Name: "name with a slash", Payload: `{"sensors":[{"name":"green/house","pin":4}]}`, Code: services.CodeInvalid, Field: "sensors[0].name", Says: "cannot name the inputs"},
		{Name: "name too long", Payload: `{"sensors":[{"name":"` + strings.Repeat("g", 53) + `","pin":4}]}`, Code: services.CodeInvalid, Field: "sensors[0].name", Says: "1–52 bytes"},
		{Name: "duplicate name", Payload: `{"sensors":[{"name":"a","pin":4},{"name":"a","pin":17,"driver":"sim"}]}`, Code: services.CodeConflict, Field: "sensors[1].name", Says: `duplicate name "a" (also sensors[0])`},
		{Name: "duplicate pin", Payload: `{"sensors":[{"name":"a","pin":5,"driver":"sim"},{"name":"b","pin":5,"driver":"sim"}]}`, Code: services.CodeConflict, Field: "sensors[1].pin", Says: "GPIO 5 is already used by sensors[0].pin"},
		{Name: "pin held by gpio", Payload: `{"sensors":[{"name":"greenhouse","pin":25,"driver":"sim"}]}`, Code: services.CodeConflict, Field: "sensors[0].pin", Says: "gpio (output[0].pin) holds it"},
		{Name: "pin of i2c1", Payload: `{"sensors":[{"name":"greenhouse","pin":2,"driver":"sim"}]}`, Code: services.CodeConflict, Field: "sensors[0].pin", Says: "i2c1"},
		{Name: "not the overlay's pin", Payload: `{"sensors":[{"name":"greenhouse","pin":22}]}`, Code: services.CodeHardware, Field: "sensors[0].pin", Says: "dtoverlay=dht11,gpiopin=22"},
		{Name: "no such device", Payload: sensor(`,"device":"dht11@3"`), Code: services.CodeHardware, Field: "sensors[0]", Says: "is the dtoverlay loaded?"},
		{Name: "too many sensors", Payload: `{"sensors":[` + strings.Repeat(`{"name":"a","pin":5},`, 28) + `{"name":"a","pin":5}]}`, Code: services.CodeInvalid, Field: "sensors", Says: "29 sensors; the header has 28 pins"},
		{Name: "merge not a bool", Payload: `{"merge":"yes","sensors":[]}`, Code: services.CodeMalformed, Field: "merge", Says: "must be true or false"},
		{Name: "too large", Payload: big, Code: services.CodeTooLarge, Says: "over the 65536 byte limit"},
		{Name: "get an input as an output", Topic: "get/output/greenhouse_temperature", Code: services.CodeNotFound, Says: "no output named"},
		{Name: "get unknown input", Topic: "get/input/greenhouse", Code: services.CodeNotFound, Says: `no input named "greenhouse"`},
		{Name: "control unknown", Topic: "control", Payload: "reboot", Code: services.CodeInvalid, Field: "cmd", Says: "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			h.Refuses(t, tc)
			h.Unchanged(t, before)
		})
	}
	// Every problem is reported, not just the first.
	r := h.Request("setup", `{"sensors":[{"name":"a/b","pin":30,"interval":"1s","driver":"x"}]}`)
	if len(r.Errors) != 4 {
		t.Errorf("errors %+v, want 4", r.Errors)
	}
}

// TestSchemaCoversModel keeps the published JSON Schema in step with the
// structs: every member a payload may carry is in the schema and back.
func TestSchemaCoversModel(t *testing.T) {
	servicestest.SchemaCoversModel(t, dht22.Schemas()["setup"].(map[string]any), map[string]reflect.Type{
		"":                 reflect.TypeFor[dht22.Config](),
		"sensors":          reflect.TypeFor[dht22.SensorConfig](),
		"sensors.deadband": reflect.TypeFor[dht22.Deadband](),
	})
}

func ExampleConfig_Check() {
	var cfg dht22.Config
	_ = services.Decode([]byte("sensors:\n  - {name: greenhouse, pin: 4, interval: 1s}\n"), 0, &cfg)
	for _, e := range cfg.Check(services.Checker{}) {
		fmt.Println(e.Code, e.Field, e.Message)
	}
	// Output: invalid sensors[0].interval interval 1s: a DHT22 cannot be read more often than every 2s (at most 24h0m0s)
}
