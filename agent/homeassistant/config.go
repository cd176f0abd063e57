package homeassistant

import (
	"strings"

	"github.com/rollcall/rollcall/services"
)

// Config is the "homeassistant" block of the agent's configuration.
type Config struct {
	// Enabled publishes the host's device discovery config. Turning it
	// off after it was on removes the device from Home Assistant at the
	// next start (see the package comment).
	Enabled bool `json:"enabled"`
	// Prefix is Home Assistant's discovery prefix, the same as in its
	// MQTT integration's options.
	Prefix string `json:"prefix"`
}

// DefaultPrefix is Home Assistant's own default discovery prefix.
const DefaultPrefix = "homeassistant"

// DefaultConfig is the block where the file is silent: off.
func DefaultConfig() Config { return Config{Prefix: DefaultPrefix} }

// Check returns every problem of c, each with its field.
func (c Config) Check() services.Errors {
	var errs services.Errors
	bad := func(field, format string, a ...any) {
		errs = append(errs, services.Errorf(services.CodeInvalid, field, format, a...))
	}
	p := c.Prefix
	switch {
	case p == "":
		bad("prefix", "must not be empty (Home Assistant's default is %q)", DefaultPrefix)
	case !services.ValidTopic(p) || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//"):
		bad("prefix", "%q is not a topic prefix (no + # control characters, leading $ or empty levels)", p)
	case services.Reserved(DeviceTopic(p, "x")):
		bad("prefix", "%q would put the discovery configs among the topics rollcall keeps for hosts and services", p)
	}
	return errs
}

// DeviceTopic is where the device discovery config of the device whose
// object id is id goes: <prefix>/device/<id>/config.
func DeviceTopic(prefix, id string) string { return prefix + "/device/" + id + "/config" }

// StatusTopic is where Home Assistant says "online" when it starts (its
// birth message) and "offline" when it stops.
func StatusTopic(prefix string) string { return prefix + "/status" }
