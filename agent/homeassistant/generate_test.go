package homeassistant

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/services"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// readDescription reads a host description from testdata: simpi.json is
// what the sim agent of configs/sim.yaml published (with a PWM output
// added, and ain and dac from their services' Describe), external.json a
// host with a program of its own and names Home Assistant cannot take.
func readDescription(t *testing.T, name string) services.HostDescription {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var d services.HostDescription
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// indent is the payload as the golden files hold it: indented, so that a
// change reads as a diff.
func indent(t *testing.T, c DeviceConfig) []byte {
	t.Helper()
	b, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	return append(out.Bytes(), '\n')
}

var generateCases = []struct {
	name string
	desc string
	info Info
}{
	{name: "simpi", desc: "simpi.json", info: Info{Version: "1.2.3", Model: "Raspberry Pi Zero 2 W Rev 1.0"}},
	{name: "external", desc: "external.json", info: Info{Version: "1.2.3"}},
}

func TestGenerateGolden(t *testing.T) {
	for _, tc := range generateCases {
		t.Run(tc.name, func(t *testing.T) {
			got := indent(t, Generate(readDescription(t, tc.desc), tc.info))
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("config differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
		})
	}
}

// TestGenerateMapping pins what each kind of interface becomes, the
// choices a user sees in Home Assistant.
func TestGenerateMapping(t *testing.T) {
	simpi := Generate(readDescription(t, "simpi.json"), Info{})
	ext := Generate(readDescription(t, "external.json"), Info{})
	const machine = "5e1f0c0ffee0a11ce5e1f0c0ffee0a11"
	tests := []struct {
		name     string
		cfg      DeviceConfig
		key      string
		platform string
		class    string
		unit     string
		uid      string
	}{
		{name: "gpio output is a switch", cfg: simpi, key: "gpio_lamp", platform: "switch", uid: machine + "_gpio_lamp"},
		{name: "gpio input is a binary sensor", cfg: simpi, key: "gpio_button", platform: "binary_sensor", uid: machine + "_gpio_button"},
		{name: "pwm output is a light", cfg: simpi, key: "gpio_fan", platform: "light", uid: machine + "_gpio_fan"},
		{name: "dht22 temperature", cfg: simpi, key: "dht22_air_temperature", platform: "sensor", class: "temperature", unit: "°C"},
		{name: "dht22 humidity in %RH is humidity in %", cfg: simpi, key: "dht22_air_humidity", platform: "sensor", class: "humidity", unit: "%"},
		{name: "sonar distance", cfg: simpi, key: "sonar_front", platform: "sensor", class: "distance", unit: "m"},
		{name: "ain channel in volts", cfg: simpi, key: "ain_light", platform: "sensor", class: "voltage", unit: "V"},
		{name: "ain channel scaled to % has no class", cfg: simpi, key: "ain_soil", platform: "sensor", unit: "%"},
		{name: "dac output is a number in volts", cfg: simpi, key: "dac_led", platform: "number", class: "voltage", unit: "V"},
		{name: "name Home Assistant cannot take", cfg: ext, key: "gpio_Relay_1_a_" + shortHash("Relay 1.a"), platform: "switch", uid: "b3nch2b3nch2b3nch2_gpio_Relay 1.a"},
		{name: "external pressure by its mode", cfg: ext, key: "weather_pressure", platform: "sensor", class: "pressure", unit: "hPa"},
		{name: "unknown unit: no class", cfg: ext, key: "weather_uv", platform: "sensor", unit: "UV index"},
		{name: "class outside the table: no class", cfg: ext, key: "weather_wind_dir", platform: "sensor", unit: "°"},
		{name: "% with a mode naming its class", cfg: ext, key: "weather_soil", platform: "sensor", class: "moisture", unit: "%"},
		{name: "unknown type: plain sensor", cfg: ext, key: "weather_condition", platform: "sensor"},
		{name: "number output without a range is read-only", cfg: ext, key: "weather_heater", platform: "sensor", class: "power", unit: "W"},
		{name: "number output with a range", cfg: ext, key: "weather_vent", platform: "number", unit: "%"},
		{name: "output named like an input", cfg: ext, key: "weather_rain_output", platform: "switch", uid: "b3nch2b3nch2b3nch2_weather_rain_output"},
		{name: "pwm output without a set topic", cfg: ext, key: "weather_dimmer", platform: "sensor", unit: "%"},
		{name: "unknown output type: plain sensor", cfg: ext, key: "weather_mode", platform: "sensor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := tc.cfg.Components[tc.key]
			if !ok {
				t.Fatalf("no component %q among %v", tc.key, keys(tc.cfg))
			}
			if c.Platform != tc.platform || c.DeviceClass != tc.class || c.UnitOfMeasurement != tc.unit {
				t.Errorf("%s: platform %q class %q unit %q, want %q %q %q", tc.key, c.Platform, c.DeviceClass, c.UnitOfMeasurement, tc.platform, tc.class, tc.unit)
			}
			if tc.uid != "" && c.UniqueID != tc.uid {
				t.Errorf("%s: unique_id %q, want %q", tc.key, c.UniqueID, tc.uid)
			}
			if c.Platform == "sensor" && c.UnitOfMeasurement != "" && c.StateClass != "measurement" {
				t.Errorf("%s: a sensor with a unit has state class %q", tc.key, c.StateClass)
			}
		})
	}
	if _, ok := ext.Components["weather_no_topic"]; ok {
		t.Error("an interface without a topic got a component")
	}
}

func keys(c DeviceConfig) []string {
	var out []string
	for k := range c.Components {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestGenerateDocumented checks every key and value of the payloads
// against Home Assistant's documentation (MQTT integration, "Device
// discovery payload", "Supported abbreviations"; the MQTT sensor, binary
// sensor, switch, light and number pages; the sensor and number "Device
// class" lists), transcribed below.
func TestGenerateDocumented(t *testing.T) {
	for _, tc := range generateCases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Generate(readDescription(t, tc.desc), tc.info).JSON()
			if err != nil {
				t.Fatal(err)
			}
			var root map[string]any
			if err := json.Unmarshal(b, &root); err != nil {
				t.Fatal(err)
			}
			checkKeys(t, "root", root, docAbbreviations, docRootKeys)
			dev, _ := root["dev"].(map[string]any)
			checkKeys(t, "dev", dev, docDeviceAbbreviations, docDeviceKeys)
			if ids, _ := dev["ids"].([]any); len(ids) == 0 {
				t.Error("dev: no identifiers")
			}
			origin, _ := root["o"].(map[string]any)
			checkKeys(t, "o", origin, docOriginAbbreviations, docOriginKeys)
			if origin["name"] == nil {
				t.Error("o: no name (required)")
			}
			cmps, _ := root["cmps"].(map[string]any)
			if len(cmps) == 0 {
				t.Fatal("no components")
			}
			uids := map[any]string{}
			for key, v := range cmps {
				c := v.(map[string]any)
				if !regexp.MustCompile(`^[a-zA-Z0-9_-]+$`).MatchString(key) {
					t.Errorf("component key %q is not an object id", key)
				}
				p, _ := c["p"].(string)
				platformKeys, ok := docPlatformKeys[p]
				if !ok {
					t.Errorf("%s: platform %q is not one rollcall means to use", key, p)
					continue
				}
				checkKeys(t, key, c, docAbbreviations, append(slices.Clone(docEntityKeys), platformKeys...))
				if c["uniq_id"] == nil || len(c) < 2 {
					t.Errorf("%s: an entity component needs unique_id and an option of its own", key)
				}
				if other, dup := uids[c["uniq_id"]]; dup {
					t.Errorf("%s and %s share unique_id %v", key, other, c["uniq_id"])
				}
				uids[c["uniq_id"]] = key
				for _, a := range c["avty"].([]any) {
					checkKeys(t, key+".avty", a.(map[string]any), docAbbreviations, docAvailabilityKeys)
				}
				checkEnum(t, key, c, "avty_mode", "all", "any", "latest")
				checkEnum(t, key, c, "stat_cla", "measurement", "measurement_angle", "total", "total_increasing")
				checkEnum(t, key, c, "on_cmd_type", "first", "last", "brightness")
				if cls, ok := c["dev_cla"].(string); ok {
					units := docClassUnits[p][cls]
					if units == nil {
						t.Errorf("%s: %s device class %q is not documented", key, p, cls)
					} else if !slices.Contains(units, c["unit_of_meas"]) {
						t.Errorf("%s: unit %v is not one of %s's documented units %v", key, c["unit_of_meas"], cls, units)
					}
				}
				if _, unit := c["unit_of_meas"]; unit && p == "sensor" && c["stat_cla"] == nil {
					t.Errorf("%s: numeric sensor without a state class", key)
				}
				if p == "number" && (c["min"] == nil || c["max"] == nil || c["step"] == nil) {
					t.Errorf("%s: number without min, max and step", key)
				}
				if s, ok := c["step"].(float64); ok && s < 0.001 {
					t.Errorf("%s: step %v under Home Assistant's smallest, 0.001", key, s)
				}
			}
		})
	}
}

// TestClassTablesDocumented checks the generator's tables against the
// documented units, so that no class is sent with a unit Home Assistant
// refuses for it.
func TestClassTablesDocumented(t *testing.T) {
	for _, tc := range []struct {
		name  string
		table ClassTable
		doc   map[string][]any
	}{
		{name: "sensor", table: SensorClasses, doc: docClassUnits["sensor"]},
		{name: "number", table: NumberClasses, doc: docClassUnits["number"]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for class, units := range tc.table {
				for _, u := range units {
					if !slices.Contains(tc.doc[class], any(u)) {
						t.Errorf("%s %s: unit %q is not documented (documented: %v)", tc.name, class, u, tc.doc[class])
					}
				}
			}
		})
	}
}

func checkKeys(t *testing.T, where string, m map[string]any, abbr map[string]string, documented []string) {
	t.Helper()
	for k := range m {
		full := k
		if f, ok := abbr[k]; ok {
			full = f
		}
		if !slices.Contains(documented, full) {
			t.Errorf("%s: key %q (%s) is not documented there", where, k, full)
		}
	}
}

func checkEnum(t *testing.T, where string, m map[string]any, key string, allowed ...string) {
	t.Helper()
	if v, ok := m[key]; ok && !slices.Contains(allowed, v.(string)) {
		t.Errorf("%s: %s %q is not one of %v", where, key, v, allowed)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name, mode, unit string
		table            ClassTable
		wantUnit, want   string
	}{
		{name: "temperature by mode", mode: "temperature", unit: "°C", table: SensorClasses, wantUnit: "°C", want: "temperature"},
		{name: "humidity in %RH", mode: "humidity", unit: "%RH", table: SensorClasses, wantUnit: "%", want: "humidity"},
		{name: "%RH without a mode", unit: "%RH", table: SensorClasses, wantUnit: "%", want: "humidity"},
		{name: "distance in m", mode: "distance", unit: "m", table: SensorClasses, wantUnit: "m", want: "distance"},
		{name: "distance in cm by unit alone", unit: "cm", table: SensorClasses, wantUnit: "cm", want: "distance"},
		{name: "volts of a channel", mode: "channel", unit: "V", table: SensorClasses, wantUnit: "V", want: "voltage"},
		{name: "volts of an output", mode: "output", unit: "V", table: NumberClasses, wantUnit: "V", want: "voltage"},
		{name: "% decides nothing", mode: "channel", unit: "%", table: SensorClasses, wantUnit: "%"},
		{name: "% of a battery", mode: "battery", unit: "%", table: SensorClasses, wantUnit: "%", want: "battery"},
		{name: "battery is no number class", mode: "battery", unit: "%", table: NumberClasses, wantUnit: "%"},
		{name: "mode naming a class the unit does not fit", mode: "temperature", unit: "V", table: SensorClasses, wantUnit: "V", want: "voltage"},
		{name: "micro spelled u", unit: "uA", table: SensorClasses, wantUnit: "µA", want: "current"},
		{name: "µA is no number unit", unit: "uA", table: NumberClasses, wantUnit: "µA"},
		{name: "unknown unit kept", mode: "uv", unit: "UV index", table: SensorClasses, wantUnit: "UV index"},
		{name: "no unit", mode: "temperature", table: SensorClasses},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, c := Classify(tc.mode, tc.unit, tc.table)
			if u != tc.wantUnit || c != tc.want {
				t.Errorf("Classify(%q, %q) = %q, %q; want %q, %q", tc.mode, tc.unit, u, c, tc.wantUnit, tc.want)
			}
		})
	}
}

func TestObjectID(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "plain", in: "simpi", want: "simpi"},
		{name: "dashes and underscores", in: "pi-zero_2", want: "pi-zero_2"},
		{name: "dot", in: "pi.local", want: "pi_local_" + shortHash("pi.local")},
		{name: "space", in: "my pi", want: "my_pi_" + shortHash("my pi")},
		{name: "does not meet its sanitized twin", in: "pi_local", want: "pi_local"},
		{name: "empty", in: "", want: "_" + shortHash("")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ObjectID(tc.in); got != tc.want {
				t.Errorf("ObjectID(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		errMsg string
	}{
		{name: "default", cfg: DefaultConfig()},
		{name: "enabled", cfg: Config{Enabled: true, Prefix: "homeassistant"}},
		{name: "two levels", cfg: Config{Enabled: true, Prefix: "ha/discovery"}},
		{name: "empty", cfg: Config{Enabled: true}, errMsg: "must not be empty"},
		{name: "wildcard", cfg: Config{Prefix: "ha/#"}, errMsg: "not a topic prefix"},
		{name: "trailing slash", cfg: Config{Prefix: "ha/"}, errMsg: "not a topic prefix"},
		{name: "rollcall's own", cfg: Config{Prefix: "rollcall"}, errMsg: "topics rollcall keeps"},
		{name: "a service's set topics", cfg: Config{Prefix: "pi1/gpio/set"}, errMsg: "topics rollcall keeps"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.cfg.Check()
			switch {
			case tc.errMsg == "" && len(errs) > 0:
				t.Errorf("refused: %v", errs)
			case tc.errMsg != "" && (len(errs) != 1 || errs[0].Field != "prefix" || !strings.Contains(errs[0].Message, tc.errMsg)):
				t.Errorf("errors %v, want one on prefix saying %q", errs, tc.errMsg)
			}
		})
	}
}

// What Home Assistant documents, transcribed from its pages.

var docAbbreviations = map[string]string{
	"avty": "availability", "avty_mode": "availability_mode", "avty_t": "availability_topic",
	"avty_tpl": "availability_template", "bri_cmd_t": "brightness_command_topic",
	"bri_cmd_tpl": "brightness_command_template", "bri_scl": "brightness_scale",
	"bri_stat_t": "brightness_state_topic", "bri_val_tpl": "brightness_value_template",
	"cmd_t": "command_topic", "cmd_tpl": "command_template", "cmps": "components",
	"dev": "device", "dev_cla": "device_class", "e": "encoding", "en": "enabled_by_default",
	"ent_cat": "entity_category", "exp_aft": "expire_after", "frc_upd": "force_update",
	"ic": "icon", "json_attr_t": "json_attributes_topic", "json_attr_tpl": "json_attributes_template",
	"max": "max", "min": "min", "mode": "mode", "name": "name", "o": "origin",
	"obj_id": "object_id", "off_dly": "off_delay", "on_cmd_type": "on_command_type",
	"opt": "optimistic", "p": "platform", "pl_avail": "payload_available",
	"pl_not_avail": "payload_not_available", "pl_off": "payload_off", "pl_on": "payload_on",
	"pl_rst": "payload_reset", "ret": "retain", "stat_cla": "state_class", "stat_off": "state_off",
	"stat_on": "state_on", "stat_t": "state_topic", "stat_val_tpl": "state_value_template",
	"step": "step", "sug_dsp_prc": "suggested_display_precision", "t": "topic",
	"uniq_id": "unique_id", "unit_of_meas": "unit_of_measurement", "val_tpl": "value_template",
	"def_ent_id": "default_entity_id",
}

var docDeviceAbbreviations = map[string]string{
	"cu": "configuration_url", "cns": "connections", "ids": "identifiers", "name": "name",
	"mf": "manufacturer", "mdl": "model", "mdl_id": "model_id", "hw": "hw_version",
	"sw": "sw_version", "sa": "suggested_area", "sn": "serial_number",
}

var docOriginAbbreviations = map[string]string{"name": "name", "sw": "sw_version", "url": "support_url"}

var (
	// The root of a device discovery payload: device, origin, components
	// and the shared options.
	docRootKeys = []string{"device", "origin", "components", "availability", "availability_mode",
		"availability_template", "availability_topic", "payload_available", "payload_not_available",
		"command_topic", "state_topic", "qos", "encoding"}
	docDeviceKeys = []string{"configuration_url", "connections", "hw_version", "identifiers",
		"manufacturer", "model", "model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device"}
	docOriginKeys       = []string{"name", "sw_version", "support_url"}
	docAvailabilityKeys = []string{"topic", "payload_available", "payload_not_available", "value_template"}
	// Options every MQTT entity platform has.
	docEntityKeys = []string{"platform", "availability", "availability_mode", "availability_template",
		"availability_topic", "payload_available", "payload_not_available", "enabled_by_default",
		"encoding", "entity_category", "icon", "json_attributes_template", "json_attributes_topic",
		"name", "object_id", "default_entity_id", "qos", "unique_id"}
	docPlatformKeys = map[string][]string{
		"sensor": {"state_topic", "value_template", "device_class", "unit_of_measurement",
			"state_class", "expire_after", "force_update", "suggested_display_precision"},
		"binary_sensor": {"state_topic", "value_template", "device_class", "payload_on",
			"payload_off", "expire_after", "force_update", "off_delay"},
		"switch": {"command_topic", "command_template", "state_topic", "value_template",
			"payload_on", "payload_off", "state_on", "state_off", "optimistic", "retain", "device_class"},
		"light": {"command_topic", "state_topic", "state_value_template", "payload_on", "payload_off",
			"on_command_type", "brightness_command_topic", "brightness_command_template",
			"brightness_scale", "brightness_state_topic", "brightness_value_template", "optimistic", "retain"},
		"number": {"command_topic", "command_template", "state_topic", "value_template", "min", "max",
			"step", "mode", "unit_of_measurement", "device_class", "optimistic", "retain", "payload_reset"},
	}
	// The classes' units, sensor and number pages, "Device class".
	docClassUnits = map[string]map[string][]any{
		"sensor": {
			"temperature": {"°C", "°F", "K"},
			"humidity":    {"%"},
			"moisture":    {"%"},
			"battery":     {"%"},
			"distance":    {"km", "m", "cm", "mm", "mi", "nmi", "yd", "in"},
			"voltage":     {"V", "mV", "µV", "kV", "MV"},
			"current":     {"A", "mA", "µA"},
			"illuminance": {"lx"},
			"pressure":    {"mPa", "Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg", "inH₂O", "psi"},
			"power":       {"mW", "W", "kW", "MW", "GW", "TW"},
			"frequency":   {"mHz", "Hz", "kHz", "MHz", "GHz"},
		},
		"number": {
			"temperature": {"°C", "°F", "K"},
			"humidity":    {"%"},
			"moisture":    {"%"},
			"battery":     {"%"},
			"distance":    {"km", "m", "cm", "mm", "mi", "nmi", "yd", "in"},
			"voltage":     {"V", "mV", "µV", "kV", "MV"},
			"current":     {"A", "mA"},
			"illuminance": {"lx"},
			"pressure":    {"Pa", "kPa", "hPa", "bar", "cbar", "mbar", "mmHg", "inHg", "psi"},
			"power":       {"mW", "W", "kW", "MW", "GW", "TW"},
			"frequency":   {"Hz", "kHz", "MHz", "GHz"},
		},
	}
)

// BenchmarkGenerate is the work done on each description change of the
// sim host: the config built and marshalled.
func BenchmarkGenerate(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "simpi.json"))
	if err != nil {
		b.Fatal(err)
	}
	var d services.HostDescription
	if err := json.Unmarshal(raw, &d); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(d, Info{Version: "1.2.3"}).JSON(); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzGenerate: whatever a description says (an external service's comes
// from any program on the broker), the config is valid JSON whose keys
// Home Assistant takes, and every entity has a unique id of its own.
func FuzzGenerate(f *testing.F) {
	for _, name := range []string{"simpi.json", "external.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"host":"h","machine":"m","services":[{"function":"x","inputs":[{"name":"a b","topic":"t","type":"number","unit":"\u00b5A","min":1,"max":1e308}],"outputs":[{"name":"a b","topic":"t","type":"number","set":"s","min":-1e308,"max":1e308}]}]}`))
	key := regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var d services.HostDescription
		if json.Unmarshal(raw, &d) != nil {
			return
		}
		cfg := Generate(d, Info{Version: "1"})
		b, err := cfg.JSON()
		if err != nil {
			t.Fatalf("%v", err)
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON %s", b)
		}
		uids := map[string]bool{}
		for k, c := range cfg.Components {
			if !key.MatchString(k) {
				t.Errorf("key %q", k)
			}
			if c.Platform == "" || c.UniqueID == "" || uids[c.UniqueID] {
				t.Errorf("%s: platform %q unique_id %q (seen: %v)", k, c.Platform, c.UniqueID, uids[c.UniqueID])
			}
			uids[c.UniqueID] = true
		}
	})
}

// TestGenerateTopicPrefix: under a topic prefix, every entity's
// availability follows the host's prefixed status and summary, or an
// external service's prefixed status.
func TestGenerateTopicPrefix(t *testing.T) {
	tests := []struct {
		name   string
		desc   string
		prefix services.Prefix
	}{
		{"built-in services, one level", "simpi.json", "site1"},
		{"built-in services, two levels", "simpi.json", "farm/north"},
		{"an external service", "external.json", "site1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := readDescription(t, tt.desc)
			cfg := Generate(d, Info{TopicPrefix: tt.prefix})
			if len(cfg.Components) == 0 {
				t.Fatal("no components")
			}
			for key, c := range cfg.Components {
				if len(c.Availability) != 2 {
					t.Fatalf("%s: availability %+v", key, c.Availability)
				}
				if want := string(tt.prefix) + "/" + d.Host + "/status"; c.Availability[0].Topic != want {
					t.Errorf("%s: host availability on %q, want %q", key, c.Availability[0].Topic, want)
				}
				if got := c.Availability[1].Topic; !strings.HasPrefix(got, string(tt.prefix)+"/"+d.Host+"/") {
					t.Errorf("%s: service availability on %q, not under %s/%s/", key, got, tt.prefix, d.Host)
				}
			}
		})
	}
}
