package dht22_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/sensors/dht22"
	"github.com/rollcall/rollcall/services"
)

// TestServiceBadRequestsChangeNothing is the dht22 part of the project's
// bad-input corpus: every payload is refused with a clear error naming
// its field, and changes nothing (the state file, the retained topics,
// the description).
func TestServiceBadRequestsChangeNothing(t *testing.T) {
	dir := t.TempDir()
	h := start(t, greenhouse(), dir, options{holds: map[string][]services.Claim{"gpio": {services.PinClaim("output[0].pin", 25)}}})
	if r := h.request("setup", `{"id":"ok","sensors":[{"name":"greenhouse","pin":4,"interval":"30s","deadband":{"temperature":0.2}}]}`); r.Status != "ok" {
		t.Fatalf("setup %+v", r)
	}
	h.advance(0)
	h.bus.Expect(t, 0, tempTopic+"/value", "-10.1")
	saved, retained, before := h.saved(), h.retained(), h.state()
	if saved == "" || len(retained) != 4 {
		t.Fatalf("nothing to compare: saved %q, retained %v", saved, retained)
	}

	big := `{"sensors":[],"pad":"` + strings.Repeat("x", services.MaxPayload) + `"}`
	sensor := func(members string) string {
		return `{"sensors":[{"name":"greenhouse","pin":4` + members + `}]}`
	}
	tests := []struct {
		name, topic, payload string
		code, field, message string
	}{
		{name: "malformed JSON", payload: `{"sensors":[`, code: services.CodeMalformed, message: "not valid JSON"},
		{name: "YAML garbage", payload: "sensors: [", code: services.CodeMalformed, message: "neither JSON nor YAML"},
		{name: "not an object", payload: `[1,2]`, code: services.CodeMalformed, message: "must be an object"},
		{name: "sensors not a list", payload: `{"sensors":{"name":"greenhouse","pin":4}}`, code: services.CodeMalformed, field: "sensors", message: "must be a list"},
		{name: "unknown member", payload: `{"sensor":[]}`, code: services.CodeMalformed, field: "sensor", message: `unknown field "sensor" (fields: sensors)`},
		{name: "unknown sensor member", payload: sensor(`,"offset":0.5`), code: services.CodeMalformed, field: "sensors[0].offset", message: "unknown field"},
		{name: "pin as a string", payload: `{"sensors":[{"name":"greenhouse","pin":"4"}]}`, code: services.CodeMalformed, field: "sensors[0].pin", message: "must be an integer"},
		{name: "pin missing", payload: `{"sensors":[{"name":"greenhouse"}]}`, code: services.CodeMalformed, field: "sensors[0].pin", message: "pin is required"},
		{name: "name missing", payload: `{"sensors":[{"pin":4}]}`, code: services.CodeMalformed, field: "sensors[0].name", message: "name is required"},
		{name: "pin off the header", payload: `{"sensors":[{"name":"greenhouse","pin":28}]}`, code: services.CodeInvalid, field: "sensors[0].pin", message: "GPIO 28 is not on the header"},
		{name: "interval too short", payload: sensor(`,"interval":"1s"`), code: services.CodeInvalid, field: "sensors[0].interval", message: "cannot be read more often than every 2s"},
		{name: "interval in ms too short", payload: sensor(`,"interval":1500`), code: services.CodeInvalid, field: "sensors[0].interval", message: "1.5s"},
		{name: "interval negative", payload: sensor(`,"interval":"-10s"`), code: services.CodeInvalid, field: "sensors[0].interval", message: "-10s"},
		{name: "interval not a duration", payload: sensor(`,"interval":"soon"`), code: services.CodeMalformed, field: "sensors[0].interval", message: `"soon"`},
		{name: "interval over a day", payload: sensor(`,"interval":"25h"`), code: services.CodeInvalid, field: "sensors[0].interval", message: "at most 24h"},
		{name: "unknown driver", payload: sensor(`,"driver":"dht11"`), code: services.CodeInvalid, field: "sensors[0].driver", message: `unknown driver "dht11" (want iio, godht or sim)`},
		{name: "device for sim", payload: sensor(`,"driver":"sim","device":"dht11@0"`), code: services.CodeInvalid, field: "sensors[0].device", message: "only for the iio driver"},
		{name: "device a path", payload: sensor(`,"device":"../../../dev/mem"`), code: services.CodeInvalid, field: "sensors[0].device", message: "not an IIO device name"},
		{name: "negative deadband", payload: sensor(`,"deadband":{"temperature":-0.5}`), code: services.CodeInvalid, field: "sensors[0].deadband.temperature", message: "-0.5 °C"},
		{name: "deadband over the range", payload: sensor(`,"deadband":{"humidity":150}`), code: services.CodeInvalid, field: "sensors[0].deadband.humidity", message: "150 %RH"},
		{name: "deadband unit", payload: sensor(`,"deadband":{"temperature":"0.5°C"}`), code: services.CodeMalformed, field: "sensors[0].deadband.temperature", message: "must be a number"},
		{name: "deadband unknown member", payload: sensor(`,"deadband":{"pressure":1}`), code: services.CodeMalformed, field: "sensors[0].deadband.pressure", message: "unknown field"},
		{name: "deadband a number", payload: sensor(`,"deadband":0.5`), code: services.CodeMalformed, field: "sensors[0].deadband", message: "must be an object"},
		{name: "name with a slash", payload: `{"sensors":[{"name":"green/house","pin":4}]}`, code: services.CodeInvalid, field: "sensors[0].name", message: "cannot name the inputs"},
		{name: "name too long", payload: `{"sensors":[{"name":"` + strings.Repeat("g", 53) + `","pin":4}]}`, code: services.CodeInvalid, field: "sensors[0].name", message: "1–52 bytes"},
		{name: "duplicate name", payload: `{"sensors":[{"name":"a","pin":4},{"name":"a","pin":17,"driver":"sim"}]}`, code: services.CodeConflict, field: "sensors[1].name", message: `duplicate name "a" (also sensors[0])`},
		{name: "duplicate pin", payload: `{"sensors":[{"name":"a","pin":5,"driver":"sim"},{"name":"b","pin":5,"driver":"sim"}]}`, code: services.CodeConflict, field: "sensors[1].pin", message: "GPIO 5 is already used by sensors[0].pin"},
		{name: "pin held by gpio", payload: `{"sensors":[{"name":"greenhouse","pin":25,"driver":"sim"}]}`, code: services.CodeConflict, field: "sensors[0].pin", message: "gpio (output[0].pin) holds it"},
		{name: "pin of i2c1", payload: `{"sensors":[{"name":"greenhouse","pin":2,"driver":"sim"}]}`, code: services.CodeConflict, field: "sensors[0].pin", message: "i2c1"},
		{name: "not the overlay's pin", payload: `{"sensors":[{"name":"greenhouse","pin":22}]}`, code: services.CodeHardware, field: "sensors[0].pin", message: "dtoverlay=dht11,gpiopin=22"},
		{name: "no such device", payload: sensor(`,"device":"dht11@3"`), code: services.CodeHardware, field: "sensors[0]", message: "is the dtoverlay loaded?"},
		{name: "too many sensors", payload: `{"sensors":[` + strings.Repeat(`{"name":"a","pin":5},`, 28) + `{"name":"a","pin":5}]}`, code: services.CodeInvalid, field: "sensors", message: "29 sensors; the header has 28 pins"},
		{name: "merge not a bool", payload: `{"merge":"yes","sensors":[]}`, code: services.CodeMalformed, field: "merge", message: "must be true or false"},
		{name: "too large", payload: big, code: services.CodeTooLarge, message: "over the 65536 byte limit"},
		{name: "get an input as an output", topic: "get/output/greenhouse_temperature", code: services.CodeNotFound, message: "no output named"},
		{name: "get unknown input", topic: "get/input/greenhouse", code: services.CodeNotFound, message: `no input named "greenhouse"`},
		{name: "control unknown", topic: "control", payload: "reboot", code: services.CodeInvalid, field: "cmd", message: "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topic := tc.topic
			if topic == "" {
				topic = "setup"
			}
			r := h.request(topic, tc.payload)
			if r.Status != "error" || r.Error == nil {
				t.Fatalf("result %+v, want an error", r)
			}
			if !r.HasError(tc.code, tc.field) {
				t.Errorf("errors %+v, want code %s at %q", r.Problems(), tc.code, tc.field)
			} else if e := r.Problems()[0]; !strings.Contains(e.Message, tc.message) {
				t.Errorf("message %q does not say %q", e.Message, tc.message)
			}
			if got := h.saved(); got != saved {
				t.Errorf("state file changed:\n%s", got)
			}
			if got := h.retained(); !reflect.DeepEqual(got, retained) {
				t.Errorf("retained topics changed:\n%v\nwant %v", got, retained)
			}
			if got := h.state(); !reflect.DeepEqual(got, before) {
				t.Errorf("state changed:\n%+v\n%+v", got, before)
			}
		})
	}
	// Every problem is reported, not just the first.
	r := h.request("setup", `{"sensors":[{"name":"a/b","pin":30,"interval":"1s","driver":"x"}]}`)
	if len(r.Errors) != 4 {
		t.Errorf("errors %+v, want 4", r.Errors)
	}
}

// TestSchemaCoversModel keeps the published JSON Schema in step with the
// structs: every member a payload may carry is in the schema and back.
func TestSchemaCoversModel(t *testing.T) {
	setup := dht22.Schemas()["setup"].(map[string]any)["properties"].(map[string]any)
	sensor := setup["sensors"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)
	deadband := sensor["deadband"].(map[string]any)["properties"].(map[string]any)
	tests := []struct {
		name  string
		props map[string]any
		typ   reflect.Type
	}{
		{"setup", setup, reflect.TypeFor[dht22.Config]()},
		{"sensor", sensor, reflect.TypeFor[dht22.SensorConfig]()},
		{"deadband", deadband, reflect.TypeFor[dht22.Deadband]()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fields := map[string]bool{}
			for i := range tc.typ.NumField() {
				name, _, _ := strings.Cut(tc.typ.Field(i).Tag.Get("json"), ",")
				fields[name] = true
				if _, ok := tc.props[name]; !ok {
					t.Errorf("%s missing from the schema", name)
				}
			}
			for name := range tc.props {
				if !fields[name] && name != "id" && name != "merge" {
					t.Errorf("the schema has %s, the model does not", name)
				}
			}
		})
	}
	if _, err := json.Marshal(dht22.Schemas()); err != nil {
		t.Error(err)
	}
}

func ExampleConfig_Check() {
	var cfg dht22.Config
	_ = services.Decode([]byte("sensors:\n  - {name: greenhouse, pin: 4, interval: 1s}\n"), 0, &cfg)
	for _, e := range cfg.Check(services.Checker{}) {
		fmt.Println(e.Code, e.Field, e.Message)
	}
	// Output: invalid sensors[0].interval interval 1s: a DHT22 cannot be read more often than every 2s (at most 24h0m0s)
}
