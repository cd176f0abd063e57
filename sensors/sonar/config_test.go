package sonar_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/sensors/sonar"
	"github.com/rollcall/rollcall/services"
)

// TestServiceBadRequestsChangeNothing is the sonar part of the project's
// bad-input corpus: every payload is refused with a clear error naming
// its field, and changes nothing (the state file, the retained topics,
// the description).
func TestServiceBadRequestsChangeNothing(t *testing.T) {
	dir := t.TempDir()
	h := start(t, front(nil), dir, options{holds: map[string][]services.Claim{"gpio": {services.PinClaim("output[0].pin", 25)}}})
	if r := h.request("setup", `{"id":"ok","rangers":[{"name":"front","trigger":23,"echo":24,"samples":1,"deadband":0.01}]}`); r.Status != "ok" {
		t.Fatalf("setup %+v", r)
	}
	h.advance(0)
	h.bus.Expect(t, 0, frontTopic+"/value", "0.999")
	saved, retained, before := h.saved(), h.retained(), h.state()
	if saved == "" || len(retained) != 2 {
		t.Fatalf("nothing to compare: saved %q, retained %v", saved, retained)
	}

	big := `{"rangers":[],"pad":"` + strings.Repeat("x", services.MaxPayload) + `"}`
	ranger := func(members string) string {
		return `{"rangers":[{"name":"front","trigger":23,"echo":24` + members + `}]}`
	}
	tests := []struct {
		name, topic, payload string
		code, field, message string
	}{
		{name: "malformed JSON", payload: `{"rangers":[{`, code: services.CodeMalformed, message: "not valid JSON"},
		{name: "YAML garbage", payload: "rangers: {", code: services.CodeMalformed, message: "neither JSON nor YAML"},
		{name: "a string", payload: `"front"`, code: services.CodeMalformed, message: "must be an object"},
		{name: "rangers not a list", payload: `{"rangers":"front"}`, code: services.CodeMalformed, field: "rangers", message: "must be a list"},
		{name: "unknown member", payload: `{"sonars":[]}`, code: services.CodeMalformed, field: "sonars", message: `unknown field "sonars" (fields: rangers)`},
		{name: "unknown ranger member", payload: ranger(`,"angle":30`), code: services.CodeMalformed, field: "rangers[0].angle", message: "unknown field"},
		{name: "trigger as a string", payload: `{"rangers":[{"name":"front","trigger":"23","echo":24}]}`, code: services.CodeMalformed, field: "rangers[0].trigger", message: "must be an integer"},
		{name: "echo missing", payload: `{"rangers":[{"name":"front","trigger":23}]}`, code: services.CodeMalformed, field: "rangers[0].echo", message: "echo is required"},
		{name: "echo off the header", payload: `{"rangers":[{"name":"front","trigger":23,"echo":40}]}`, code: services.CodeInvalid, field: "rangers[0].echo", message: "GPIO 40 is not on the header"},
		{name: "samples fractional", payload: ranger(`,"samples":2.5`), code: services.CodeMalformed, field: "rangers[0].samples", message: "must be an integer, not 2.5"},
		{name: "too many samples", payload: ranger(`,"samples":16`), code: services.CodeInvalid, field: "rangers[0].samples", message: "want 1 to 15"},
		{name: "interval too short for the pings", payload: ranger(`,"samples":5,"interval":"250ms"`), code: services.CodeInvalid, field: "rangers[0].interval", message: "5 pings 60ms apart need at least 300ms"},
		{name: "interval in ms too short", payload: ranger(`,"samples":1,"interval":50`), code: services.CodeInvalid, field: "rangers[0].interval", message: "need at least 60ms"},
		{name: "interval not a duration", payload: ranger(`,"interval":"often"`), code: services.CodeMalformed, field: "rangers[0].interval", message: `"often"`},
		{name: "max beyond the module", payload: ranger(`,"max":6`), code: services.CodeInvalid, field: "rangers[0].max", message: "want up to 5 m"},
		{name: "max in centimetres", payload: ranger(`,"max":"200cm"`), code: services.CodeMalformed, field: "rangers[0].max", message: "must be a number"},
		{name: "min beyond max", payload: ranger(`,"min":2,"max":1`), code: services.CodeInvalid, field: "rangers[0].max", message: "max 1 m is not beyond min 2 m"},
		{name: "negative min", payload: ranger(`,"min":-0.1`), code: services.CodeInvalid, field: "rangers[0].min", message: "want 0 to 5 m"},
		{name: "negative deadband", payload: ranger(`,"deadband":-0.01`), code: services.CodeInvalid, field: "rangers[0].deadband", message: "-0.01 m"},
		{name: "unknown driver", payload: ranger(`,"driver":"hcsr04"`), code: services.CodeInvalid, field: "rangers[0].driver", message: `unknown driver "hcsr04" (want iio, gpio or sim)`},
		{name: "device for gpio", payload: ranger(`,"driver":"gpio","device":"srf04"`), code: services.CodeInvalid, field: "rangers[0].device", message: "only for the iio driver"},
		{name: "temperature of own service", payload: ranger(`,"temperature":"pi1/sonar/input/front"`), code: services.CodeInvalid, field: "rangers[0].temperature", message: "a topic of this service itself"},
		{name: "temperature a request topic", payload: ranger(`,"temperature":"pi1/dht22/setup"`), code: services.CodeInvalid, field: "rangers[0].temperature", message: "rollcall uses for requests or state"},
		{name: "temperature a wildcard", payload: ranger(`,"temperature":"pi1/dht22/input/#"`), code: services.CodeInvalid, field: "rangers[0].temperature", message: "not a plain topic"},
		{name: "temperature name too long", payload: ranger(`,"temperature":"` + strings.Repeat("a", 60) + `"`), code: services.CodeInvalid, field: "rangers[0].temperature", message: "neither a dht22 sensor's name nor a topic"},
		{name: "sim target without topic", payload: ranger(`,"sim_target":{"high":100,"far":3}`), code: services.CodeMalformed, field: "rangers[0].sim_target.topic", message: "topic is required"},
		{name: "sim target flat", payload: ranger(`,"sim_target":{"topic":"pi1/gpio/output/level","low":5,"high":5,"far":3}`), code: services.CodeInvalid, field: "rangers[0].sim_target.high", message: "must differ"},
		{name: "sim target far negative", payload: ranger(`,"sim_target":{"topic":"pi1/gpio/output/level","high":1,"far":-3}`), code: services.CodeInvalid, field: "rangers[0].sim_target.far", message: "want 0 to 10 m"},
		{name: "duplicate name", payload: `{"rangers":[{"name":"a","driver":"sim","trigger":5,"echo":6},{"name":"a","driver":"sim","trigger":12,"echo":13}]}`, code: services.CodeConflict, field: "rangers[1].name", message: `duplicate name "a" (also rangers[0])`},
		{name: "trigger is echo", payload: `{"rangers":[{"name":"a","driver":"sim","trigger":5,"echo":5}]}`, code: services.CodeConflict, field: "rangers[0].echo", message: "GPIO 5 is already used by rangers[0].trigger"},
		{name: "pin held by gpio", payload: `{"rangers":[{"name":"a","driver":"sim","trigger":25,"echo":5}]}`, code: services.CodeConflict, field: "rangers[0].trigger", message: "gpio (output[0].pin) holds it"},
		{name: "not the overlay's pins", payload: `{"rangers":[{"name":"front","trigger":5,"echo":6}]}`, code: services.CodeHardware, field: "rangers[0].trigger", message: "dtoverlay=srf04,trig=5,echo=6"},
		{name: "too many rangers", payload: `{"rangers":[` + strings.Repeat(`{"name":"a","trigger":1,"echo":2},`, 14) + `{"name":"a","trigger":1,"echo":2}]}`, code: services.CodeInvalid, field: "rangers", message: "15 rangers; the header's 28 pins make 14"},
		{name: "too large", payload: big, code: services.CodeTooLarge, message: "over the 65536 byte limit"},
		{name: "merge not a bool", payload: `{"merge":1,"rangers":[]}`, code: services.CodeMalformed, field: "merge", message: "must be true or false"},
		{name: "get unknown input", topic: "get/input/back", code: services.CodeNotFound, message: `no input named "back"`},
		{name: "control unknown", topic: "control", payload: `{"cmd":"ping"}`, code: services.CodeInvalid, field: "cmd", message: "unknown command"},
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
	r := h.request("setup", `{"rangers":[{"name":"","trigger":-1,"echo":99,"samples":99,"max":9}]}`)
	if len(r.Errors) != 5 {
		t.Errorf("errors %+v, want 5", r.Errors)
	}
}

// TestSchemaCoversModel keeps the published JSON Schema in step with the
// structs: every member a payload may carry is in the schema and back.
func TestSchemaCoversModel(t *testing.T) {
	setup := sonar.Schemas()["setup"].(map[string]any)["properties"].(map[string]any)
	ranger := setup["rangers"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)
	simTarget := ranger["sim_target"].(map[string]any)["properties"].(map[string]any)
	tests := []struct {
		name  string
		props map[string]any
		typ   reflect.Type
	}{
		{"setup", setup, reflect.TypeFor[sonar.Config]()},
		{"ranger", ranger, reflect.TypeFor[sonar.RangerConfig]()},
		{"sim_target", simTarget, reflect.TypeFor[sonar.SimTarget]()},
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
	if _, err := json.Marshal(sonar.Schemas()); err != nil {
		t.Error(err)
	}
}

func ExampleConfig_Check() {
	var cfg sonar.Config
	_ = services.Decode([]byte("rangers:\n  - {name: front, trigger: 23, echo: 24, samples: 5, interval: 200ms}\n"), 0, &cfg)
	for _, e := range cfg.Check(services.Checker{Topics: services.Topics{Host: "pi1", Service: "sonar"}}) {
		fmt.Println(e.Code, e.Field, e.Message)
	}
	// Output: invalid rangers[0].interval interval 200ms: 5 pings 60ms apart need at least 300ms (at most 24h0m0s)
}
