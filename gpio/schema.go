package gpio

import "github.com/rollcall/rollcall/services"

// Schemas returns the JSON Schemas (draft 2020-12) of the setup and set
// payloads, as they appear in the description's state under "schema".
// A user interface can build its forms from them.
func Schemas() map[string]any {
	name := services.SchemaName("unique among all pins; the last level of the pin's topics")
	pin := services.SchemaPin("BCM GPIO number on the 40-pin header")
	level := map[string]any{"type": "integer", "enum": []int{0, 1}}
	pull := map[string]any{"type": "string", "enum": []string{"up", "down", "none"}}
	duty := map[string]any{"type": "number", "minimum": 0, "maximum": 100, "description": "duty cycle in percent"}
	follow := services.SchemaTopic("a topic whose values drive this output as a set would, such as another host's retained <host>/<service>/input/<name>")
	object := func(required []string, props map[string]any) map[string]any {
		return services.SchemaObject("", required, props)
	}
	output := object([]string{"name", "pin"}, map[string]any{
		"name": name, "pin": pin,
		"init":       with(level, "level set when configured (logical)"),
		"pull":       with(pull, "recorded; a character-device output line cannot be biased"),
		"active_low": map[string]any{"type": "boolean", "description": "logical 1 drives the line low"},
		"failsafe":   with(level, "level on shutdown, estop and broker loss"),
		"follow":     follow,
	})
	pwm := object([]string{"name", "pin"}, map[string]any{
		"name": name, "pin": pin,
		"init":     duty,
		"period":   map[string]any{"type": "integer", "minimum": 1, "maximum": MaxPeriod, "default": DefaultPeriod, "description": "period in microseconds; software PWM (pins other than 12, 13, 18, 19) needs at least 1000"},
		"pol":      map[string]any{"type": "string", "enum": []string{"normal", "inverted"}},
		"failsafe": duty,
		"follow":   follow,
	})
	input := object([]string{"name", "pin"}, map[string]any{
		"name": name, "pin": pin,
		"pull":       pull,
		"edge":       map[string]any{"type": "string", "enum": []string{"rising", "falling", "both"}, "default": "both", "description": "which changes are published"},
		"debounce":   services.SchemaDuration("the level must hold this long to count (max 10s)"),
		"on_change":  services.SchemaTopic("a topic each change is also published to, not retained (the value is always retained on <host>/gpio/input/<name>); another host's <host>/<service>/set/<name> drives that output; never a topic of this service or one rollcall keeps for state or requests"),
		"scan":       services.SchemaDuration("also publish the value at this interval (min 10ms)"),
		"active_low": map[string]any{"type": "boolean"},
	})
	wire := object([]string{"from", "to"}, map[string]any{"from": pin, "to": pin})
	list := func(items map[string]any) map[string]any { return services.SchemaList(0, items) }
	setup := services.SchemaSetup(Name, "merge pins by name instead of replacing the whole set", "", map[string]any{
		"driver":         map[string]any{"type": "string", "enum": []string{"periph", "sim"}},
		"output":         list(output),
		"pwm":            list(pwm),
		"input":          list(input),
		"failsafe_after": services.SchemaDuration("drive outputs to failsafe after the broker has been unreachable this long; 0 never"),
		"wiring":         list(wire),
	})
	value := []any{
		map[string]any{"type": "integer", "enum": []int{0, 1}},
		map[string]any{"type": "boolean"},
		map[string]any{"type": "string", "enum": []string{"on", "off", "true", "false", "1", "0"}},
		duty,
	}
	set := services.SchemaDocument("gpio set", "payload of <host>/gpio/set/<name>: a bare value (1, 0, on, off, true, false; a duty 0–100 for pwm) or this object", map[string]any{
		"oneOf": append(value, object([]string{"value"}, map[string]any{
			"id":     services.SchemaID(),
			"value":  map[string]any{"oneOf": value},
			"for":    services.SchemaDuration("pulse: return to the previous value after this long"),
			"period": map[string]any{"type": "integer", "minimum": 1, "maximum": MaxPeriod, "description": "pwm only: new period in microseconds"},
		})),
	})
	return map[string]any{"setup": setup, "set": set}
}

func with(base map[string]any, description string) map[string]any {
	m := make(map[string]any, len(base)+1)
	for k, v := range base {
		m[k] = v
	}
	m["description"] = description
	return m
}

// schemas is Schemas, marshalled once.
var schemas = services.SchemaJSON(Schemas)
