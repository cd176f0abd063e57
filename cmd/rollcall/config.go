package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/services"
)

// configFiles are tried in order when --config is not given.
var configFiles = []string{"rollcall.yaml", "/etc/rollcall/rollcall.yaml"}

// flagKeys maps each configuration flag to its key.
var flagKeys = map[string]string{
	"host":            "host",
	"state-dir":       "state_dir",
	"sim":             "sim",
	"log-level":       "log_level",
	"broker":          "mqtt.broker",
	"embedded-broker": "mqtt.embedded_broker",
	"keepalive":       "mqtt.keepalive",
	"port":            "discovery.port",
	"interface":       "discovery.interfaces",
	"target":          "discovery.targets",
	"extaddr":         "discovery.extaddr",
}

func addConfigFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.String("config", "", "configuration file (default ./rollcall.yaml, else /etc/rollcall/rollcall.yaml)")
	f.String("host", "", "this host's name (default: the machine's hostname)")
	f.String("state-dir", "", "state directory (default /var/lib/rollcall)")
	f.Bool("sim", false, "simulated hardware")
	f.String("log-level", "", "debug, info, warn or error")
	f.String("broker", "", "MQTT broker URL, e.g. tcp://10.0.0.2:1883 (default: the embedded broker)")
	f.String("embedded-broker", "", "start the embedded broker on this address, e.g. :1883")
	f.Duration("keepalive", 0, "MQTT keepalive; the broker declares a silent agent offline after 1.5x this")
	f.Int("port", 0, "discovery UDP port (default 4747)")
	f.StringSlice("interface", nil, "interfaces a sweep broadcasts on (default: every broadcast-capable one)")
	f.StringSlice("target", nil, "extra addresses a sweep sends its probe to")
	f.String("extaddr", "", "external address to report")
}

// loadConfig is the one function that touches viper: file, ROLLCALL_*
// environment and flags, unmarshalled into agent.Config, defaulted and
// validated with every problem named by its key.
func loadConfig(cmd *cobra.Command) (agent.Config, error) {
	v := viper.New()
	v.SetEnvPrefix("ROLLCALL")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	for _, key := range leafKeys(reflect.TypeOf(agent.Config{}), "") {
		_ = v.BindEnv(key)
	}
	for name, key := range flagKeys {
		if fl := cmd.Flags().Lookup(name); fl != nil {
			if err := v.BindPFlag(key, fl); err != nil {
				return agent.Config{}, err
			}
		}
	}

	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		path = os.Getenv("ROLLCALL_CONFIG")
	}
	if path == "" {
		for _, p := range configFiles {
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
	}
	if path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return agent.Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}

	var cfg agent.Config
	err := v.Unmarshal(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			gpio.DecodeHook,
			mapstructure.TextUnmarshallerHookFunc(),
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		)
	})
	if err != nil {
		return agent.Config{}, fmt.Errorf("config %s: %w", orFlags(path), err)
	}
	cfg.Defaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return agent.Config{}, configError{path: orFlags(path), errs: errs}
	}
	return cfg, nil
}

func orFlags(path string) string {
	if path == "" {
		return "(flags and environment)"
	}
	return path
}

// configError lists every problem, one a line, each with its key path.
type configError struct {
	path string
	errs services.Errors
}

func (e configError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config %s: %d problem(s):", e.path, len(e.errs))
	for _, x := range e.errs {
		fmt.Fprintf(&b, "\n  %s: %s", x.Field, x.Message)
	}
	return b.String()
}

func (e configError) Unwrap() error { return e.errs }

// leafKeys lists the dotted keys of every scalar field of t, so that
// ROLLCALL_MQTT_BROKER and friends reach viper even for keys no file sets.
func leafKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct && ft.String() != "time.Time":
			keys = append(keys, leafKeys(ft, key+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			// lists of pins belong in the file
		default:
			keys = append(keys, key)
		}
	}
	return keys
}

// exitError carries a process exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var e exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}
