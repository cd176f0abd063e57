package services_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/rollcall/rollcall/services"
)

// compile compiles a schema made of fragments, as a client of a
// description would.
func compile(t *testing.T, schema map[string]any) *jsonschema.Schema {
	t.Helper()
	b, err := json.Marshal(schema)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("setup.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("setup.json")
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return sch
}

// TestSchemaFragmentsAgreeWithChecks: a value the schema of a setup made
// of the fragments takes is one the checks take, and back.
func TestSchemaFragmentsAgreeWithChecks(t *testing.T) {
	item := services.SchemaObject("", []string{"name"}, map[string]any{
		"name":     services.SchemaName("the item's name"),
		"pin":      services.SchemaPin(""),
		"interval": services.SchemaDuration("how often"),
		"follow":   services.SchemaTopic("a topic"),
	})
	sch := compile(t, services.SchemaSetup("thing", "merge items by name", "", map[string]any{"items": services.SchemaList(2, item)}))
	validPin := func(v any) bool {
		p, ok := v.(float64)
		return ok && p == float64(int(p)) && p >= 0 && p < services.HeaderPins
	}
	validDuration := func(v any) bool {
		var d services.Duration
		b, _ := json.Marshal(v)
		return d.UnmarshalJSON(b) == nil && d >= 0
	}
	validTopic := func(v any) bool { s, ok := v.(string); return ok && services.ValidTopic(s) }
	validName := func(v any) bool { s, ok := v.(string); return ok && services.ValidTopicName(s) }
	tests := []struct {
		name   string
		member string
		value  any
		check  func(any) bool
	}{
		{"a name", "name", "greenhouse", validName},
		{"a name of 64 bytes", "name", strings.Repeat("n", 64), validName},
		{"a name of 65 bytes", "name", strings.Repeat("n", 65), validName},
		{"an empty name", "name", "", validName},
		{"a name with a slash", "name", "green/house", validName},
		{"a name with a wildcard", "name", "a+b", validName},
		{"a name starting with $", "name", "$SYS", validName},
		{"pin 0", "pin", 0.0, validPin},
		{"pin 27", "pin", 27.0, validPin},
		{"pin 28", "pin", 28.0, validPin},
		{"pin -1", "pin", -1.0, validPin},
		{"a fractional pin", "pin", 4.5, validPin},
		{"a duration", "interval", "1h30m", validDuration},
		{"a duration in µs", "interval", "250µs", validDuration},
		{"milliseconds", "interval", 2000.0, validDuration},
		{"a negative duration", "interval", "-1s", validDuration},
		{"a word", "interval", "soon", validDuration},
		{"a topic", "follow", "pi1/ain/input/soil/value", validTopic},
		{"a wildcard topic", "follow", "pi1/#", validTopic},
		{"a $SYS topic", "follow", "$SYS/broker", validTopic},
		{"a topic of 257 bytes", "follow", strings.Repeat("t", 257), validTopic},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst := map[string]any{"items": []any{map[string]any{"name": "x", tc.member: tc.value}}}
			schemaSays := sch.Validate(inst) == nil
			if checkSays := tc.check(tc.value); schemaSays != checkSays {
				t.Errorf("%s %v: the schema says valid=%v, the check %v", tc.member, tc.value, schemaSays, checkSays)
			}
		})
	}
}

// TestSchemaSetup: the setup's envelope, its list bound and the members
// a setup may not carry.
func TestSchemaSetup(t *testing.T) {
	item := services.SchemaObject("", []string{"name"}, map[string]any{"name": services.SchemaName("")})
	setup := services.SchemaSetup("thing", "merge items by name", "; kept when left out", map[string]any{"items": services.SchemaList(2, item)})
	if setup["title"] != "thing setup" || setup["description"] != "payload of <host>/thing/setup, JSON or YAML; an empty payload queries the current setup; kept when left out" {
		t.Errorf("title %q, description %q", setup["title"], setup["description"])
	}
	sch := compile(t, setup)
	tests := []struct {
		name  string
		setup string
		valid bool
	}{
		{"empty", `{}`, true},
		{"id and merge", `{"id":[7],"merge":true,"items":[{"name":"a"}]}`, true},
		{"merge not a bool", `{"merge":"yes"}`, false},
		{"an unknown member", `{"itemz":[]}`, false},
		{"an item's unknown member", `{"items":[{"name":"a","colour":1}]}`, false},
		{"an item without its required member", `{"items":[{}]}`, false},
		{"too many items", `{"items":[{"name":"a"},{"name":"b"},{"name":"c"}]}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(tc.setup))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(inst); (err == nil) != tc.valid {
				t.Errorf("valid=%v, want %v: %v", err == nil, tc.valid, err)
			}
		})
	}
}

func TestSchemaJSON(t *testing.T) {
	calls := 0
	schemas := services.SchemaJSON(func() map[string]any {
		calls++
		return map[string]any{"setup": services.SchemaSetup("thing", "merge", "", map[string]any{})}
	})
	first, again := schemas(), schemas()
	if calls != 1 || !reflect.DeepEqual(first, again) {
		t.Errorf("%d calls; %s then %s", calls, first, again)
	}
	var back map[string]map[string]any
	if err := json.Unmarshal(first, &back); err != nil || back["setup"]["$schema"] != services.SchemaDialect {
		t.Errorf("%s: %v", first, err)
	}
}
