package ain

import "github.com/rollcall/rollcall/services"

// Schemas returns the JSON Schema (draft 2020-12) of the setup payload,
// as it appears in the description's state under "schema"; the service
// has no set topic. A user interface can build its forms from it.
func Schemas() map[string]any {
	chip := services.SchemaObject("", []string{"name", "chip"}, map[string]any{
		"name":     services.SchemaName("unique among chips; channels name their chip by it"),
		"chip":     map[string]any{"type": "string", "enum": []string{ChipMCP3008, ChipADS1115, ChipADS1015, ChipPCF8591, ChipIIO, ChipSim}},
		"bus":      map[string]any{"type": "string", "pattern": "^(i2c|spi)[0-9]{1,2}$", "description": "i2c1 (default for I2C chips) or spi0 (default for the mcp3008)"},
		"addr":     map[string]any{"type": "integer", "minimum": 0x48, "maximum": 0x4f, "default": defaultAddr, "description": "I2C address (72 = 0x48; YAML takes 0x48): ads1x15 0x48–0x4b, pcf8591 0x48–0x4f"},
		"cs":       map[string]any{"type": "integer", "minimum": 0, "maximum": 2, "default": 0, "description": "mcp3008: SPI chip select, 0 = CE0 (GPIO 8), 1 = CE1 (GPIO 7)"},
		"vref":     map[string]any{"type": "number", "exclusiveMinimum": 0, "maximum": maxVRef, "default": defaultVRef, "description": "reference voltage of an mcp3008 or pcf8591, or of an iio mcp320x device whose overlay declares none"},
		"speed_hz": map[string]any{"type": "integer", "minimum": 1, "maximum": int64(mcpMaxHz), "default": 1_000_000, "description": "mcp3008: SPI clock"},
		"device":   map[string]any{"type": "string", "minLength": 1, "maxLength": 64, "description": "iio: iio:deviceN or the driver's name for it (mcp3008, ads1015)"},
		"dac":      map[string]any{"type": "boolean", "description": "pcf8591: the dac service drives the chip's analog output; conversions keep it enabled and the address is shared with dac"},
	})
	channel := services.SchemaObject("", []string{"name", "channel"}, map[string]any{
		"name":     services.SchemaName("unique among channels; the last level of the channel's topics"),
		"chip":     map[string]any{"type": "string", "description": "the chip's name; default the first chip"},
		"channel":  map[string]any{"type": "integer", "minimum": 0, "description": "the chip's input (0–7 mcp3008, 0–3 ads1x15 and pcf8591, N of in_voltageN_raw on iio); with neg, the positive side of a pair"},
		"neg":      map[string]any{"type": "integer", "minimum": 0, "description": "differential: the pair's negative input (mcp3008 0-1, 1-0, 2-3…; ads1x15 0-1, 0-3, 1-3, 2-3; pcf8591 0-1, 0-3, 1-3, 2-3)"},
		"range":    map[string]any{"type": "number", "enum": []float64{0, 6.144, 4.096, 2.048, 1.024, 0.512, 0.256}, "description": "ads1x15: full-scale range in volts (PGA); 0 is 4.096"},
		"rate":     map[string]any{"type": "integer", "enum": []int{0, 8, 16, 32, 64, 128, 250, 475, 490, 860, 920, 1600, 2400, 3300}, "description": "ads1x15: samples per second (ads1115 8–860, ads1015 128–3300); 0 is the chip's default"},
		"interval": services.SchemaDuration("how often the channel is read: 1ms to 24h; 0 is 1s; an ads1x15 needs at least one conversion time"),
		"deadband": map[string]any{"type": "number", "minimum": 0, "description": "publish only when the value moved this far (in unit) from the last one published; 0 publishes every reading"},
		"scale":    map[string]any{"type": "number", "default": 1, "description": "value = volts × scale + offset; 0 is 1"},
		"offset":   map[string]any{"type": "number", "default": 0},
		"unit":     map[string]any{"type": "string", "maxLength": services.MaxUnit, "default": defaultUnit, "description": "the value's unit; required with scale or offset"},
	})
	setup := services.SchemaSetup(Name, "merge chips and channels by name instead of replacing them", "; chips left out are kept", map[string]any{
		"chips":    services.SchemaList(0, chip),
		"channels": services.SchemaList(0, channel),
	})
	reading := services.SchemaDocument("ain reading",
		"payload of <host>/ain/input/<name>, retained; <host>/ain/input/<name>/value carries the value alone, a plain number", map[string]any{
			"type":     "object",
			"required": []string{"value", "unit", "raw", "volts", "ts"},
			"properties": map[string]any{
				"value": map[string]any{"type": "number", "description": "volts × scale + offset"},
				"unit":  map[string]any{"type": "string"},
				"raw":   map[string]any{"type": "integer", "description": "the chip's code"},
				"volts": map[string]any{"type": "number", "description": "the voltage at the input"},
				"ts":    map[string]any{"type": "string", "format": "date-time", "description": "when it was read, RFC 3339 UTC with milliseconds"},
			},
		})
	return map[string]any{"setup": setup, "reading": reading}
}

// schemas is Schemas, marshalled once.
var schemas = services.SchemaJSON(Schemas)
