package dht22

import "github.com/rollcall/rollcall/services"

// Schemas returns the JSON Schema (draft 2020-12) of the setup payload, as
// it appears in the description's state under "schema". The service has
// no set topic: its sensors are inputs only.
func Schemas() map[string]any {
	name := services.SchemaName("unique; the inputs are <name>_temperature and <name>_humidity")
	name["maxLength"] = 64 - len(TemperatureSuffix) // the longer suffix must fit in a topic level
	sensor := services.SchemaObject("", []string{"name", "pin"}, map[string]any{
		"name": name,
		"driver": map[string]any{"type": "string", "enum": []string{DriverIIO, DriverGoDHT, DriverSim}, "default": DriverIIO,
			"description": "iio: the kernel's dht11 driver (dtoverlay=dht11,gpiopin=N); godht: user-space bit-banging, only in binaries built with -tags godht; sim: simulated"},
		"pin": services.SchemaPin("BCM GPIO of the data line; with iio, the overlay's gpiopin"),
		"device": map[string]any{"type": "string", "pattern": "^[A-Za-z0-9_.:@,-]{1,64}$", "default": DefaultDevice,
			"description": "iio only: the IIO device's name (dht11, dht11@0) or directory (iio:device1)"},
		"interval": services.SchemaDuration("time between reads, at least 2s (the sensor's limit); default 10s"),
		"deadband": services.SchemaObject("publish a reading only when it moved this far from the last one published; 0 publishes every reading", nil, map[string]any{
			"temperature": map[string]any{"type": "number", "minimum": 0, "maximum": 120, "description": "°C"},
			"humidity":    map[string]any{"type": "number", "minimum": 0, "maximum": 100, "description": "%RH"},
		}),
	})
	setup := services.SchemaSetup(Name, "merge sensors by name instead of replacing the whole list", "", map[string]any{
		"sensors": services.SchemaList(MaxSensors, sensor),
	})
	return map[string]any{"setup": setup}
}
