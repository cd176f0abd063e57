package ain

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// TestSchemaCoversModel keeps the published JSON Schema in step with the
// structs: every member a payload may carry is in the schema and back.
func TestSchemaCoversModel(t *testing.T) {
	servicestest.SchemaCoversModel(t, Schemas()["setup"].(map[string]any), map[string]reflect.Type{
		"":         reflect.TypeFor[Config](),
		"chips":    reflect.TypeFor[ChipConfig](),
		"channels": reflect.TypeFor[ChannelConfig](),
	})
}

func TestConfigClaims(t *testing.T) {
	cfg := Config{Chips: []ChipConfig{
		{Name: "a", Chip: ChipADS1115},
		{Name: "b", Chip: ChipPCF8591, Bus: "i2c3", Addr: 0x4f, DAC: true},
		{Name: "c", Chip: ChipMCP3008, CS: 1},
		{Name: "d", Chip: ChipIIO, Device: "mcp3008"},
		{Name: "e", Chip: ChipSim},
	}}
	want := []services.Claim{
		services.I2CClaim("chips[0].addr", "i2c1", 0x48),
		services.SharedI2CClaim("chips[1].addr", "i2c3", 0x4f, "pcf8591"),
		services.SPIClaim("chips[2].cs", "spi0", 1),
		services.ResourceClaim("chips[3].device", "iio:mcp3008"),
	}
	if got := cfg.Claims(); !reflect.DeepEqual(got, want) {
		t.Errorf("claims\n got %+v\nwant %+v", got, want)
	}
}

func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string // "" for none
	}{
		{name: "empty", cfg: Config{}},
		{name: "1 kHz on an mcp3008",
			cfg: Config{Chips: []ChipConfig{{Name: "m", Chip: ChipMCP3008, SpeedHz: 3_600_000}},
				Channels: []ChannelConfig{{Name: "fast", Channel: 0, Interval: services.Duration(1e6)}}}},
		{name: "1 kHz on an ads1015 at 3300 SPS",
			cfg: Config{Chips: []ChipConfig{{Name: "a", Chip: ChipADS1015}},
				Channels: []ChannelConfig{{Name: "fast", Channel: 0, Rate: 3300, Interval: services.Duration(1e6)}}}},
		{name: "1 kHz on an ads1115 at 860 SPS is too fast",
			cfg: Config{Chips: []ChipConfig{{Name: "a", Chip: ChipADS1115}},
				Channels: []ChannelConfig{{Name: "fast", Channel: 0, Rate: 860, Interval: services.Duration(1e6)}}},
			field: "channels[0].interval"},
		{name: "a voltage divider keeps volts",
			cfg: Config{Chips: []ChipConfig{{Name: "m", Chip: ChipMCP3008}},
				Channels: []ChannelConfig{{Name: "battery", Channel: 0, Scale: 2, Unit: "V"}}}},
		{name: "speed beyond the mcp3008",
			cfg:   Config{Chips: []ChipConfig{{Name: "m", Chip: ChipMCP3008, SpeedHz: 4_000_000}}},
			field: "chips[0].speed_hz"},
		{name: "an address on a non-I2C bus",
			cfg:   Config{Chips: []ChipConfig{{Name: "a", Chip: ChipADS1115, Bus: "spi0"}}},
			field: "chips[0].bus"},
		{name: "device on a sim", cfg: Config{Chips: []ChipConfig{{Name: "s", Chip: ChipSim, Device: "x"}}}, field: "chips[0].device"},
		{name: "chips capped", cfg: Config{Chips: make([]ChipConfig, MaxChips+1)}, field: "chips"},
		{name: "chip model in capitals", cfg: Config{Chips: []ChipConfig{{Name: "a", Chip: "ADS1115"}}}, field: "chips[0].chip"},
		{name: "duplicate chip", cfg: Config{Chips: []ChipConfig{{Name: "a", Chip: ChipSim}, {Name: "a", Chip: ChipSim}}}, field: "chips[1].name"},
		{name: "channel without chips", cfg: Config{Channels: []ChannelConfig{{Name: "x"}}}, field: "channels[0].chip"},
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
	cur := Config{Chips: []ChipConfig{{Name: "a", Chip: ChipSim}}, Channels: []ChannelConfig{{Name: "x", Channel: 1}, {Name: "y", Channel: 2}}}
	patch := Config{Chips: []ChipConfig{{Name: "b", Chip: ChipMCP3008}}, Channels: []ChannelConfig{{Name: "y", Channel: 5}, {Name: "z", Channel: 3}}}
	got := merge(cur, patch)
	want := Config{
		Chips:    []ChipConfig{{Name: "a", Chip: ChipSim}, {Name: "b", Chip: ChipMCP3008}},
		Channels: []ChannelConfig{{Name: "x", Channel: 1}, {Name: "y", Channel: 5}, {Name: "z", Channel: 3}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merge\n got %+v\nwant %+v", got, want)
	}
	if cur.Channels[1].Channel != 2 {
		t.Error("merge changed the current configuration")
	}
}

func TestPeriphBus(t *testing.T) {
	tests := []struct {
		spec ChipConfig
		want string
	}{
		{ChipConfig{Chip: ChipADS1115}, "1"},
		{ChipConfig{Chip: ChipPCF8591, Bus: "i2c11"}, "11"},
		{ChipConfig{Chip: ChipMCP3008}, "SPI0.0"},
		{ChipConfig{Chip: ChipMCP3008, Bus: "spi1", CS: 2}, "SPI1.2"},
		{ChipConfig{Chip: ChipSim}, ""},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %s", tc.spec.Chip, tc.spec.Bus), func(t *testing.T) {
			if got := periphBus(tc.spec); got != tc.want {
				t.Errorf("periphBus = %q, want %q", got, tc.want)
			}
		})
	}
}

func ExampleConfig_Check() {
	var cfg Config
	_ = services.Decode([]byte("chips: [{name: adc, chip: ads1115}]\nchannels:\n  - {name: soil, channel: 0, rate: 8, interval: 50ms}\n"), 0, &cfg)
	for _, e := range cfg.Check(services.Checker{}) {
		fmt.Println(e.Code, e.Field, e.Message)
	}
	// Output: invalid channels[0].interval 50ms: at 8 SPS one conversion takes 138ms; the interval must be at least 138ms
}
