package services

import (
	"encoding/json"
	"maps"
	"sync"
)

// JSON Schema fragments for the schemas a service shows in its
// description's state (RuntimeOptions.Schema), so that what every
// service's setup shares (names, pins, durations, topics, the setup's own
// members) is described the same way everywhere and in step with the
// checks here (ValidTopicName, ValidTopic, Duration, HeaderPins). They are
// plain maps, as encoding/json writes them and as a test walks them; a
// description "" is left out.

// SchemaDialect is the JSON Schema draft of every schema ("$schema").
const SchemaDialect = "https://json-schema.org/draft/2020-12/schema"

// SchemaName is a name that stands as one level of a topic (see
// ValidTopicName): 1–64 bytes, no / + # and no leading $.
func SchemaName(description string) map[string]any {
	return described(map[string]any{"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[^$/+#][^/+#]*$"}, description)
}

// SchemaPin is a BCM GPIO of the 40-pin header, 0 to HeaderPins-1.
func SchemaPin(description string) map[string]any {
	return described(map[string]any{"type": "integer", "minimum": 0, "maximum": HeaderPins - 1}, description)
}

// SchemaDuration is a Duration: a Go duration string or a number of
// milliseconds.
func SchemaDuration(description string) map[string]any {
	return described(map[string]any{
		"oneOf": []any{
			map[string]any{"type": "string", "pattern": `^[0-9.]+(ns|us|µs|ms|s|m|h)([0-9.]+(ns|us|µs|ms|s|m|h))*$`},
			map[string]any{"type": "number", "minimum": 0},
		}}, description)
}

// SchemaTopic is a plain topic (see ValidTopic), one a service follows or
// publishes to: at most 256 bytes, no + # and no leading $.
func SchemaTopic(description string) map[string]any {
	return described(map[string]any{"type": "string", "maxLength": 256, "pattern": "^[^$+#][^+#]*$"}, description)
}

// SchemaObject is an object with the members props and no others, of
// which required must be present (nil: none is).
func SchemaObject(description string, required []string, props map[string]any) map[string]any {
	o := map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	if required != nil {
		o["required"] = required
	}
	return described(o, description)
}

// SchemaList is a list of items, of at most maxItems (0: unbounded).
func SchemaList(maxItems int, items map[string]any) map[string]any {
	l := map[string]any{"type": "array", "items": items}
	if maxItems > 0 {
		l["maxItems"] = maxItems
	}
	return l
}

// SchemaID is a request's "id", echoed in its result.
func SchemaID() map[string]any { return map[string]any{"description": "echoed in the result"} }

// SchemaDocument makes schema a document of its own, a payload's: the
// dialect, a title ("gpio set") and what the payload is.
func SchemaDocument(title, description string, schema map[string]any) map[string]any {
	d := maps.Clone(schema)
	d["$schema"], d["title"], d["description"] = SchemaDialect, title, description
	return d
}

// SchemaSetup is the schema of <host>/<kind>/setup: an object of the
// members props, beside the request's "id" and "merge" (what merging
// does: merge). note ends the payload's description, for what the
// service keeps when a setup leaves it out.
func SchemaSetup(kind, merge, note string, props map[string]any) map[string]any {
	props = maps.Clone(props)
	props["id"] = SchemaID()
	props["merge"] = map[string]any{"type": "boolean", "description": merge}
	return SchemaDocument(kind+" setup",
		"payload of <host>/"+kind+"/setup, JSON or YAML; an empty payload queries the current setup"+note,
		SchemaObject("", nil, props))
}

// SchemaJSON returns schemas marshalled, once, on the first call: for
// RuntimeOptions.Schema, so that a description carries the bytes rather
// than walking the maps again. The schemas are literals, so that they
// cannot be marshalled is a programming error, and panics.
func SchemaJSON(schemas func() map[string]any) func() json.RawMessage {
	return sync.OnceValue(func() json.RawMessage {
		b, err := json.Marshal(schemas())
		if err != nil {
			panic("services: schema: " + err.Error())
		}
		return b
	})
}

func described(schema map[string]any, description string) map[string]any {
	if description != "" {
		schema["description"] = description
	}
	return schema
}
