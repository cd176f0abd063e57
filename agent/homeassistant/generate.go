package homeassistant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"strings"

	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/services"
)

// Info is what the device block says beyond the host's description.
type Info struct {
	// Version is rollcall's version, the device's and the origin's
	// software version.
	Version string
	// Model is the board as its device tree names it ("Raspberry Pi Zero
	// W Rev 1.1"), or "" when the agent cannot tell.
	Model string
	// TopicPrefix is the host's mqtt.topic_prefix: the availability
	// topics lie under it, as the state and command topics the
	// description names already do.
	TopicPrefix services.Prefix
}

// What the device and origin blocks say about rollcall.
const (
	Manufacturer = "rollcall"
	// DefaultModel stands for the board when the agent cannot read it.
	DefaultModel = "rollcall agent"
	OriginName   = "rollcall"
	SupportURL   = "https://github.com/rollcall/rollcall"
)

// DeviceConfig is the payload of one host's device discovery topic, with
// Home Assistant's documented abbreviations as its keys.
type DeviceConfig struct {
	Device     Device               `json:"dev"`
	Origin     Origin               `json:"o"`
	Components map[string]Component `json:"cmps"`
	// QoS is shared by every component: Home Assistant subscribes to
	// states and sends commands at QoS 1, so a set is not lost on a
	// flaky link.
	QoS int `json:"qos"`
}

// Device is the host as Home Assistant's device registry shows it.
type Device struct {
	Identifiers  []string `json:"ids"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"mf"`
	Model        string   `json:"mdl"`
	SWVersion    string   `json:"sw"`
}

// Origin names the program that published the config, for Home
// Assistant's log.
type Origin struct {
	Name       string `json:"name"`
	SWVersion  string `json:"sw"`
	SupportURL string `json:"url"`
}

// Component is one entity: one input or output of a service. Only the
// keys of its platform are set; a Component with Platform alone removes
// the entity (see Tombstone).
type Component struct {
	Platform      string `json:"p"`
	Name          string `json:"name,omitempty"`
	UniqueID      string `json:"uniq_id,omitempty"`
	StateTopic    string `json:"stat_t,omitempty"`
	ValueTemplate string `json:"val_tpl,omitempty"`
	// StateValueTemplate turns a light's duty into ON or OFF.
	StateValueTemplate string `json:"stat_val_tpl,omitempty"`
	CommandTopic       string `json:"cmd_t,omitempty"`
	PayloadOn          string `json:"pl_on,omitempty"`
	PayloadOff         string `json:"pl_off,omitempty"`
	// OnCommandType "brightness" makes a light send only its brightness
	// to turn on, the last one it had: a PWM output comes back at its
	// duty, not at 100 %.
	OnCommandType           string `json:"on_cmd_type,omitempty"`
	BrightnessCommandTopic  string `json:"bri_cmd_t,omitempty"`
	BrightnessStateTopic    string `json:"bri_stat_t,omitempty"`
	BrightnessValueTemplate string `json:"bri_val_tpl,omitempty"`
	BrightnessScale         int    `json:"bri_scl,omitempty"`

	DeviceClass       string   `json:"dev_cla,omitempty"`
	UnitOfMeasurement string   `json:"unit_of_meas,omitempty"`
	StateClass        string   `json:"stat_cla,omitempty"`
	Min               *float64 `json:"min,omitempty"`
	Max               *float64 `json:"max,omitempty"`
	Step              float64  `json:"step,omitempty"`

	Availability     []Availability `json:"avty,omitempty"`
	AvailabilityMode string         `json:"avty_mode,omitempty"`
}

// Availability is one topic an entity's availability depends on.
// Without a template, "online" and "offline" are the payloads.
type Availability struct {
	Topic         string `json:"t"`
	ValueTemplate string `json:"val_tpl,omitempty"`
}

// Templates Home Assistant renders on the payloads rollcall publishes.
const (
	// ReadingTemplate takes the value of a reading published as JSON
	// ({"value":18.5,"unit":"°C",...}) or as a plain payload ("1", "42").
	ReadingTemplate = "{{ value_json.value if value_json is mapping else value }}"
	// lightStateTemplate is ON while a PWM output's duty is above 0.
	lightStateTemplate = "{{ 'ON' if (value_json.value if value_json is mapping else value) | float(0) > 0 else 'OFF' }}"
	// healthTemplate reads a built-in service's health in the host's
	// summary (<host>/services): online while it says "ok".
	healthTemplate = "{{ 'online' if value_json.services | selectattr('function', 'eq', %s) | selectattr('health', 'eq', 'ok') | list else 'offline' }}"
)

// Generate builds the device discovery config of one host from its
// description: one component per input and output of every service,
// built-in or external. It never fails: an interface it cannot map
// (an unknown type, a unit Home Assistant has no class for) becomes a
// plain sensor.
func Generate(d services.HostDescription, info Info) DeviceConfig {
	model := info.Model
	if model == "" {
		model = DefaultModel
	}
	cfg := DeviceConfig{
		Device: Device{
			Identifiers:  []string{d.Machine},
			Name:         d.Host,
			Manufacturer: Manufacturer,
			Model:        model,
			SWVersion:    info.Version,
		},
		Origin:     Origin{Name: OriginName, SWVersion: info.Version, SupportURL: SupportURL},
		Components: map[string]Component{},
		QoS:        1,
	}
	uids := map[string]bool{}
	for _, s := range d.Services {
		avty := availability(info.TopicPrefix, d.Host, s)
		add := func(it services.Interface, output bool) {
			if it.Topic == "" || it.Name == "" {
				return
			}
			key := ObjectID(s.Function) + "_" + ObjectID(it.Name)
			uid := d.Machine + "_" + s.Function + "_" + it.Name
			if uids[uid] { // an output named like an input of its service
				key, uid = key+"_output", uid+"_output"
			}
			if _, taken := cfg.Components[key]; taken {
				key += "_" + shortHash(uid)
			}
			uids[uid] = true
			c := component(it, output)
			c.UniqueID = uid
			c.Availability, c.AvailabilityMode = avty, "all"
			cfg.Components[key] = c
		}
		for _, it := range s.Inputs {
			add(it, false)
		}
		for _, it := range s.Outputs {
			add(it, true)
		}
	}
	return cfg
}

// component maps one interface to its platform, by type and whether it
// can be set.
func component(it services.Interface, output bool) Component {
	c := Component{Name: strings.ReplaceAll(it.Name, "_", " "), StateTopic: it.Topic, ValueTemplate: ReadingTemplate}
	writable := output && it.Set != ""
	switch {
	case it.Type == "bool" && writable:
		// "1" and "0" are what the gpio service takes and publishes.
		c.Platform, c.CommandTopic, c.PayloadOn, c.PayloadOff = "switch", it.Set, "1", "0"
	case it.Type == "bool":
		c.Platform, c.PayloadOn, c.PayloadOff = "binary_sensor", "1", "0"
	case it.Type == "pwm" && writable:
		// A light: on/off and a brightness that is the duty in percent.
		// Turning it off sends OFF, which a set topic takes as 0.
		c.Platform, c.CommandTopic, c.ValueTemplate = "light", it.Set, ""
		c.StateValueTemplate = lightStateTemplate
		c.OnCommandType = "brightness"
		c.BrightnessCommandTopic, c.BrightnessStateTopic = it.Set, it.Topic
		c.BrightnessValueTemplate, c.BrightnessScale = ReadingTemplate, 100
	case it.Type == "number" && writable && finiteRange(it.Min, it.Max):
		c.Platform, c.CommandTopic = "number", it.Set
		c.UnitOfMeasurement, c.DeviceClass = Classify(it.Mode, it.Unit, NumberClasses)
		c.Min, c.Max, c.Step = it.Min, it.Max, step(*it.Min, *it.Max)
	case it.Type == "number" || it.Type == "pwm":
		// Read-only, or an output whose range is unknown: Home Assistant
		// would refuse values outside its own default of 1 to 100.
		c.Platform, c.StateClass = "sensor", "measurement"
		c.UnitOfMeasurement, c.DeviceClass = Classify(it.Mode, it.Unit, SensorClasses)
	default:
		// A type rollcall does not define: shown as text, since a unit or
		// a state class would make Home Assistant insist on a number.
		c.Platform = "sensor"
	}
	return c
}

// finiteRange reports whether lo and hi bound a range a number entity
// can show.
func finiteRange(lo, hi *float64) bool {
	return lo != nil && hi != nil && *hi > *lo && !math.IsInf(*lo, 0) && !math.IsInf(*hi, 0)
}

// step makes about a thousand steps of a number's range, at least
// Home Assistant's smallest step, 0.001: 0.001 V for 0–3.3 V, 0.1 for
// 0–100 %.
func step(lo, hi float64) float64 {
	// Divided first: hi-lo overflows for the widest ranges.
	return math.Max(0.001, math.Pow(10, math.Floor(math.Log10(hi/1000-lo/1000))))
}

// availability is where an interface's service says it is up: the host's
// status, and the service's own health. A built-in service's health is in
// the host's summary; a program outside the agent keeps its own status.
func availability(p services.Prefix, host string, s services.Description) []Availability {
	a := []Availability{{Topic: p.Topic(host, "status")}}
	if s.External {
		return append(a, Availability{Topic: p.Topic(host, s.Function, "status")})
	}
	return append(a, Availability{Topic: p.Topic(discovery.SummaryTopic(host)), ValueTemplate: fmt.Sprintf(healthTemplate, jinjaString(s.Function))})
}

// jinjaString quotes s as a Jinja string literal.
func jinjaString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Tombstone is a component that removes the entity published under its
// key before: its platform alone.
func Tombstone(platform string) Component { return Component{Platform: platform} }

// JSON is the payload as published: compact, with templates' < > &
// left as they are.
func (c DeviceConfig) JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("home assistant config of %s: %w", c.Device.Name, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// ObjectID makes s usable where Home Assistant wants an object id
// ([a-zA-Z0-9_-]: the discovery topic's levels, component keys): s itself
// when it is one, else s with every other character replaced by '_' and a
// hash of s appended, so that two names never meet.
func ObjectID(s string) string {
	ok := s != ""
	out := []byte(s)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			out[i], ok = '_', false
		}
	}
	if ok {
		return s
	}
	return string(out) + "_" + shortHash(s)
}

func shortHash(s string) string {
	h := fnv.New32a()
	h.Write([]byte(s))
	return fmt.Sprintf("%08x", h.Sum32())
}
