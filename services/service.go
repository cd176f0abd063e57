package services

import (
	"context"
	"strings"
	"unicode"
)

// A Service is one capability of a host: it describes itself and answers
// requests.
type Service interface {
	// Name is the service's function name, the second level of its topics.
	Name() string
	// Describe returns the service's current description. It must be safe
	// to call from any goroutine while Run is running, and must not wait
	// for hardware: the host answers sweeps with it.
	Describe() Description
	// Run serves the service's topics until ctx ends. An error ends only
	// this service: the agent logs it and marks the service unhealthy.
	Run(ctx context.Context, bus Bus) error
}

// Serving is implemented by services that can say when they have
// subscribed to all their topics: the agent waits for it before it tells
// the cluster the host is online, so that no request sent on seeing
// "online" is lost.
type Serving interface {
	Serving() <-chan struct{}
}

// A Connector is told when the host's MQTT session comes and goes, to act
// on losing the broker (the failsafe of outputs) and to republish retained
// values after a reconnect.
type Connector interface {
	Connected(up bool)
}

// A Publisher publishes one MQTT message.
type Publisher interface {
	Publish(topic string, qos byte, retained bool, payload []byte) error
}

// A Message is one MQTT message received.
type Message struct {
	Topic   string
	Payload []byte
	// Retained is set when the broker delivered a stored retained
	// message because of a new subscription, not a live publish.
	Retained bool
}

// A Handler receives one MQTT message. Handlers of one subscription are
// called one at a time, in arrival order, and may publish.
type Handler func(Message)

// A Bus is a service's view of the host's MQTT session.
type Bus interface {
	Publisher
	// Subscribe registers h for filter (at QoS 0: the session is clean,
	// see agent/session). The session renews every subscription after a
	// reconnect.
	Subscribe(filter string, h Handler) error
	// Changed tells the host that the service's description changed, so
	// the host's description version goes up and is republished.
	Changed()
}

// Description is what a service says about itself, in a sweep reply and in
// the host's retained description.
type Description struct {
	Function string      `json:"function"`
	Inputs   []Interface `json:"inputs"`
	Outputs  []Interface `json:"outputs"`
	Control  string      `json:"control"`
	Setup    string      `json:"setup"`
	Get      string      `json:"get"`
	Result   string      `json:"result,omitempty"`
	// Health is "ok", or "error" with Error saying why.
	Health string `json:"health,omitempty"`
	Error  string `json:"error,omitempty"`
	// External marks a service that is a program of its own, not part of
	// the agent: it keeps its description retained on
	// <host>/<service>/description and answers sweeps itself.
	External bool `json:"external,omitempty"`
	// State is the service's own detail (its configuration, halted flag,
	// payload schemas), documented by each service. It is marshalled only
	// when the description is published, never for a sweep reply.
	State any `json:"state,omitempty"`
}

// Interface is one input or output of a service.
type Interface struct {
	Name  string `json:"name"`
	Topic string `json:"topic"`
	// Type is "bool", "pwm" or "number".
	Type string `json:"type"`
	Unit string `json:"unit,omitempty"`
	// Mode is the service's own word for the interface (output, pwm,
	// input, channel).
	Mode string `json:"mode,omitempty"`
	// Set is the topic that drives an output; empty for inputs.
	Set string `json:"set,omitempty"`
	// Value is the current value, when the service knows it.
	Value any `json:"value,omitempty"`
	// Min and Max bound a number's values in Unit, where the service
	// knows them (a sensor's measuring range), so that a client can
	// scale a gauge without knowing the chip.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Interval is how often an input is read, for inputs read at an
	// interval rather than on change.
	Interval Duration `json:"interval,omitempty"`
}

// HostDescription is a host's retained self-description on
// <host>/description.
type HostDescription struct {
	// Protocol is "rollcall/1": what makes a retained <name>/description a
	// rollcall host's, on a broker other systems share.
	Protocol string `json:"protocol"`
	Host     string `json:"host"`
	Machine  string `json:"machine"`
	// Version goes up on every change and across restarts.
	Version  uint64   `json:"version"`
	Rollcall string   `json:"rollcall"`
	Updated  string   `json:"updated"`
	IPAddrs  []string `json:"ipaddrs"`
	ExtAddr  string   `json:"extaddr"`
	// Conflicts lists other machines seen publishing under this host name.
	Conflicts []string      `json:"conflicts,omitempty"`
	Services  []Description `json:"services"`
}

// Topics builds the topics of one service of one host.
type Topics struct {
	// Prefix is mqtt.topic_prefix, the levels above the host's; "" for
	// none.
	Prefix  Prefix
	Host    string
	Service string
}

func (t Topics) base() string { return t.Prefix.Topic(t.Host, t.Service) }

// Contains reports whether topic is one of the service's own: at or below
// <prefix>/<host>/<service>.
func (t Topics) Contains(topic string) bool {
	return strings.HasPrefix(topic+"/", t.base()+"/")
}

// Setup is <host>/<service>/setup.
func (t Topics) Setup() string { return t.base() + "/setup" }

// Control is <host>/<service>/control.
func (t Topics) Control() string { return t.base() + "/control" }

// Get is <host>/<service>/get.
func (t Topics) Get() string { return t.base() + "/get" }

// Result is <host>/<service>/result.
func (t Topics) Result() string { return t.base() + "/result" }

// Set is <host>/<service>/set/<name>.
func (t Topics) Set(name string) string { return t.base() + "/set/" + name }

// Input is <host>/<service>/input/<name>.
func (t Topics) Input(name string) string { return t.base() + "/input/" + name }

// Output is <host>/<service>/output/<name>.
func (t Topics) Output(name string) string { return t.base() + "/output/" + name }

// Base returns the description with the standard topics filled in.
func (t Topics) Base() Description {
	return Description{
		Function: t.Service,
		Inputs:   []Interface{},
		Outputs:  []Interface{},
		Control:  t.Control(),
		Setup:    t.Setup(),
		Get:      t.Get(),
		Result:   t.Result(),
		Health:   "ok",
	}
}

// ValidTopicName reports whether s can stand as one level of a topic
// (a host, service or interface name): 1–64 bytes, no wildcard,
// separator, NUL or other control character, no leading '$'.
func ValidTopicName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '$' {
		return false
	}
	return !strings.ContainsAny(s, "+#/") && !hasControl(s)
}

// ValidTopic reports whether s is a plain topic one may publish to: 1–256
// bytes, no wildcard, no NUL or other control character, no leading '$'.
func ValidTopic(s string) bool {
	if s == "" || len(s) > 256 || s[0] == '$' {
		return false
	}
	return !strings.ContainsAny(s, "+#") && !hasControl(s)
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}
