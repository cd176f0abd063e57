package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/agent/homeassistant"
	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/sensors/ain"
	"github.com/rollcall/rollcall/sensors/dac"
	"github.com/rollcall/rollcall/sensors/dht22"
	"github.com/rollcall/rollcall/sensors/sonar"
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
	addConfigFlags(cmd, 0)
	addConfigFlags(cmd, flagsAgent|flagsBroker|flagsSweep)
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
	want.MQTT.Broker = "tcp://10.0.0.2:1883"
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
	want.Blocks[dht22.Name] = &dht22.Config{Sensors: []dht22.SensorConfig{{
		Name: "greenhouse", Pin: 4, Driver: "iio", Interval: services.Duration(10 * time.Second),
		Deadband: dht22.Deadband{Temperature: 0.2, Humidity: 1},
	}}}
	want.Blocks[sonar.Name] = &sonar.Config{Rangers: []sonar.RangerConfig{{
		Name: "tank_level", Driver: "iio", Trigger: 5, Echo: 6, Samples: 5, Min: 0.05, Max: 2.5,
		Interval: services.Duration(2 * time.Second), Deadband: 0.01, Temperature: "greenhouse",
	}}}
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

// TestConfigHomeAssistant: one setting turns it on, from the file or the
// environment; the prefix defaults to Home Assistant's.
func TestConfigHomeAssistant(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ha.yaml")
	if err := os.WriteFile(file, []byte("homeassistant: {enabled: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("# nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		file string
		env  map[string]string
		want homeassistant.Config
	}{
		{name: "default off", file: empty, want: homeassistant.Config{Prefix: "homeassistant"}},
		{name: "file", file: file, want: homeassistant.Config{Enabled: true, Prefix: "homeassistant"}},
		{name: "environment", file: empty, env: map[string]string{"ROLLCALL_HOMEASSISTANT_ENABLED": "true", "ROLLCALL_HOMEASSISTANT_PREFIX": "ha"},
			want: homeassistant.Config{Enabled: true, Prefix: "ha"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := load(t, "--config", tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.HomeAssistant != tc.want {
				t.Errorf("homeassistant %+v, want %+v", cfg.HomeAssistant, tc.want)
			}
		})
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

// TestConfigStrict: the file is read as strictly as a setup payload:
// nothing is coerced, key names are exact, every problem is reported, and
// an explicit value that is invalid is an error, never a default.
func TestConfigStrict(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		file    string
		args    []string
		env     map[string]string
		key     string // named in the error
		message string // in the error
	}{
		{name: "float pin", file: "gpio:\n  output:\n    - {name: a, pin: 4.7}\n", key: "gpio.output[0].pin", message: "integer, not 4.7"},
		{name: "bool pin", file: "gpio:\n  output:\n    - {name: a, pin: true}\n", key: "gpio.output[0].pin", message: "integer, not true"},
		{name: "map for a list", file: "gpio:\n  output: {name: a, pin: 5}\n", key: "gpio.output", message: "list"},
		{name: "key in the wrong case", file: "Host: pi1\n", key: "Host", message: "unknown field"},
		{name: "host and Host", file: "host: pi1\nHost: pi2\n", key: "Host", message: "unknown field"},
		{name: "port overflow", file: "discovery: {port: 99999999999999999999}\n", key: "discovery.port", message: "out of range"},
		{name: "port too big", file: "discovery: {port: 70000}\n", key: "discovery.port", message: "not a UDP port"},
		{name: "explicit empty state dir", file: "state_dir: \"\"\n", key: "state_dir", message: "must not be empty"},
		{name: "explicit port 0", file: "discovery: {port: 0}\n", key: "discovery.port", message: "not a UDP port"},
		{name: "flag --state-dir empty", args: []string{"--state-dir="}, key: "state_dir", message: "must not be empty"},
		{name: "flag --port 0", args: []string{"--port", "0"}, key: "discovery.port", message: "not a UDP port"},
		{name: "env port not a number", env: map[string]string{"ROLLCALL_DISCOVERY_PORT": "4747.5"}, key: "discovery.port", message: "ROLLCALL_DISCOVERY_PORT"},
		{name: "env bool", env: map[string]string{"ROLLCALL_SIM": "yes please"}, key: "sim", message: "true or false"},
		{name: "keepalive as a number", file: "mqtt: {keepalive: 30}\n", key: "mqtt.keepalive", message: "duration"},
		{name: "null for a string", file: "mqtt: {broker: null}\n", key: "mqtt.broker", message: "string, not null"},
		{name: "YAML alias bomb", file: "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n", message: "aliases expand"},
		{name: "one IIO device for two services", file: "dht22:\n  sensors: [{name: air, pin: 4, driver: iio, device: \"iio:device1\"}]\nain:\n  chips: [{name: a, chip: iio, device: \"iio:device1\"}]\n  channels: [{name: x, chip: a, channel: 0}]\n", key: "dht22.sensors[0].device", message: "ain (chips[0].device) holds it"},
		{name: "unknown service", file: "relays:\n  - x\n", key: "relays", message: "; services: "},
		{name: "a service listed that does not exist", file: "services: [gpio, lasers]\n", key: "services[1]", message: "lasers"},
		{name: "embedded broker on the LAN without users", file: "mqtt: {embedded_broker: \":1883\"}\n", key: "mqtt.embedded_broker", message: "anyone on the network could drive the pins"},
		{name: "embedded users without the agent's own", file: "mqtt: {embedded_broker: \":1883\", embedded_users: {admin: \"0123456789\"}}\n", key: "mqtt.username", message: "must be one of mqtt.embedded_users"},
		{name: "home assistant prefix with a wildcard", file: "homeassistant: {enabled: true, prefix: \"ha/#\"}\n", key: "homeassistant.prefix", message: "not a topic prefix"},
		{name: "home assistant prefix under the host", file: "host: pi1\nhomeassistant: {enabled: true, prefix: pi1/ha}\n", key: "homeassistant.prefix", message: "this host's own topics"},
		{name: "home assistant enabled not a bool", env: map[string]string{"ROLLCALL_HOMEASSISTANT_ENABLED": "on"}, key: "homeassistant.enabled", message: "true or false"},
		{name: "embedded user with a short password", file: "mqtt: {embedded_broker: \"127.0.0.1:1883\", embedded_users: {pi: short}, username: pi, password: short}\n", key: "mqtt.embedded_users.pi", message: "at least 8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", write(strings.ReplaceAll(tc.name, " ", "_")+".yaml", tc.file)}, args...)
			} else {
				args = append([]string{"--config", write("empty.yaml", "# nothing\n")}, args...)
			}
			_, err := load(t, args...)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.key != "" && !strings.Contains(err.Error(), "\n  "+tc.key+":") {
				t.Errorf("error does not name %s:\n%v", tc.key, err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error does not say %q:\n%v", tc.message, err)
			}
		})
	}
	// Every problem of a file is reported, not the first only.
	_, err := load(t, "--config", write("many.yaml", "host: \"a/b\"\nlog_level: loud\ndiscovery: {port: 0, reply_topic: x/status}\ngpio:\n  output:\n    - {name: a, pin: 28}\n    - {name: b, pin: 2.5}\n"))
	if err == nil || strings.Count(err.Error(), "\n  ") < 5 {
		t.Errorf("want five problems, got:\n%v", err)
	}
	// The embedded broker may serve the LAN with users, or when told so.
	for _, ok := range []string{
		"mqtt: {embedded_broker: \":1883\", embedded_insecure: true}\n",
		"mqtt: {embedded_broker: \":1883\", embedded_users: {pi: \"0123456789\"}, username: pi, password: \"0123456789\"}\n",
	} {
		if _, err := load(t, "--config", write("lan.yaml", ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	// A broker given by flag or environment turns off the file's embedded
	// broker: on a Pi already running mosquitto, :1883 is taken.
	cfg, err := load(t, "--config", write("embedded.yaml", "mqtt: {embedded_broker: \":1883\", embedded_insecure: true}\n"), "--broker", "tcp://10.0.0.2:1883")
	if err != nil || cfg.MQTT.EmbeddedBroker != "" || cfg.MQTT.Broker != "tcp://10.0.0.2:1883" {
		t.Errorf("--broker left the embedded broker on: %+v %v", cfg.MQTT, err)
	}
}

// TestConfigSecretExposed: a configuration file every user can read is
// warned about when it holds a secret, and only then: a password from a
// file of its own or the environment is not the configuration's fault.
func TestConfigSecretExposed(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	for _, tc := range []struct {
		name string
		file string
		mode os.FileMode
		args []string
		warn bool
	}{
		{"password in a readable file", "mqtt: {password: s3cret}\n", 0o644, nil, true},
		{"discovery key in a readable file", "discovery: {key: 0123456789abcdef0123}\n", 0o644, nil, true},
		{"password in a private file", "mqtt: {password: s3cret}\n", 0o640, nil, false},
		{"password from --password-file", "host: pi1\n", 0o644, []string{"--password-file", pw}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			if err := os.WriteFile(f, []byte(tc.file), tc.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(f, tc.mode) // past the umask
			stderr := captureStderr(t, func() {
				if _, err := load(t, append([]string{"--config", f}, tc.args...)...); err != nil {
					t.Fatal(err)
				}
			})
			if got := strings.Contains(stderr, "chmod 0640"); got != tc.warn {
				t.Errorf("warned %v, want %v; stderr:\n%s", got, tc.warn, stderr)
			}
		})
	}
}

// captureStderr runs f with os.Stderr going to a pipe and returns what
// was written.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	defer func() { os.Stderr = old }()
	f()
	w.Close()
	return string(<-done)
}

// TestConfigTopicPrefix: mqtt.topic_prefix comes from the file, the
// environment or --topic-prefix like every mqtt key, and is checked as
// strictly: whole topic levels, nothing a broker would take as a wildcard
// or keep for itself.
func TestConfigTopicPrefix(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := write("empty.yaml", "# nothing\n")
	tests := []struct {
		name    string
		file    string
		args    []string
		env     map[string]string
		want    services.Prefix // when good
		message string          // in the error on mqtt.topic_prefix, when bad
	}{
		{name: "default none", want: ""},
		{name: "file, one level", file: "mqtt: {topic_prefix: site1}\n", want: "site1"},
		{name: "file, two levels", file: "mqtt: {topic_prefix: farm/north}\n", want: "farm/north"},
		{name: "environment", env: map[string]string{"ROLLCALL_MQTT_TOPIC_PREFIX": "site2"}, want: "site2"},
		{name: "flag over environment", args: []string{"--topic-prefix", "site3"}, env: map[string]string{"ROLLCALL_MQTT_TOPIC_PREFIX": "site2"}, want: "site3"},
		{name: "flag empties the file's", file: "mqtt: {topic_prefix: site1}\n", args: []string{"--topic-prefix="}, want: ""},
		{name: "plus", file: "mqtt: {topic_prefix: \"site+\"}\n", message: `"site+" has a wildcard`},
		{name: "hash", file: "mqtt: {topic_prefix: \"site/#\"}\n", message: `"site/#" has a wildcard`},
		{name: "NUL from the environment", env: map[string]string{"ROLLCALL_MQTT_TOPIC_PREFIX": "si\x01te"}, message: "control character"},
		{name: "control character", file: "mqtt: {topic_prefix: \"site\\t1\"}\n", message: "control character"},
		{name: "dollar", args: []string{"--topic-prefix", "$SYS"}, message: `"$SYS" starts with '$'`},
		{name: "leading slash", args: []string{"--topic-prefix", "/site1"}, message: `"/site1" has an empty level`},
		{name: "trailing slash", file: "mqtt: {topic_prefix: site1/}\n", message: `"site1/" has an empty level`},
		{name: "empty level", file: "mqtt: {topic_prefix: farm//north}\n", message: `"farm//north" has an empty level`},
		{name: "too long", file: "mqtt: {topic_prefix: " + strings.Repeat("x", 65) + "}\n", message: "longer than 64 bytes"},
		{name: "not a string", file: "mqtt: {topic_prefix: [a, b]}\n", message: "string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			file := empty
			if tc.file != "" {
				file = write(strings.ReplaceAll(tc.name, " ", "_")+".yaml", tc.file)
			}
			cfg, err := load(t, append([]string{"--config", file}, tc.args...)...)
			if tc.message == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.MQTT.TopicPrefix != tc.want {
					t.Errorf("mqtt.topic_prefix %q, want %q", cfg.MQTT.TopicPrefix, tc.want)
				}
				if cfg.Client().MQTT.TopicPrefix != tc.want {
					t.Errorf("the commands' client has prefix %q, want %q", cfg.Client().MQTT.TopicPrefix, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			line := ""
			for _, l := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(l, "  mqtt.topic_prefix: ") {
					line = l
				}
			}
			if !strings.Contains(line, tc.message) {
				t.Errorf("no mqtt.topic_prefix line saying %q:\n%v", tc.message, err)
			}
		})
	}
}

// TestConfigUnderTopicPrefix: with a prefix, what it does not move (the
// report and reply topics, Home Assistant's) may not land among the
// topics it does, and an on_change is checked against the prefixed
// topics.
func TestConfigUnderTopicPrefix(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		file string
		key  string // named in the error; "" for a good file
	}{
		{name: "on_change to a prefixed set topic", file: "gpio:\n  output: [{name: lamp, pin: 23}]\n  input: [{name: b, pin: 22, on_change: site1/pi2/gpio/set/lamp}]\n"},
		{name: "on_change to another system", file: "gpio:\n  output: [{name: lamp, pin: 23}]\n  input: [{name: b, pin: 22, on_change: zigbee2mqtt/lamp/set}]\n"},
		{name: "on_change to a prefixed status", file: "gpio:\n  input: [{name: b, pin: 22, on_change: site1/pi2/status}]\n", key: "gpio.input[0].on_change"},
		{name: "on_change to its own prefixed set topic", file: "gpio:\n  output: [{name: lamp, pin: 23}]\n  input: [{name: b, pin: 22, on_change: site1/pi1/gpio/set/lamp}]\n", key: "gpio.input[0].on_change"},
		{name: "reply topic among the hosts'", file: "discovery: {reply_topic: site1/pi2/gpio/setup, reply_prefixes: [site1/]}\n", key: "discovery.reply_topic"},
		{name: "report topic among the hosts'", file: "discovery: {report_topic: site1/rollcall/reports}\n", key: "discovery.report_topic"},
		{name: "home assistant under this host", file: "homeassistant: {enabled: true, prefix: site1/pi1/ha}\n", key: "homeassistant.prefix"},
		{name: "home assistant among rollcall's", file: "homeassistant: {enabled: true, prefix: site1/rollcall}\n", key: "homeassistant.prefix"},
		{name: "home assistant beside the hosts", file: "homeassistant: {enabled: true, prefix: pi1}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			if err := os.WriteFile(f, []byte("host: pi1\nmqtt: {topic_prefix: site1}\n"+tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := load(t, "--config", f)
			switch {
			case tc.key == "" && err != nil:
				t.Fatal(err)
			case tc.key != "" && (err == nil || !strings.Contains(err.Error(), "\n  "+tc.key+":")):
				t.Errorf("want an error on %s, got: %v", tc.key, err)
			}
		})
	}
}
