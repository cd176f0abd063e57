package sonar_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/sensors/sonar"
	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// TestServiceBadRequestsChangeNothing is the sonar part of the project's
// bad-input corpus: every payload is refused with a clear error naming
// its field, and changes nothing (the state file, the retained topics,
// the description).
func TestServiceBadRequestsChangeNothing(t *testing.T) {
	dir := t.TempDir()
	h := start(t, front(nil), dir, options{holds: map[string][]services.Claim{"gpio": {services.PinClaim("output[0].pin", 25)}}})
	if r := h.Request("setup", `{"id":"ok","rangers":[{"name":"front","trigger":23,"echo":24,"samples":1,"deadband":0.01}]}`); r.Status != "ok" {
		t.Fatalf("setup %+v", r)
	}
	h.Advance(0)
	h.Bus.Expect(t, 0, frontTopic+"/value", "0.999")
	before := h.Snapshot()
	if saved, retained := h.Saved(), h.Retained(); saved == "" || len(retained) != 2 {
		t.Fatalf("nothing to compare: saved %q, retained %v", saved, retained)
	}

	big := `{"rangers":[],"pad":"` + strings.Repeat("x", services.MaxPayload) + `"}`
	ranger := func(members string) string {
		return `{"rangers":[{"name":"front","trigger":23,"echo":24` + members + `}]}`
	}
	tests := []servicestest.BadRequest{
		{Name: "malformed JSON", Payload: `{"rangers":[{`, Code: services.CodeMalformed, Says: "not valid JSON"},
		{Name: "YAML garbage", Payload: "rangers: {", Code: services.CodeMalformed, Says: "neither JSON nor YAML"},
		{Name: "a string", Payload: `"front"`, Code: services.CodeMalformed, Says: "must be an object"},
		{Name: "rangers not a list", Payload: `{"rangers":"front"}`, Code: services.CodeMalformed, Field: "rangers", Says: "must be a list"},
		{Name: "unknown member", Payload: `{"sonars":[]}`, Code: services.CodeMalformed, Field: "sonars", Says: `unknown field "sonars" (fields: rangers)`},
		{Name: "unknown ranger member", Payload: ranger(`,"angle":30`), Code: services.CodeMalformed, Field: "rangers[0].angle", Says: "unknown field"},
		{Name: "trigger as a string", Payload: `{"rangers":[{"name":"front","trigger":"23","echo":24}]}`, Code: services.CodeMalformed, Field: "rangers[0].trigger", Says: "must be an integer"},
		{Name: "echo missing", Payload: `{"rangers":[{"name":"front","trigger":23}]}`, Code: services.CodeMalformed, Field: "rangers[0].echo", Says: "echo is required"},
		{Name: "echo off the header", Payload: `{"rangers":[{"name":"front","trigger":23,"echo":40}]}`, Code: services.CodeInvalid, Field: "rangers[0].echo", Says: "GPIO 40 is not on the header"},
		{Name: "samples fractional", Payload: ranger(`,"samples":2.5`), Code: services.CodeMalformed, Field: "rangers[0].samples", Says: "must be an integer, not 2.5"},
		{Name: "too many samples", Payload: ranger(`,"samples":16`), Code: services.CodeInvalid, Field: "rangers[0].samples", Says: "want 1 to 15"},
		{Name: "interval too short for the pings", Payload: ranger(`,"samples":5,"interval":"250ms"`), Code: services.CodeInvalid, Field: "rangers[0].interval", Says: "5 pings 60ms apart need at least 300ms"},
		{Name: "interval in ms too short", Payload: ranger(`,"samples":1,"interval":50`), Code: services.CodeInvalid, Field: "rangers[0].interval", Says: "need at least 60ms"},
		{Name: "interval not a duration", Payload: ranger(`,"interval":"often"`), Code: services.CodeMalformed, Field: "rangers[0].interval", Says: `"often"`},
		{Name: "max beyond the module", Payload: ranger(`,"max":6`), Code: services.CodeInvalid, Field: "rangers[0].max", Says: "want up to 5 m"},
		{Name: "max in centimetres", Payload: ranger(`,"max":"200cm"`), Code: services.CodeMalformed, Field: "rangers[0].max", Says: "must be a number"},
		{Name: "min beyond max", Payload: ranger(`,"min":2,"max":1`), Code: services.CodeInvalid, Field: "rangers[0].max", Says: "max 1 m is not beyond min 2 m"},
		{Name: "negative min", Payload: ranger(`,"min":-0.1`), Code: services.CodeInvalid, Field: "rangers[0].min", Says: "want 0 to 5 m"},
		{Name: "negative deadband", Payload: ranger(`,"deadband":-0.01`), Code: services.CodeInvalid, Field: "rangers[0].deadband", Says: "-0.01 m"},
		{Name: "unknown driver", Payload: ranger(`,"driver":"hcsr04"`), Code: services.CodeInvalid, Field: "rangers[0].driver", Says: `unknown driver "hcsr04" (want iio, gpio or sim)`},
		{Name: "device for gpio", Payload: ranger(`,"driver":"gpio","device":"srf04"`), Code: services.CodeInvalid, Field: "rangers[0].device", Says: "only for the iio driver"},
		{Name: "temperature of own service", Payload: ranger(`,"temperature":"pi1/sonar/input/front"`), Code: services.CodeInvalid, Field: "rangers[0].temperature", Says: "a topic of this service itself"},
		{Name: "temperature a request topic", Payload: ranger(`,"temperature":"pi1/dht22/setup"`), Code: services.CodeInvalid, Field: "rangers[0].temperature", Says: "rollcall uses for requests or state"},
		{Name: "temperature a wildcard", Payload: ranger(`,"temperature":"pi1/dht22/input/#"`), Code: services.CodeInvalid, Field: "rangers[0].temperature", Says: "not a plain topic"},
		{Name: "temperature name too long", Payload: ranger(`,"temperature":"` + strings.Repeat("a", 60) + `"`), Code: services.CodeInvalid, Field: "rangers[0].temperature", Says: "neither a dht22 sensor's name nor a topic"},
		{Name: "sim target without topic", Payload: ranger(`,"sim_target":{"high":100,"far":3}`), Code: services.CodeMalformed, Field: "rangers[0].sim_target.topic", Says: "topic is required"},
		{Name: "sim target flat", Payload: ranger(`,"sim_target":{"topic":"pi1/gpio/output/level","low":5,"high":5,"far":3}`), Code: services.CodeInvalid, Field: "rangers[0].sim_target.high", Says: "must differ"},
		{Name: "sim target far negative", Payload: ranger(`,"sim_target":{"topic":"pi1/gpio/output/level","high":1,"far":-3}`), Code: services.CodeInvalid, Field: "rangers[0].sim_target.far", Says: "want 0 to 10 m"},
		{Name: "duplicate name", Payload: `{"rangers":[{"name":"a","driver":"sim","trigger":5,"echo":6},{"name":"a","driver":"sim","trigger":12,"echo":13}]}`, Code: services.CodeConflict, Field: "rangers[1].name", Says: `duplicate name "a" (also rangers[0])`},
		{Name: "trigger is echo", Payload: `{"rangers":[{"name":"a","driver":"sim","trigger":5,"echo":5}]}`, Code: services.CodeConflict, Field: "rangers[0].echo", Says: "GPIO 5 is already used by rangers[0].trigger"},
		{Name: "pin held by gpio", Payload: `{"rangers":[{"name":"a","driver":"sim","trigger":25,"echo":5}]}`, Code: services.CodeConflict, Field: "rangers[0].trigger", Says: "gpio (output[0].pin) holds it"},
		{Name: "not the overlay's pins", Payload: `{"rangers":[{"name":"front","trigger":5,"echo":6}]}`, Code: services.CodeHardware, Field: "rangers[0].trigger", Says: "dtoverlay=srf04,trig=5,echo=6"},
		{Name: "too many rangers", Payload: `{"rangers":[` + strings.Repeat(`{"name":"a","trigger":1,"echo":2},`, 14) + `{"name":"a","trigger":1,"echo":2}]}`, Code: services.CodeInvalid, Field: "rangers", Says: "15 rangers; the header's 28 pins make 14"},
		{Name: "too large", Payload: big, Code: services.CodeTooLarge, Says: "over the 65536 byte limit"},
		{Name: "merge not a bool", Payload: `{"merge":1,"rangers":[]}`, Code: services.CodeMalformed, Field: "merge", Says: "must be true or false"},
		{Name: "get unknown input", Topic: "get/input/back", Code: services.CodeNotFound, Says: `no input named "back"`},
		{Name: "control unknown", Topic: "control", Payload: `{"cmd":"ping"}`, Code: services.CodeInvalid, Field: "cmd", Says: "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			h.Refuses(t, tc)
			h.Unchanged(t, before)
		})
	}
	// Every problem is reported, not just the first.
	r := h.Request("setup", `{"rangers":[{"name":"","trigger":-1,"echo":99,"samples":99,"max":9}]}`)
	if len(r.Errors) != 5 {
		t.Errorf("errors %+v, want 5", r.Errors)
	}
}

// TestSchemaCoversModel keeps the published JSON Schema in step with the
// structs: every member a payload may carry is in the schema and back.
func TestSchemaCoversModel(t *testing.T) {
	servicestest.SchemaCoversModel(t, sonar.Schemas()["setup"].(map[string]any), map[string]reflect.Type{
		"":                   reflect.TypeFor[sonar.Config](),
		"rangers":            reflect.TypeFor[sonar.RangerConfig](),
		"rangers.sim_target": reflect.TypeFor[sonar.SimTarget](),
	})
}

func ExampleConfig_Check() {
	var cfg sonar.Config
	_ = services.Decode([]byte("rangers:\n  - {name: front, trigger: 23, echo: 24, samples: 5, interval: 200ms}\n"), 0, &cfg)
	for _, e := range cfg.Check(services.Checker{Topics: services.Topics{Host: "pi1", Service: "sonar"}}) {
		fmt.Println(e.Code, e.Field, e.Message)
	}
	// Output: invalid rangers[0].interval interval 200ms: 5 pings 60ms apart need at least 300ms (at most 24h0m0s)
}
