package dac

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// TestSchemaCoversModel keeps the published JSON Schema in step with the
// structs: every member a payload may carry is in the schema and back.
func TestSchemaCoversModel(t *testing.T) {
	servicestest.SchemaCoversModel(t, Schemas()["setup"].(map[string]any), map[string]reflect.Type{
		"":        reflect.TypeFor[Config](),
		"chips":   reflect.TypeFor[ChipConfig](),
		"outputs": reflect.TypeFor[OutputConfig](),
	})
}

func TestConfigClaims(t *testing.T) {
	cfg := Config{Chips: []ChipConfig{
		{Name: "m", Chip: "mcp4725"},
		{Name: "p", Chip: "pcf8591", Bus: "i2c3", Addr: 0x4f},
		{Name: "k", Chip: "iio"},
		{Name: "s", Chip: "sim"},
	}}
	want := []services.Claim{
		services.I2CClaim("chips[0].addr", "i2c1", 0x60),
		services.SharedI2CClaim("chips[1].addr", "i2c3", 0x4f, "pcf8591"),
		services.ResourceClaim("chips[2].device", "iio:mcp4725"),
	}
	if got := cfg.Claims(); !reflect.DeepEqual(got, want) {
		t.Errorf("claims\n got %+v\nwant %+v", got, want)
	}
}

func TestConfigCheck(t *testing.T) {
	sim := []ChipConfig{{Name: "s", Chip: "sim"}}
	tests := []struct {
		name  string
		cfg   Config
		field string // of the first error; "" for none
	}{
		{name: "empty", cfg: Config{}},
		{name: "the top code's voltage", cfg: Config{Chips: sim, Outputs: []OutputConfig{{Name: "a", Init: 3.3}}}},
		{name: "in °C", cfg: Config{Chips: sim, Outputs: []OutputConfig{{Name: "a", Scale: 10, Offset: -5, Unit: "°C", Init: 20, Failsafe: -5}}}},
		{name: "a negative scale", cfg: Config{Chips: sim, Outputs: []OutputConfig{{Name: "a", Scale: -1, Unit: "V", Init: -3}}}},
		{name: "a negative scale's init beyond", cfg: Config{Chips: sim, Outputs: []OutputConfig{{Name: "a", Scale: -1, Unit: "V", Init: 1}}}, field: "outputs[0].init"},
		{name: "eight sim outputs", cfg: Config{Chips: sim, Outputs: []OutputConfig{{Name: "a", Channel: 7}}}},
		{name: "a ninth", cfg: Config{Chips: sim, Outputs: []OutputConfig{{Name: "a", Channel: 8}}}, field: "outputs[0].channel"},
		{name: "follow another host's ain value", cfg: Config{Chips: sim, Outputs: []OutputConfig{{Name: "a", Follow: "pi1/ain/input/soil/value"}}}},
		{name: "follow a set topic", cfg: Config{Chips: sim, Outputs: []OutputConfig{{Name: "a", Follow: "pi1/dac/set/a"}}}, field: "outputs[0].follow"},
		{name: "outputs capped", cfg: Config{Chips: sim, Outputs: make([]OutputConfig, MaxOutputs+1)}, field: "outputs"},
		{name: "bus on a sim", cfg: Config{Chips: []ChipConfig{{Name: "s", Chip: "sim", Bus: "i2c1"}}}, field: "chips[0].bus"},
		{name: "not an I2C bus", cfg: Config{Chips: []ChipConfig{{Name: "m", Chip: "mcp4725", Bus: "spi0"}}}, field: "chips[0].bus"},
		{name: "negative failsafe_after", cfg: Config{FailsafeAfter: services.Duration(-time.Second)}, field: "failsafe_after"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.cfg.Check(services.Checker{Topics: topics})
			if tc.field == "" {
				if errs != nil {
					t.Fatalf("refused: %v", errs)
				}
				return
			}
			if len(errs) == 0 || errs[0].Field != tc.field {
				t.Fatalf("errors %v, want the first at %s", errs, tc.field)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	cur := Config{Chips: []ChipConfig{{Name: "s", Chip: "sim"}}, Outputs: []OutputConfig{{Name: "a", Init: 1}, {Name: "b"}}, FailsafeAfter: 5}
	patch := Config{Outputs: []OutputConfig{{Name: "b", Init: 2}, {Name: "c", Channel: 2}}}
	got := merge(cur, patch, map[string]bool{"outputs": true})
	want := Config{Chips: cur.Chips, Outputs: []OutputConfig{{Name: "a", Init: 1}, {Name: "b", Init: 2}, {Name: "c", Channel: 2}}, FailsafeAfter: 5}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merge\n got %+v\nwant %+v", got, want)
	}
	if got := merge(cur, Config{}, map[string]bool{"failsafe_after": true}); got.FailsafeAfter != 0 {
		t.Errorf("failsafe_after present in the patch not merged: %v", got.FailsafeAfter)
	}
}

func ExampleConfig_Check() {
	var cfg Config
	_ = services.Decode([]byte("chips: [{name: m, chip: mcp4725, vref: 5}]\noutputs:\n  - {name: heat, scale: 20, unit: '%', init: 120}\n"), 0, &cfg)
	for _, e := range cfg.Check(services.Checker{}) {
		fmt.Println(e.Code, e.Field, e.Message)
	}
	// Output: invalid outputs[0].init 120 % (6 V) is outside 0–100 %, 0–5 V at the chip
}
