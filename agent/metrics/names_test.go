package metrics

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/prometheus/common/model"

	"github.com/rollcall/rollcall/services"
)

// TestReadingOf pins the name and the value of every kind of interface the
// services describe: the first rows are the interfaces of configs/sim.yaml
// as the sim host describes them (gpio, dht22, sonar, ain and dac on one
// PCF8591; a pwm output added), then units the table converts and units
// it does not know.
func TestReadingOf(t *testing.T) {
	for _, tc := range []struct {
		name    string
		service string
		it      services.Interface
		want    string
		value   float64 // the gauge's value
	}{
		{"gpio input", "gpio", services.Interface{Name: "float_switch", Type: "bool", Mode: "input", Value: 1.0}, "rollcall_gpio_input_level", 1},
		{"gpio output", "gpio", services.Interface{Name: "lamp", Type: "bool", Mode: "output", Value: 0.0}, "rollcall_gpio_output_level", 0},
		{"gpio pwm", "gpio", services.Interface{Name: "fan", Type: "pwm", Unit: "%", Mode: "pwm", Value: 25.0}, "rollcall_gpio_pwm_duty_ratio", 0.25},
		{"dht22 temperature", "dht22", services.Interface{Name: "air_temperature", Type: "number", Unit: "°C", Mode: "temperature", Value: 18.5}, "rollcall_dht22_temperature_celsius", 18.5},
		{"dht22 humidity", "dht22", services.Interface{Name: "air_humidity", Type: "number", Unit: "%RH", Mode: "humidity", Value: 45.2}, "rollcall_dht22_humidity_ratio", 0.452},
		{"sonar distance", "sonar", services.Interface{Name: "front", Type: "number", Unit: "m", Mode: "distance", Value: 0.552}, "rollcall_sonar_distance_meters", 0.552},
		{"ain channel", "ain", services.Interface{Name: "light", Type: "number", Unit: "V", Mode: "channel", Value: 1.65}, "rollcall_ain_volts", 1.65},
		{"dac output", "dac", services.Interface{Name: "led", Type: "number", Unit: "V", Mode: "output", Value: 3.3}, "rollcall_dac_output_volts", 3.3},
		{"ain scaled to percent", "ain", services.Interface{Name: "soil", Type: "number", Unit: "%", Mode: "channel", Value: 40.0}, "rollcall_ain_ratio", 0.4},
		{"millivolts", "ain", services.Interface{Name: "probe", Type: "number", Unit: "mV", Mode: "channel", Value: 1650.0}, "rollcall_ain_volts", 1.65},
		{"fahrenheit", "thermo", services.Interface{Name: "oven", Type: "number", Unit: "°F", Mode: "temperature", Value: 212.0}, "rollcall_thermo_temperature_celsius", 100},
		{"kelvin", "thermo", services.Interface{Name: "cell", Type: "number", Unit: "K", Mode: "temperature", Value: 273.15}, "rollcall_thermo_temperature_celsius", 0},
		{"centimetres", "sonar", services.Interface{Name: "tank", Type: "number", Unit: "cm", Mode: "distance", Value: 120.0}, "rollcall_sonar_distance_meters", 1.2},
		{"hectopascals", "baro", services.Interface{Name: "air", Type: "number", Unit: "hPa", Mode: "pressure", Value: 1013.0}, "rollcall_baro_pressure_pascals", 101300},
		{"unknown unit kept", "ain", services.Interface{Name: "co2", Type: "number", Unit: "ppm", Mode: "channel", Value: 420.0}, "rollcall_ain_ppm", 420},
		{"unknown unit cleaned", "ain", services.Interface{Name: "water", Type: "number", Unit: "µS/cm", Mode: "channel", Value: 300.0}, "rollcall_ain_uS_per_cm", 300},
		{"no unit, no quantity", "ain", services.Interface{Name: "raw", Type: "number", Mode: "channel", Value: 7.0}, "rollcall_ain_value", 7},
		{"no unit, a quantity", "air", services.Interface{Name: "aqi", Type: "number", Mode: "index", Value: 42.0}, "rollcall_air_index", 42},
		{"service name cleaned", "my-display", services.Interface{Name: "brightness", Type: "number", Unit: "%", Mode: "output", Value: 50.0}, "rollcall_my_display_output_ratio", 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := readingOf(tc.service, tc.it)
			if r.name != tc.want {
				t.Errorf("name %q, want %q", r.name, tc.want)
			}
			if !model.LegacyValidation.IsValidMetricName(r.name) {
				t.Errorf("%q is not a valid metric name", r.name)
			}
			v, ok := number(tc.it.Value)
			if !ok {
				t.Fatalf("value %v not a number", tc.it.Value)
			}
			if got := r.unit.base(v); got != tc.value {
				t.Errorf("value %v, want %v", got, tc.value)
			}
		})
	}
}

func TestNumber(t *testing.T) {
	f := 2.5
	for _, tc := range []struct {
		name string
		v    any
		want float64
		ok   bool
	}{
		{"float", 1.5, 1.5, true},
		{"int", 3, 3, true},
		{"true", true, 1, true},
		{"false", false, 0, true},
		{"json number", json.Number("4.25"), 4.25, true},
		{"pointer", &f, 2.5, true},
		{"nil pointer", (*float64)(nil), 0, false},
		{"nil", nil, 0, false},
		{"string", "on", 0, false},
		{"object", map[string]any{"value": 1.0}, 0, false},
		{"NaN", math.NaN(), 0, false},
		{"infinity", math.Inf(1), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := number(tc.v)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("number(%v) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
			}
		})
	}
}
