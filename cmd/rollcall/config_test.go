package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/agent/session"
	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/sensors/ain"
	"github.com/rollcall/rollcall/sensors/dac"
	"github.com/rollcall/rollcall/services"
)

func ptr[T any](v T) *T { return &v }

// load runs loadConfig the way a subcommand does, with args as flags.
func load(t *testing.T, args ...string) (agent.Config, error) {
	t.Helper()
	var cfg agent.Config
	var err error
	cmd := &cobra.Command{Use: "x", RunE: func(cmd *cobra.Command, _ []string) error {
		cfg, err = loadConfig(cmd)
		return nil
	}}
	addConfigFlags(cmd)
	cmd.SetArgs(args)
	if e := cmd.Execute(); e != nil {
		t.Fatal(e)
	}
	return cfg, err
}

func TestConfigsLoad(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.yaml")
	if len(files) < 2 {
		t.Fatalf("configs/ has %d files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := load(t, "--config", f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConfigPi(t *testing.T) {
	got, err := load(t, "--config", "../../configs/pi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := agent.DefaultConfig()
	want.Host = "pizero2"
	want.StateDir = "/var/lib/rollcall"
	want.LogLevel = "info"
	want.MQTT = session.Config{Broker: "tcp://10.0.0.2:1883", Keepalive: 30 * time.Second}
	want.Discovery = discovery.Config{
		Port: 4747, ReportTopic: "/udp/report", ReplyTopic: "/stat/data", ReplyPrefixes: []string{"/stat/"},
		KeyID: "k1", ReplayWindow: 30 * time.Second, InventoryTopic: "rollcall/inventory",
	}
	want.Buses = []string{"i2c1"}
	want.Blocks[gpio.Name] = &gpio.Config{
		Driver:        "periph",
		FailsafeAfter: services.Duration(60 * time.Second),
		Output: []gpio.OutputPin{
			{Name: "pump_drive", Pin: 25, Init: 0, Pull: "down", Failsafe: 0},
			{Name: "lamp", Pin: 23, Init: 0, Failsafe: 0},
		},
		PWM: []gpio.PWMPin{{Name: "sonar_angle", Pin: 18, Init: 20, Period: 1000, Pol: "normal"}},
		Input: []gpio.InputPin{
			{Name: "float_switch", Pin: 17, Pull: "down", Edge: "both", Debounce: services.Duration(20 * time.Millisecond)},
			{Name: "button", Pin: 22, Pull: "down", Edge: "both", Debounce: services.Duration(20 * time.Millisecond), OnChange: "pizero1/gpio/set/lamp"},
		},
	}
	want.Blocks[ain.Name] = &ain.Config{
		Chips: []ain.ChipConfig{{Name: "adc", Chip: "ads1115", Bus: "i2c1", Addr: 0x48}},
		Channels: []ain.ChannelConfig{
			{Name: "soil", Chip: "adc", Channel: 0, Range: 4.096, Rate: 128, Interval: services.Duration(10 * time.Second), Scale: 33.3, Unit: "%", Deadband: 1},
			{Name: "shunt", Chip: "adc", Channel: 2, Neg: ptr(3), Range: 0.256, Rate: 860, Interval: services.Duration(100 * time.Millisecond), Deadband: 0.001},
		},
	}
	want.Blocks[dac.Name] = &dac.Config{
		FailsafeAfter: services.Duration(60 * time.Second),
		Chips:         []dac.ChipConfig{{Name: "dac0", Chip: "mcp4725", Bus: "i2c1", Addr: 0x60, VRef: 3.3}},
		Outputs:       []dac.OutputConfig{{Name: "level", Chip: "dac0"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("configs/pi.yaml:\n got %#v\nwant %#v", got, want)
	}
	for name, b := range want.Blocks {
		if !reflect.DeepEqual(got.Blocks[name], b) {
			t.Errorf("%s:\n got %#v\nwant %#v", name, got.Blocks[name], b)
		}
	}
}

func TestConfigPrecedence(t *testing.T) {
	t.Setenv("ROLLCALL_MQTT_BROKER", "tcp://10.9.9.9:1883")
	t.Setenv("ROLLCALL_DISCOVERY_PORT", "5000")
	cfg, err := load(t, "--config", "../../configs/pi.yaml", "--port", "6000")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.Broker != "tcp://10.9.9.9:1883" {
		t.Errorf("environment did not override the file: broker %q", cfg.MQTT.Broker)
	}
	if cfg.Discovery.Port != 6000 {
		t.Errorf("flag did not override the environment: port %d", cfg.Discovery.Port)
	}
}

func TestConfigErrorsNameEveryKey(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`
host: "bad/host"
mqtt: {broker: "ftp://x", keepalive: 10ms}
discovery: {port: 70000, report_topic: "/udp/#"}
buses: [i2c7]
gpio:
  output:
    - {name: a, pin: 28}
`), 0o644)
	_, err := load(t, "--config", bad)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, key := range []string{"host", "mqtt.broker", "mqtt.keepalive", "discovery.port", "discovery.report_topic", "buses[0]", "gpio.output[0].pin"} {
		if !strings.Contains(err.Error(), "\n  "+key+":") {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}

	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("mqtt: {brokr: tcp://x:1}\n"), 0o644)
	if _, err := load(t, "--config", unknown); err == nil || !strings.Contains(err.Error(), "brokr") {
		t.Errorf("a misspelt key should be named: %v", err)
	}

	if _, err := load(t, "--config", filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing --config file should fail")
	}
}
