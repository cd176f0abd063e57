package agent

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/services"
)

// Config is everything an agent (and a sweep or inventory run from the same
// host) is configured with. cmd/rollcall fills it from the YAML file, the
// ROLLCALL_* environment and flags; Defaults and Validate do the rest.
type Config struct {
	// Host is this host's name: the first level of its topics. Default: the
	// machine's hostname.
	Host string `mapstructure:"host"`
	// StateDir keeps what must survive a restart: the machine identity, the
	// description version and every applied setup.
	StateDir string `mapstructure:"state_dir"`
	// MachineID overrides the stable identity kept in StateDir.
	MachineID string `mapstructure:"machine_id"`
	// Sim runs every service on simulated hardware.
	Sim      bool   `mapstructure:"sim"`
	LogLevel string `mapstructure:"log_level"`

	MQTT      MQTTConfig      `mapstructure:"mqtt"`
	Discovery DiscoveryConfig `mapstructure:"discovery"`
	// Buses are the buses enabled on the board (i2c1, spi0, uart0, ...),
	// whose pins no service may take.
	Buses []string    `mapstructure:"buses"`
	GPIO  gpio.Config `mapstructure:"gpio"`
}

// MQTTConfig says how to reach the broker.
type MQTTConfig struct {
	// Broker is the broker URL (tcp://, ssl://, ws://). Empty: the agent
	// starts the embedded broker on EmbeddedBroker and uses it.
	Broker string `mapstructure:"broker"`
	// EmbeddedBroker, when set, starts the embedded broker on this address
	// even when Broker is set, so one agent can serve a small cluster.
	EmbeddedBroker string        `mapstructure:"embedded_broker"`
	ClientID       string        `mapstructure:"client_id"`
	Username       string        `mapstructure:"username"`
	Password       string        `mapstructure:"password"`
	Keepalive      time.Duration `mapstructure:"keepalive"`
	TLS            TLSConfig     `mapstructure:"tls"`
}

// TLSConfig is the broker connection's TLS: a CA to trust and an optional
// client certificate.
type TLSConfig struct {
	CA       string `mapstructure:"ca"`
	Cert     string `mapstructure:"cert"`
	Key      string `mapstructure:"key"`
	Insecure bool   `mapstructure:"insecure"`
}

// DiscoveryConfig is the UDP side of a sweep.
type DiscoveryConfig struct {
	Port        int    `mapstructure:"port"`
	ReportTopic string `mapstructure:"report_topic"`
	ReplyTopic  string `mapstructure:"reply_topic"`
	// ExtAddr is reported as the host's external address; empty when none.
	ExtAddr string `mapstructure:"extaddr"`
	// Key, when set, makes sweeps sign probes and monitors drop unsigned
	// ones. Keys adds older keys a monitor still accepts during rotation.
	Key          string            `mapstructure:"key"`
	KeyID        string            `mapstructure:"key_id"`
	Keys         map[string]string `mapstructure:"keys"`
	ReplayWindow time.Duration     `mapstructure:"replay_window"`
	// Interfaces the sweep broadcasts on; empty: every up, broadcast-capable
	// IPv4 interface. Targets adds explicit addresses.
	Interfaces []string `mapstructure:"interfaces"`
	Targets    []string `mapstructure:"targets"`
	// InventoryTopic carries the last sweep's result, retained.
	InventoryTopic string `mapstructure:"inventory_topic"`
}

// Defaults used where the configuration is silent.
const (
	DefaultStateDir       = "/var/lib/rollcall"
	DefaultEmbeddedBroker = "127.0.0.1:1883"
	DefaultInventoryTopic = "rollcall/inventory"
	DefaultKeyID          = "k1"
)

// Defaults fills every field left empty.
func (c *Config) Defaults() {
	if c.Host == "" {
		if h, err := os.Hostname(); err == nil {
			c.Host, _, _ = strings.Cut(h, ".")
		}
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.MQTT.Keepalive == 0 {
		c.MQTT.Keepalive = 30 * time.Second
	}
	d := &c.Discovery
	if d.Port == 0 {
		d.Port = discovery.DefaultPort
	}
	if d.ReportTopic == "" {
		d.ReportTopic = discovery.DefaultReportTopic
	}
	if d.ReplyTopic == "" {
		d.ReplyTopic = discovery.DefaultReplyTopic
	}
	if d.KeyID == "" {
		d.KeyID = DefaultKeyID
	}
	if d.ReplayWindow == 0 {
		d.ReplayWindow = 30 * time.Second
	}
	if d.InventoryTopic == "" {
		d.InventoryTopic = DefaultInventoryTopic
	}
	if c.GPIO.Driver == "" {
		c.GPIO.Driver = "periph"
		if c.Sim {
			c.GPIO.Driver = "sim"
		}
	}
}

// BrokerURL is the broker the session connects to: the configured one, or
// the embedded broker's address.
func (c *Config) BrokerURL() string {
	if c.MQTT.Broker != "" {
		return c.MQTT.Broker
	}
	addr := c.MQTT.EmbeddedBroker
	if addr == "" {
		addr = DefaultEmbeddedBroker
	}
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	return "tcp://" + addr
}

// Validate reports every problem of the configuration, each with its key
// path. Call Defaults first.
func (c *Config) Validate() services.Errors {
	var errs services.Errors
	bad := func(field, format string, args ...any) {
		errs = append(errs, services.Error{Code: services.CodeInvalid, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if !services.ValidTopicName(c.Host) {
		bad("host", "%q is not a usable host name (1-64 bytes, no '/', '+', '#', NUL or leading '$')", c.Host)
	}
	if c.StateDir == "" {
		bad("state_dir", "must not be empty")
	}
	if c.MachineID != "" && !services.ValidTopicName(c.MachineID) {
		bad("machine_id", "%q is not a usable identity", c.MachineID)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.MQTT.Broker != "" {
		u, err := url.Parse(c.MQTT.Broker)
		switch {
		case err != nil:
			bad("mqtt.broker", "%v", err)
		case u.Host == "":
			bad("mqtt.broker", "%q has no host (want e.g. tcp://10.0.0.2:1883)", c.MQTT.Broker)
		default:
			switch u.Scheme {
			case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
			default:
				bad("mqtt.broker", "scheme %q is not one of tcp, ssl, ws, wss", u.Scheme)
			}
		}
	}
	if c.MQTT.Keepalive < time.Second {
		bad("mqtt.keepalive", "%v is under one second", c.MQTT.Keepalive)
	}
	if (c.MQTT.TLS.Cert == "") != (c.MQTT.TLS.Key == "") {
		bad("mqtt.tls", "cert and key go together")
	}
	d := c.Discovery
	if d.Port < 1 || d.Port > 65535 {
		bad("discovery.port", "%d is not a UDP port", d.Port)
	}
	for field, topic := range map[string]string{"discovery.report_topic": d.ReportTopic, "discovery.reply_topic": d.ReplyTopic, "discovery.inventory_topic": d.InventoryTopic} {
		if !services.ValidTopic(topic) {
			bad(field, "%q is not a plain topic", topic)
		}
	}
	if d.ReplayWindow < time.Second {
		bad("discovery.replay_window", "%v is under one second", d.ReplayWindow)
	}
	for kid, k := range d.Keys {
		if len(k) < 16 {
			bad("discovery.keys."+kid, "shorter than 16 bytes")
		}
	}
	if d.Key != "" && len(d.Key) < 16 {
		bad("discovery.key", "shorter than 16 bytes")
	}
	switch c.GPIO.Driver {
	case "periph", "sim":
	default:
		bad("gpio.driver", "%q is not one of periph, sim", c.GPIO.Driver)
	}
	pins := services.NewPinRegistry()
	for i, bus := range c.Buses {
		if _, ok := services.BusPins(bus); !ok {
			bad(fmt.Sprintf("buses[%d]", i), "%q is not a known bus (i2c0, i2c1, spi0, spi1, uart0)", bus)
		} else if err := pins.ReserveBus(bus); err != nil {
			bad(fmt.Sprintf("buses[%d]", i), "%v", err)
		}
	}
	for _, e := range c.GPIO.Validate(pins.Holder) {
		if e.Field != "" {
			e.Field = "gpio." + e.Field
		} else {
			e.Field = "gpio"
		}
		errs = append(errs, e)
	}
	return errs
}

// keyring is the discovery keys a monitor accepts.
func (d DiscoveryConfig) keyring() discovery.Keyring {
	if d.Key == "" && len(d.Keys) == 0 {
		return nil
	}
	k := discovery.Keyring{}
	for kid, key := range d.Keys {
		k[kid] = []byte(key)
	}
	if d.Key != "" {
		k[d.KeyID] = []byte(d.Key)
	}
	return k
}
