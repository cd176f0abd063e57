package services

import (
	"context"
	"encoding/json"
	"strings"
)

// A Service is one capability of a host: it describes itself and answers
// requests.
type Service interface {
	// Name is the service's function name, the second level of its topics.
	Name() string
	// Describe returns the service's current description. It must be safe
	// to call from any goroutine while Run is running.
	Describe() Description
	// Run serves the service's topics until ctx ends. An error ends only
	// this service: the agent logs it and marks the service unhealthy.
	Run(ctx context.Context, bus Bus) error
}

// A Publisher publishes one MQTT message.
type Publisher interface {
	Publish(topic string, qos byte, retained bool, payload []byte) error
}

// A Handler receives one MQTT message. Handlers of one subscription are
// called one at a time, in arrival order.
type Handler func(topic string, payload []byte)

// A Bus is a service's view of the host's MQTT session.
type Bus interface {
	Publisher
	// Subscribe registers h for filter at QoS 1. The session renews every
	// subscription after a reconnect.
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
	// State is the service's own detail (its configuration, halted flag,
	// payload schemas), documented by each service.
	State json.RawMessage `json:"state,omitempty"`
}

// Interface is one input or output of a service.
type Interface struct {
	Name  string `json:"name"`
	Topic string `json:"topic"`
	// Type is "bool", "pwm" or "number".
	Type string `json:"type"`
	Unit string `json:"unit,omitempty"`
	// Mode is the service's own word for the interface (output, pwm, input).
	Mode string `json:"mode,omitempty"`
	// Set is the topic that drives an output; empty for inputs.
	Set string `json:"set,omitempty"`
	// Value is the current value, when the service knows it.
	Value any `json:"value,omitempty"`
}

// Topics builds the topics of one service of one host.
type Topics struct {
	Host    string
	Service string
}

func (t Topics) base() string { return t.Host + "/" + t.Service }

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
// (a host, service or interface name): non-empty, at most 64 bytes, no
// wildcard, separator, NUL or leading '$'.
func ValidTopicName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '$' {
		return false
	}
	return !strings.ContainsAny(s, "+#/\x00")
}

// ValidTopic reports whether s is a plain topic one may publish to: non-empty,
// at most 256 bytes, no wildcard, no NUL, no leading '$'.
func ValidTopic(s string) bool {
	if s == "" || len(s) > 256 || s[0] == '$' {
		return false
	}
	return !strings.ContainsAny(s, "+#\x00")
}
