package main

import (
	"encoding"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/services"
)

// configFiles are tried in order when --config is not given.
var configFiles = []string{"rollcall.yaml", "/etc/rollcall/rollcall.yaml"}

// maxConfig bounds a configuration file, after YAML aliases are expanded.
const maxConfig = 1 << 20

// flagKeys maps each configuration flag to its key.
var flagKeys = map[string]string{
	"host":            "host",
	"state-dir":       "state_dir",
	"sim":             "sim",
	"log-level":       "log_level",
	"broker":          "mqtt.broker",
	"embedded-broker": "mqtt.embedded_broker",
	"keepalive":       "mqtt.keepalive",
	"connect-timeout": "mqtt.connect_timeout",
	"username":        "mqtt.username",
	"password-file":   "mqtt.password",
	"tls-ca":          "mqtt.tls.ca",
	"tls-cert":        "mqtt.tls.cert",
	"tls-key":         "mqtt.tls.key",
	"topic-prefix":    "mqtt.topic_prefix",
	"port":            "discovery.port",
	"interface":       "discovery.interfaces",
	"target":          "discovery.targets",
	"extaddr":         "discovery.extaddr",

	"listen":                  "dashboard.listen",
	"allow-control":           "dashboard.allow_control",
	"dashboard-password-file": "dashboard.password_file",
}

// Flag groups: which configuration flags a command takes. A flag a
// command would ignore is not offered.
const (
	flagsAgent  = 1 << iota // the host: name, state, hardware, monitor
	flagsBroker             // reaching the broker
	flagsSweep              // broadcasting probes
)

// addConfigFlags adds the --config and --log-level flags every command has
// to root, and the groups of configuration flags to cmd.
func addConfigFlags(cmd *cobra.Command, groups int) {
	if groups == 0 {
		f := cmd.PersistentFlags()
		f.String("config", "", "configuration file (default ./rollcall.yaml, else /etc/rollcall/rollcall.yaml; also ROLLCALL_CONFIG)")
		f.String("log-level", "", "debug, info, warn or error")
		return
	}
	f := cmd.Flags()
	if groups&(flagsAgent|flagsSweep) != 0 {
		f.String("host", "", "this host's name (default: the machine's hostname)")
		f.Int("port", 0, "discovery UDP port (default 4747)")
	}
	if groups&flagsAgent != 0 {
		f.String("state-dir", "", "state directory (default /var/lib/rollcall)")
		f.Bool("sim", false, "simulated hardware for every service, whatever the configuration names")
		f.String("embedded-broker", "", "start the embedded broker on this address, e.g. 127.0.0.1:1883")
		f.Duration("keepalive", 0, "MQTT keepalive; the broker declares a silent agent offline after 1.5x this")
		f.String("extaddr", "", "external address to report")
	}
	if groups&flagsBroker != 0 {
		f.String("broker", "", "MQTT broker URL, e.g. tcp://10.0.0.2:1883 (default: the embedded broker); overrides the file's embedded broker")
		f.Duration("connect-timeout", 0, "how long to wait for the broker (default 3s)")
		f.String("username", "", "MQTT username")
		f.String("password-file", "", "file holding the MQTT password (or ROLLCALL_MQTT_PASSWORD; never on the command line)")
		f.String("tls-ca", "", "CA certificate (PEM) the broker's certificate must chain to")
		f.String("tls-cert", "", "client certificate (PEM) for brokers that ask for one")
		f.String("tls-key", "", "the client certificate's key (PEM)")
		f.String("topic-prefix", "", "topic levels all of rollcall's topics go under (site1: site1/<host>/status) on a broker shared with other systems")
	}
	if groups&flagsSweep != 0 {
		f.StringSlice("interface", nil, "interfaces to broadcast on (default: every broadcast-capable one)")
		f.StringSlice("target", nil, "extra addresses to send the probe to")
	}
}

// loadConfig is the one function that touches viper. It starts from the
// defaults, decodes the file over them as strictly as a setup payload
// (exact key names, no coercion, every problem reported), then applies the
// ROLLCALL_* environment and the flags, which win, and validates the
// result, naming every problem by its key.
func loadConfig(cmd *cobra.Command) (agent.Config, error) {
	cfg := agent.DefaultConfig()
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
	var errs services.Errors
	var exposed bool // the file holds a secret every user of the machine can read
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		errs = append(errs, decodeFile(b, &cfg)...)
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o004 != 0 {
			exposed = holdsSecret(cfg)
		}
	}

	v := viper.New()
	v.SetEnvPrefix("ROLLCALL")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	keys := leafKeys(reflect.TypeFor[agent.Config](), "")
	for _, key := range keys {
		_ = v.BindEnv(key)
	}
	flagOf := map[string]string{}
	for name, key := range flagKeys {
		if fl := cmd.Flags().Lookup(name); fl != nil {
			if err := v.BindPFlag(key, fl); err != nil {
				return cfg, err
			}
			flagOf[key] = name
		}
	}
	overridden := map[string]bool{}
	for _, key := range keys {
		if !v.IsSet(key) {
			continue
		}
		source := "ROLLCALL_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		if name, ok := flagOf[key]; ok && cmd.Flags().Changed(name) {
			source = "--" + name
		}
		overridden[key] = true
		val := v.Get(key)
		if source == "--password-file" {
			b, err := os.ReadFile(fmt.Sprint(val))
			if err != nil {
				errs = append(errs, services.Errorf(services.CodeInvalid, key, "%s: %v", source, err))
				continue
			}
			val = strings.TrimRight(string(b), "\r\n")
		}
		if err := setKey(&cfg, key, val); err != nil {
			errs = append(errs, services.Errorf(services.CodeInvalid, key, "%s: %v", source, err))
		}
	}
	// A broker named on the command line or in the environment is the one
	// to use: the file's embedded broker would only get in its way (and
	// fail on a Pi already running mosquitto on :1883).
	if overridden["mqtt.broker"] && !overridden["mqtt.embedded_broker"] {
		cfg.MQTT.EmbeddedBroker = ""
	}
	errs = append(errs, cfg.Validate()...)
	if len(errs) > 0 {
		return cfg, configError{path: orFlags(path), errs: errs}
	}
	if exposed {
		newLogger("warn").Warn("the configuration file holds a password or key and every user of this machine can read it: chmod 0640 it (root:rollcall)", "file", path)
	}
	return cfg, nil
}

// holdsSecret reports whether cfg has a password or key in it.
func holdsSecret(cfg agent.Config) bool {
	return cfg.MQTT.Password != "" || cfg.Discovery.Key != "" || len(cfg.Discovery.Keys) > 0 || len(cfg.MQTT.EmbeddedUsers) > 0
}

// decodeFile decodes a configuration file over cfg: the keys named after a
// service into that service's block, the rest into the agent's keys.
func decodeFile(b []byte, cfg *agent.Config) services.Errors {
	tree, err := services.Parse(b, maxConfig)
	if err != nil {
		return services.Errors{services.Errorf(services.CodeMalformed, "", "%v", err)}
	}
	if tree == nil {
		return nil // an empty file
	}
	m, ok := tree.(map[string]any)
	if !ok {
		return services.Errors{services.Errorf(services.CodeMalformed, "", "the file must hold keys and values, not a list or a value")}
	}
	var errs services.Errors
	rest := make(map[string]any, len(m))
	for k, val := range m {
		if _, ok := services.LookupKind(k); ok {
			errs = append(errs, services.DecodeTree(val, cfg.Blocks[k], k)...)
			continue
		}
		rest[k] = val
	}
	for _, e := range services.DecodeTree(rest, cfg, "") {
		if strings.HasPrefix(e.Message, "unknown field") && !strings.Contains(e.Field, ".") {
			e.Message += "; services: " + strings.Join(kindNames(), ", ")
		}
		errs = append(errs, e)
	}
	return errs
}

func kindNames() []string {
	var names []string
	for _, k := range services.Kinds() {
		names = append(names, k.Name)
	}
	return names
}

// setKey sets the field of cfg at a dotted key from a flag's or an
// environment variable's value, as strictly as the file: "4.7" is not a
// port, "yes" is not a bool.
func setKey(cfg *agent.Config, key string, raw any) error {
	f := reflect.ValueOf(cfg).Elem()
	for _, name := range strings.Split(key, ".") {
		idx, ok := fieldByTag(f.Type(), name)
		if !ok {
			return fmt.Errorf("no key %q", key)
		}
		f = f.Field(idx)
	}
	s := fmt.Sprint(raw)
	switch f.Type() {
	case reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 30s", s)
		}
		f.SetInt(int64(d))
		return nil
	}
	if tu, ok := f.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return tu.UnmarshalText([]byte(s))
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || f.OverflowInt(n) {
			return fmt.Errorf("%q is not an integer in range", s)
		}
		f.SetInt(n)
	case reflect.Slice:
		var items []string
		switch x := raw.(type) {
		case []string:
			items = x
		default:
			for _, it := range strings.Split(s, ",") {
				if it = strings.TrimSpace(it); it != "" {
					items = append(items, it)
				}
			}
		}
		f.Set(reflect.ValueOf(items))
	case reflect.Map:
		m := map[string]string{}
		for _, kv := range strings.Split(s, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || k == "" {
				return fmt.Errorf("%q is not a list of key=value", s)
			}
			m[k] = val
		}
		f.Set(reflect.ValueOf(m))
	default:
		return fmt.Errorf("cannot be set from the environment or a flag")
	}
	return nil
}

func fieldByTag(t reflect.Type, name string) (int, bool) {
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); tag == name {
			return i, true
		}
	}
	return 0, false
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
		field := x.Field
		if field == "" {
			field = "(file)"
		}
		fmt.Fprintf(&b, "\n  %s: %s", field, x.Message)
	}
	return b.String()
}

func (e configError) Unwrap() error { return e.errs }

// leafKeys lists the dotted keys of every value of t that a flag or an
// environment variable can set (ROLLCALL_MQTT_BROKER is mqtt.broker):
// scalars, lists of words and maps of words; nested blocks are walked.
func leafKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		ft := f.Type
		switch {
		case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]():
			keys = append(keys, leafKeys(ft, key+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			// lists of pins belong in the file
		default:
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return keys
}
