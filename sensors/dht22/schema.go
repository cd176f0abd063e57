package dht22

// Schemas returns the JSON Schema (draft 2020-12) of the setup payload, as
// it appears in the description's state under "schema". The service has
// no set topic: its sensors are inputs only.
func Schemas() map[string]any {
	duration := func(description string) map[string]any {
		return map[string]any{"description": description,
			"oneOf": []any{
				map[string]any{"type": "string", "pattern": `^[0-9.]+(ns|us|µs|ms|s|m|h)([0-9.]+(ns|us|µs|ms|s|m|h))*$`},
				map[string]any{"type": "number", "minimum": 0},
			}}
	}
	sensor := map[string]any{
		"type": "object", "additionalProperties": false, "required": []string{"name", "pin"},
		"properties": map[string]any{
			"name": map[string]any{"type": "string", "minLength": 1, "maxLength": 52, "pattern": "^[^$/+#][^/+#]*$",
				"description": "unique; the inputs are <name>_temperature and <name>_humidity"},
			"driver": map[string]any{"type": "string", "enum": []string{DriverIIO, DriverGoDHT, DriverSim}, "default": DriverIIO,
				"description": "iio: the kernel's dht11 driver (dtoverlay=dht11,gpiopin=N); godht: user-space bit-banging, only in binaries built with -tags godht; sim: simulated"},
			"pin": map[string]any{"type": "integer", "minimum": 0, "maximum": 27,
				"description": "BCM GPIO of the data line; with iio, the overlay's gpiopin"},
			"device": map[string]any{"type": "string", "pattern": "^[A-Za-z0-9_.:@,-]{1,64}$", "default": DefaultDevice,
				"description": "iio only: the IIO device's name (dht11, dht11@0) or directory (iio:device1)"},
			"interval": duration("time between reads, at least 2s (the sensor's limit); default 10s"),
			"deadband": map[string]any{"type": "object", "additionalProperties": false,
				"description": "publish a reading only when it moved this far from the last one published; 0 publishes every reading",
				"properties": map[string]any{
					"temperature": map[string]any{"type": "number", "minimum": 0, "maximum": 120, "description": "°C"},
					"humidity":    map[string]any{"type": "number", "minimum": 0, "maximum": 100, "description": "%RH"},
				}},
		},
	}
	setup := map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"title":                "dht22 setup",
		"description":          "payload of <host>/dht22/setup, JSON or YAML; an empty payload queries the current setup",
		"type":                 "object",
		"additionalProperties": false,
		"properties": map[string]any{
			"id":      map[string]any{"description": "echoed in the result"},
			"merge":   map[string]any{"type": "boolean", "description": "merge sensors by name instead of replacing the whole list"},
			"sensors": map[string]any{"type": "array", "maxItems": MaxSensors, "items": sensor},
		},
	}
	return map[string]any{"setup": setup}
}
