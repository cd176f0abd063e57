package servicestest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// SchemaCoversModel keeps a setup's published JSON Schema in step with
// the structs it is decoded into: for each path of models, the members
// the schema describes there are exactly the JSON members of its struct,
// but for the request's own "id" and "merge". A path names members from
// the setup's top ("" is the setup itself, "chips" a list's items,
// "sensors.deadband" an object of an item); each is a subtest, named
// by its path ("setup" for "").
func SchemaCoversModel(t *testing.T, setup map[string]any, models map[string]reflect.Type) {
	t.Helper()
	if _, err := json.Marshal(setup); err != nil {
		t.Error(err)
	}
	for path, typ := range models {
		name := path
		if name == "" {
			name = "setup"
		}
		t.Run(name, func(t *testing.T) {
			props, ok := properties(setup, path)
			if !ok {
				t.Fatalf("no object at %q in the schema", path)
			}
			fields := map[string]bool{}
			for i := range typ.NumField() {
				name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
				fields[name] = true
				if _, ok := props[name]; !ok {
					t.Errorf("%s missing from the schema", name)
				}
			}
			for name := range props {
				if !fields[name] && name != "id" && name != "merge" {
					t.Errorf("the schema has %s, the model does not", name)
				}
			}
		})
	}
}

// properties returns the members of the object at path in schema,
// through lists' items.
func properties(schema map[string]any, path string) (map[string]any, bool) {
	node := schema
	if path != "" {
		for _, name := range strings.Split(path, ".") {
			props, _ := node["properties"].(map[string]any)
			next, ok := props[name].(map[string]any)
			if !ok {
				return nil, false
			}
			if items, ok := next["items"].(map[string]any); ok {
				next = items
			}
			node = next
		}
	}
	props, ok := node["properties"].(map[string]any)
	return props, ok
}
