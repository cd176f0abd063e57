package gpio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rollcall/rollcall/services"
)

// Config is the GPIO service's pin configuration: the "gpio" block of the
// agent's configuration file and the payload of <host>/gpio/setup. Pins
// are grouped by kind, as in the seed.
type Config struct {
	// Driver is "periph" (real hardware) or "sim" (in-memory board); ""
	// lets the agent choose. It cannot change while the agent runs.
	Driver string      `mapstructure:"driver" json:"driver,omitempty" yaml:"driver,omitempty"`
	Output []OutputPin `mapstructure:"output" json:"output" yaml:"output"`
	PWM    []PWMPin    `mapstructure:"pwm" json:"pwm" yaml:"pwm"`
	Input  []InputPin  `mapstructure:"input" json:"input" yaml:"input"`
	// FailsafeAfter drives every output to its failsafe level once the
	// broker has been unreachable this long; 0 never does.
	FailsafeAfter Duration `mapstructure:"failsafe_after" json:"failsafe_after,omitempty" yaml:"failsafe_after,omitempty"`
	// Wiring connects output pins to input pins of the sim driver, so that
	// driving the output changes the input. The periph driver ignores it.
	Wiring []Wire `mapstructure:"wiring" json:"wiring,omitempty" yaml:"wiring,omitempty"`
}

// OutputPin is a digital output.
type OutputPin struct {
	Name string `mapstructure:"name" json:"name" yaml:"name"`
	Pin  int    `mapstructure:"pin" json:"pin" yaml:"pin"`
	// Init is the logical level (0 or 1) set when the pin is configured.
	Init int `mapstructure:"init" json:"init" yaml:"init"`
	// Pull is "up", "down" or "none". The character device cannot bias a
	// line requested as an output, so on periph it is recorded only.
	Pull string `mapstructure:"pull" json:"pull,omitempty" yaml:"pull,omitempty"`
	// ActiveLow makes logical 1 drive the line low.
	ActiveLow bool `mapstructure:"active_low" json:"active_low,omitempty" yaml:"active_low,omitempty"`
	// Failsafe is the logical level (0 or 1) taken on shutdown, on estop
	// and after FailsafeAfter without a broker.
	Failsafe int `mapstructure:"failsafe" json:"failsafe" yaml:"failsafe"`
}

// PWMPin is a pulse-width-modulated output. Its value is a duty cycle in
// percent (0–100).
type PWMPin struct {
	Name string `mapstructure:"name" json:"name" yaml:"name"`
	Pin  int    `mapstructure:"pin" json:"pin" yaml:"pin"`
	// Init is the duty in percent set when the pin is configured.
	Init float64 `mapstructure:"init" json:"init" yaml:"init"`
	// Period is the PWM period in microseconds (1000 = 1 kHz); 0 means
	// DefaultPeriod. Software PWM (pins without hardware PWM) needs at
	// least MinSoftPeriod.
	Period int `mapstructure:"period" json:"period,omitempty" yaml:"period,omitempty"`
	// Pol is "normal" (duty is the high time) or "inverted".
	Pol string `mapstructure:"pol" json:"pol,omitempty" yaml:"pol,omitempty"`
	// Failsafe is the duty taken on shutdown, estop and broker loss.
	Failsafe float64 `mapstructure:"failsafe" json:"failsafe,omitempty" yaml:"failsafe,omitempty"`
}

// InputPin is a digital input reported on change.
type InputPin struct {
	Name string `mapstructure:"name" json:"name" yaml:"name"`
	Pin  int    `mapstructure:"pin" json:"pin" yaml:"pin"`
	Pull string `mapstructure:"pull" json:"pull,omitempty" yaml:"pull,omitempty"`
	// Edge is which changes are published: "rising" (to 1), "falling"
	// (to 0) or "both" (the default).
	Edge string `mapstructure:"edge" json:"edge,omitempty" yaml:"edge,omitempty"`
	// Debounce is how long the level must stay put before it counts.
	Debounce Duration `mapstructure:"debounce" json:"debounce,omitempty" yaml:"debounce,omitempty"`
	// OnChange is the topic the value is published to, retained; default
	// <host>/gpio/input/<name>. Any topic is allowed: another host's
	// <host>/gpio/set/<name> links this input to that output.
	OnChange string `mapstructure:"on_change" json:"on_change,omitempty" yaml:"on_change,omitempty"`
	// Scan, when set, also publishes the value at this interval.
	Scan      Duration `mapstructure:"scan" json:"scan,omitempty" yaml:"scan,omitempty"`
	ActiveLow bool     `mapstructure:"active_low" json:"active_low,omitempty" yaml:"active_low,omitempty"`
}

// Wire connects a sim output pin to a sim input pin (BCM numbers).
type Wire struct {
	From int `mapstructure:"from" json:"from" yaml:"from"`
	To   int `mapstructure:"to" json:"to" yaml:"to"`
}

// Limits of the pin model.
const (
	DefaultPeriod    = 1000      // µs, 1 kHz
	MinSoftPeriod    = 1000      // µs: software PWM is not usable faster
	MaxPeriod        = 1_000_000 // µs, 1 Hz
	MaxDebounce      = 10 * time.Second
	MinScan          = 10 * time.Millisecond
	MaxFailsafeAfter = 24 * time.Hour
)

// hardwarePWM lists the header pins a Pi routes to its PWM block.
var hardwarePWM = map[int]bool{12: true, 13: true, 18: true, 19: true}

// HardwarePWM reports whether pin can carry hardware PWM (BCM 12, 13, 18,
// 19, with the pwm or pwm-2chan overlay).
func HardwarePWM(pin int) bool { return hardwarePWM[pin] }

// Duration is a time.Duration that reads "20ms" or a bare number of
// milliseconds from JSON, YAML and text, and writes "20ms".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a string ("20ms") or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(b)
	}
	return d.UnmarshalText([]byte(s))
}

func parseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > float64(math.MaxInt64/int64(time.Millisecond)) {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return Duration(f * float64(time.Millisecond)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want like \"20ms\" or a number of milliseconds", s)
	}
	return Duration(v), nil
}

// DecodeHook lets mapstructure (viper) decode a Duration from a string or
// a number of milliseconds. Pass it to viper.Unmarshal with
// viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(gpio.DecodeHook, ...)).
func DecodeHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[Duration]() {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		return parseDuration(v)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return parseDuration(fmt.Sprint(v))
	}
	return data, nil
}

// Setup is one parsed <host>/gpio/setup request.
type Setup struct {
	ID     json.RawMessage
	Merge  bool
	Config Config
	// present holds the top-level keys the payload carried, for merging.
	present map[string]bool
}

// ParseSetup parses a setup payload: a JSON object, or YAML when it does
// not start with '{'. Unknown keys, wrong types and missing names or pins
// are reported, each with its field; values are checked by Validate.
func ParseSetup(payload []byte) (Setup, services.Errors) {
	var s Setup
	if len(payload) > services.MaxPayload {
		return s, services.Errors{{Code: services.CodeTooLarge,
			Message: fmt.Sprintf("payload of %d bytes is over the %d byte limit", len(payload), services.MaxPayload)}}
	}
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) > 0 && trimmed[0] != '{' {
		j, err := yamlToJSON(trimmed)
		if err != nil {
			return s, services.Errors{{Code: services.CodeMalformed, Message: err.Error()}}
		}
		trimmed = j
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &top); err != nil || top == nil {
		msg := "payload is not a JSON object"
		if err != nil {
			msg = "payload is not a JSON object: " + strings.TrimPrefix(err.Error(), "json: ")
		}
		return s, services.Errors{{Code: services.CodeMalformed, Message: msg}}
	}
	var errs services.Errors
	bad := func(field, format string, a ...any) {
		errs = append(errs, services.Error{Code: services.CodeMalformed, Field: field, Message: fmt.Sprintf(format, a...)})
	}
	s.present = make(map[string]bool, len(top))
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		raw := top[k]
		s.present[k] = true
		switch k {
		case "id":
			if string(raw) != "null" {
				s.ID = raw
			}
		case "merge":
			if err := json.Unmarshal(raw, &s.Merge); err != nil {
				bad(k, "must be true or false")
			}
		case "driver":
			if err := json.Unmarshal(raw, &s.Config.Driver); err != nil {
				bad(k, "must be a string")
			}
		case "failsafe_after":
			if err := json.Unmarshal(raw, &s.Config.FailsafeAfter); err != nil {
				bad(k, "%s", jsonMessage(err))
			}
		case "output":
			s.Config.Output = decodeList[OutputPin](k, raw, &errs)
		case "pwm":
			s.Config.PWM = decodeList[PWMPin](k, raw, &errs)
		case "input":
			s.Config.Input = decodeList[InputPin](k, raw, &errs)
		case "wiring":
			s.Config.Wiring = decodeList[Wire](k, raw, &errs)
		default:
			bad(k, "unknown mode or field %q (want output, pwm, input, failsafe_after, wiring, driver, merge, id)", k)
		}
	}
	return s, errs
}

// decodeList decodes a JSON array of T strictly, element by element, so
// each problem carries its own field path.
func decodeList[T any](key string, raw json.RawMessage, errs *services.Errors) []T {
	if string(raw) == "null" {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		*errs = append(*errs, services.Error{Code: services.CodeMalformed, Field: key, Message: "must be a list"})
		return nil
	}
	out := make([]T, 0, len(items))
	for i, it := range items {
		field := fmt.Sprintf("%s[%d]", key, i)
		var v T
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(it, &obj); err != nil || obj == nil {
			*errs = append(*errs, services.Error{Code: services.CodeMalformed, Field: field, Message: "must be an object"})
			continue
		}
		ok := true
		known := jsonFields(reflect.TypeFor[T]())
		members := make([]string, 0, len(obj))
		for k := range obj {
			members = append(members, k)
		}
		slices.Sort(members)
		for _, k := range members {
			// encoding/json matches names case-insensitively; the wire
			// format does not.
			if !known[k] {
				*errs = append(*errs, services.Error{Code: services.CodeMalformed, Field: field + "." + k, Message: fmt.Sprintf("unknown field %q", k)})
				ok = false
			}
		}
		if !ok {
			continue
		}
		for _, req := range required[key] {
			if _, has := obj[req]; !has {
				*errs = append(*errs, services.Error{Code: services.CodeMalformed, Field: field + "." + req, Message: req + " is required"})
				ok = false
			}
		}
		dec := json.NewDecoder(bytes.NewReader(it))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			f := field
			if name := errorField(err); name != "" {
				f += "." + name
			}
			*errs = append(*errs, services.Error{Code: services.CodeMalformed, Field: f, Message: jsonMessage(err)})
			ok = false
		}
		if ok {
			out = append(out, v)
		}
	}
	return out
}

// jsonFields returns the JSON member names of struct type t.
func jsonFields(t reflect.Type) map[string]bool {
	m := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		m[name] = true
	}
	return m
}

var required = map[string][]string{
	"output": {"name", "pin"},
	"pwm":    {"name", "pin"},
	"input":  {"name", "pin"},
	"wiring": {"from", "to"},
}

// errorField names the member a decoding error is about, if it can tell.
func errorField(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	msg := err.Error()
	if i := strings.Index(msg, "unknown field \""); i >= 0 {
		rest := msg[i+len("unknown field \""):]
		if j := strings.IndexByte(rest, '"'); j >= 0 {
			return rest[:j]
		}
	}
	return ""
}

func jsonMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("must be %s, not %s", kindName(te.Type), te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		if t == reflect.TypeFor[Duration]() {
			return "a duration"
		}
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// yamlToJSON converts a YAML document to JSON so both go through the same
// strict decoder.
func yamlToJSON(b []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("payload is neither a JSON object nor YAML: %w", err)
	}
	v, err := jsonable(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func jsonable(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			j, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			x[k] = j
		}
		return x, nil
	case map[any]any:
		return nil, errors.New("yaml: mapping keys must be strings")
	case []any:
		for i, e := range x {
			j, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			x[i] = j
		}
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errors.New("yaml: numbers must be finite")
		}
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case []byte:
		return string(x), nil
	}
	return v, nil
}

// merge returns cur with s's pins merged by name: a pin of the same name
// is replaced (even by one of another kind), new names are added, and the
// scalar fields s carries override cur's.
func (s Setup) merge(cur Config) Config {
	out := cur.clone()
	if s.present["driver"] {
		out.Driver = s.Config.Driver
	}
	if s.present["failsafe_after"] {
		out.FailsafeAfter = s.Config.FailsafeAfter
	}
	if s.present["wiring"] {
		out.Wiring = slices.Clone(s.Config.Wiring)
	}
	drop := func(name string) {
		out.Output = slices.DeleteFunc(out.Output, func(p OutputPin) bool { return p.Name == name })
		out.PWM = slices.DeleteFunc(out.PWM, func(p PWMPin) bool { return p.Name == name })
		out.Input = slices.DeleteFunc(out.Input, func(p InputPin) bool { return p.Name == name })
	}
	for _, p := range s.Config.Output {
		if i := slices.IndexFunc(out.Output, func(q OutputPin) bool { return q.Name == p.Name }); i >= 0 {
			out.Output[i] = p
			continue
		}
		drop(p.Name)
		out.Output = append(out.Output, p)
	}
	for _, p := range s.Config.PWM {
		if i := slices.IndexFunc(out.PWM, func(q PWMPin) bool { return q.Name == p.Name }); i >= 0 {
			out.PWM[i] = p
			continue
		}
		drop(p.Name)
		out.PWM = append(out.PWM, p)
	}
	for _, p := range s.Config.Input {
		if i := slices.IndexFunc(out.Input, func(q InputPin) bool { return q.Name == p.Name }); i >= 0 {
			out.Input[i] = p
			continue
		}
		drop(p.Name)
		out.Input = append(out.Input, p)
	}
	return out
}

func (c Config) clone() Config {
	c.Output = slices.Clone(c.Output)
	c.PWM = slices.Clone(c.PWM)
	c.Input = slices.Clone(c.Input)
	c.Wiring = slices.Clone(c.Wiring)
	return c
}

// pins returns every BCM pin c uses.
func (c Config) pins() []int {
	var p []int
	for _, o := range c.Output {
		p = append(p, o.Pin)
	}
	for _, o := range c.PWM {
		p = append(p, o.Pin)
	}
	for _, o := range c.Input {
		p = append(p, o.Pin)
	}
	return p
}

var (
	pulls = []string{"", "up", "down", "none"}
	edges = []string{"", "rising", "falling", "both"}
	pols  = []string{"", "normal", "inverted"}
)

// Validate checks c against the header, the pins others hold (reserved
// may be nil) and every enum and range, and returns every problem, each
// with its field, or nil.
func (c Config) Validate(reserved func(pin int) (holder string, held bool)) services.Errors {
	var errs services.Errors
	add := func(code, field, format string, a ...any) {
		errs = append(errs, services.Error{Code: code, Field: field, Message: fmt.Sprintf(format, a...)})
	}
	if c.Driver != "" && c.Driver != DriverPeriph && c.Driver != DriverSim {
		add(services.CodeInvalid, "driver", "unknown driver %q (want periph or sim)", c.Driver)
	}
	if c.FailsafeAfter < 0 || c.FailsafeAfter.D() > MaxFailsafeAfter {
		add(services.CodeInvalid, "failsafe_after", "must be between 0 and %s", MaxFailsafeAfter)
	}
	names := map[string]string{}
	pins := map[int]string{}
	pin := func(field, name string, p int) {
		if name == "" {
			add(services.CodeInvalid, field+".name", "name is required")
		} else if !services.ValidTopicName(name) {
			add(services.CodeInvalid, field+".name", "name %q cannot stand as a topic level (1–64 bytes, no / + # or leading $)", name)
		} else if prev, dup := names[name]; dup {
			add(services.CodeConflict, field+".name", "duplicate name %q (also %s)", name, prev)
		} else {
			names[name] = field
		}
		switch {
		case p < 0 || p >= services.HeaderPins:
			add(services.CodeInvalid, field+".pin", "GPIO %d is not on the header (BCM 0–27)", p)
			return
		}
		if prev, dup := pins[p]; dup {
			add(services.CodeConflict, field+".pin", "duplicate pin: GPIO %d is also %s", p, prev)
			return
		}
		pins[p] = field
		if reserved != nil {
			if h, held := reserved(p); held {
				add(services.CodeConflict, field+".pin", "GPIO %d is held by %s", p, h)
			}
		}
	}
	enum := func(field, v string, allowed []string) {
		if !slices.Contains(allowed, v) {
			add(services.CodeInvalid, field, "%q is not one of %s", v, strings.Join(allowed[1:], ", "))
		}
	}
	for i, o := range c.Output {
		f := fmt.Sprintf("output[%d]", i)
		pin(f, o.Name, o.Pin)
		if o.Init != 0 && o.Init != 1 {
			add(services.CodeInvalid, f+".init", "init must be 0 or 1, not %d", o.Init)
		}
		if o.Failsafe != 0 && o.Failsafe != 1 {
			add(services.CodeInvalid, f+".failsafe", "failsafe must be 0 or 1, not %d", o.Failsafe)
		}
		enum(f+".pull", o.Pull, pulls)
	}
	for i, o := range c.PWM {
		f := fmt.Sprintf("pwm[%d]", i)
		pin(f, o.Name, o.Pin)
		if !validDuty(o.Init) {
			add(services.CodeInvalid, f+".init", "duty must be 0–100 %%, not %v", o.Init)
		}
		if !validDuty(o.Failsafe) {
			add(services.CodeInvalid, f+".failsafe", "duty must be 0–100 %%, not %v", o.Failsafe)
		}
		if msg := checkPeriod(o.Pin, o.Period); msg != "" {
			add(services.CodeInvalid, f+".period", "%s", msg)
		}
		enum(f+".pol", o.Pol, pols)
	}
	for i, o := range c.Input {
		f := fmt.Sprintf("input[%d]", i)
		pin(f, o.Name, o.Pin)
		enum(f+".pull", o.Pull, pulls)
		enum(f+".edge", o.Edge, edges)
		if o.Debounce < 0 || o.Debounce.D() > MaxDebounce {
			add(services.CodeInvalid, f+".debounce", "debounce must be between 0 and %s", MaxDebounce)
		}
		if o.Scan != 0 && (o.Scan.D() < MinScan || o.Scan.D() > MaxFailsafeAfter) {
			add(services.CodeInvalid, f+".scan", "scan must be 0 (off) or between %s and %s", MinScan, MaxFailsafeAfter)
		}
		if o.OnChange != "" && !services.ValidTopic(o.OnChange) {
			add(services.CodeInvalid, f+".on_change", "%q is not a topic one can publish to (no + # NUL or leading $, at most 256 bytes)", o.OnChange)
		}
	}
	for i, w := range c.Wiring {
		f := fmt.Sprintf("wiring[%d]", i)
		if w.From < 0 || w.From >= services.HeaderPins {
			add(services.CodeInvalid, f+".from", "GPIO %d is not on the header (BCM 0–27)", w.From)
		}
		if w.To < 0 || w.To >= services.HeaderPins {
			add(services.CodeInvalid, f+".to", "GPIO %d is not on the header (BCM 0–27)", w.To)
		}
	}
	return errs
}

func validDuty(d float64) bool { return d >= 0 && d <= 100 }

// checkPeriod returns why period (µs) cannot drive pin, or "".
func checkPeriod(pin, period int) string {
	if period == 0 {
		return ""
	}
	if period < 1 || period > MaxPeriod {
		return fmt.Sprintf("period must be 1–%d µs, not %d", MaxPeriod, period)
	}
	if !HardwarePWM(pin) && period < MinSoftPeriod {
		return fmt.Sprintf("GPIO %d has no hardware PWM; software PWM needs a period of at least %d µs", pin, MinSoftPeriod)
	}
	return ""
}
