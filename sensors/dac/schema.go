package dac

import "github.com/rollcall/rollcall/services"

// Schemas returns the JSON Schemas (draft 2020-12) of the setup and set
// payloads, as they appear in the description's state under "schema".
// A user interface can build its forms from them.
func Schemas() map[string]any {
	chip := services.SchemaObject("", []string{"name", "chip"}, map[string]any{
		"name":   services.SchemaName("unique among chips; outputs name their chip by it"),
		"chip":   map[string]any{"type": "string", "enum": []string{"mcp4725", "pcf8591", "iio", "sim"}},
		"bus":    map[string]any{"type": "string", "pattern": "^i2c[0-9]{1,2}$", "default": "i2c1", "description": "the I2C bus of an mcp4725 or pcf8591"},
		"addr":   map[string]any{"type": "integer", "minimum": 0x48, "maximum": 0x67, "description": "I2C address (96 = 0x60; YAML takes 0x60): mcp4725 0x60–0x67 (default 0x60), pcf8591 0x48–0x4f (default 0x48)"},
		"vref":   map[string]any{"type": "number", "exclusiveMinimum": 0, "maximum": maxVRef, "default": defaultVRef, "description": "full scale in volts: the mcp4725's supply, the pcf8591's VREF pin; iio: what the driver reports"},
		"device": map[string]any{"type": "string", "minLength": 1, "maxLength": 64, "default": "mcp4725", "description": "iio: iio:deviceN or the driver's name"},
	})
	output := services.SchemaObject("", []string{"name"}, map[string]any{
		"name":     services.SchemaName("unique among outputs; the last level of the output's topics"),
		"chip":     map[string]any{"type": "string", "description": "the chip's name; default the first chip"},
		"channel":  map[string]any{"type": "integer", "minimum": 0, "default": 0, "description": "the chip's output"},
		"init":     map[string]any{"type": "number", "default": 0, "description": "value set when the output is configured (in unit); a restart restores the last value instead"},
		"failsafe": map[string]any{"type": "number", "default": 0, "description": "value on shutdown, estop and broker loss (in unit)"},
		"scale":    map[string]any{"type": "number", "default": 1, "description": "value = volts × scale + offset; 0 is 1"},
		"offset":   map[string]any{"type": "number", "default": 0},
		"unit":     map[string]any{"type": "string", "maxLength": services.MaxUnit, "default": defaultUnit, "description": "the value's unit; required with scale or offset"},
		"follow":   services.SchemaTopic("a topic whose values drive this output as a set would, clamped to its range: a plain number or an object with a numeric value, such as <host>/ain/input/<name>"),
	})
	setup := services.SchemaSetup(Name, "merge chips and outputs by name instead of replacing them", "; chips left out are kept", map[string]any{
		"chips":          services.SchemaList(0, chip),
		"outputs":        services.SchemaList(0, output),
		"failsafe_after": services.SchemaDuration("drive outputs to failsafe after the broker has been unreachable this long; 0 never"),
	})
	set := services.SchemaDocument("dac set", "payload of <host>/dac/set/<name>: a bare number (the value, in the output's unit) or one of these objects", map[string]any{
		"oneOf": []any{
			map[string]any{"type": "number"},
			services.SchemaObject("", []string{"value"}, map[string]any{"id": services.SchemaID(), "value": map[string]any{"type": "number", "description": "in the output's unit; its voltage must lie within 0 and vref"}}),
			services.SchemaObject("", []string{"raw"}, map[string]any{"id": services.SchemaID(), "raw": map[string]any{"type": "integer", "minimum": 0, "description": "the chip's code: 0–4095 (12 bits), 0–255 (pcf8591)"}}),
		},
	})
	value := services.SchemaDocument("dac output value",
		"payload of <host>/dac/output/<name>, retained; <host>/dac/output/<name>/value carries the value alone, a plain number", map[string]any{
			"type":     "object",
			"required": []string{"value", "unit", "raw", "volts", "ts"},
			"properties": map[string]any{
				"value": map[string]any{"type": "number"},
				"unit":  map[string]any{"type": "string"},
				"raw":   map[string]any{"type": "integer"},
				"volts": map[string]any{"type": "number"},
				"ts":    map[string]any{"type": "string", "format": "date-time"},
			},
		})
	return map[string]any{"setup": setup, "set": set, "output": value}
}

// schemas is Schemas, marshalled once.
var schemas = services.SchemaJSON(Schemas)
