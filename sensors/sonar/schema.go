package sonar

import "github.com/rollcall/rollcall/services"

// Schemas returns the JSON Schema (draft 2020-12) of the setup payload, as
// it appears in the description's state under "schema". The service has
// no set topic: its rangers are inputs only.
func Schemas() map[string]any {
	metres := func(maximum float64, description string) map[string]any {
		return map[string]any{"type": "number", "minimum": 0, "maximum": maximum, "description": description}
	}
	ranger := services.SchemaObject("", []string{"name", "trigger", "echo"}, map[string]any{
		"name": services.SchemaName("unique; the input is <host>/sonar/input/<name>"),
		"driver": map[string]any{"type": "string", "enum": []string{DriverIIO, DriverGPIO, DriverSim}, "default": DriverIIO,
			"description": "iio: the kernel's srf04 driver (an overlay, see the package doc); gpio: timing through periph from user space; sim: simulated"},
		"trigger": services.SchemaPin("BCM GPIO of TRIG; with iio, the overlay's"),
		"echo":    services.SchemaPin("BCM GPIO of ECHO, through a 5 V to 3.3 V divider; with iio, the overlay's"),
		"device": map[string]any{"type": "string", "pattern": "^[A-Za-z0-9_.:@,-]{1,64}$", "default": DefaultDevice,
			"description": "iio only: the IIO device's name (srf04) or directory (iio:device0)"},
		"samples":     map[string]any{"type": "integer", "minimum": 0, "maximum": MaxSamples, "default": DefaultSamples, "description": "pings per reading, 60 ms apart; the reading is their median"},
		"min":         metres(RangeLimit, "metres; nearer readings are published as no target"),
		"max":         metres(RangeLimit, "metres; farther readings are published as no target; 0 is 4 m"),
		"interval":    services.SchemaDuration("time between readings; at least samples × 60 ms; default 1s"),
		"deadband":    metres(RangeLimit, "metres a reading must move from the last one published to be published; 0 publishes every reading"),
		"temperature": services.SchemaTopic("speed-of-sound compensation: a dht22 sensor of this host by name, or a topic carrying °C (a dht22 reading or a bare number); empty assumes 20 °C"),
		"sim_target": services.SchemaObject("sim driver only: the simulated target's distance follows a topic's value, low → near metres, high → far metres, linearly",
			[]string{"topic", "high", "far"}, map[string]any{
				"topic": services.SchemaTopic("a topic carrying a number, such as an output's <host>/<service>/output/<name>"),
				"low":   map[string]any{"type": "number", "default": 0},
				"high":  map[string]any{"type": "number"},
				"near":  metres(2*RangeLimit, "metres at low"),
				"far":   metres(2*RangeLimit, "metres at high; beyond 4 m the target is out of range"),
			}),
	})
	setup := services.SchemaSetup(Name, "merge rangers by name instead of replacing the whole list", "", map[string]any{
		"rangers": services.SchemaList(MaxRangers, ranger),
	})
	return map[string]any{"setup": setup}
}
