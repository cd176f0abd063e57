package agent

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/agent/dashboard"
	"github.com/rollcall/rollcall/agent/homeassistant"
	"github.com/rollcall/rollcall/agent/metrics"
	"github.com/rollcall/rollcall/agent/session"
	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/services"
)

// Config is everything an agent (and a sweep or inventory run from the same
// host) is configured with. cmd/rollcall fills it from the YAML file, the
// ROLLCALL_* environment and flags, starting from DefaultConfig; Validate
// checks the result.
type Config struct {
	// Host is this host's name: the first level of its topics. Default: the
	// machine's hostname.
	Host string `json:"host"`
	// StateDir keeps what must survive a restart: the machine identity, the
	// description version and every applied setup.
	StateDir string `json:"state_dir"`
	// MachineID overrides the stable identity kept in StateDir.
	MachineID string `json:"machine_id"`
	// Sim runs every service on simulated hardware, whatever the
	// services' blocks name.
	Sim      bool   `json:"sim"`
	LogLevel string `json:"log_level"`
	// Sysfs is the root of the sysfs tree the services read ("/sys"); tests
	// point it at a fixture tree.
	Sysfs string `json:"sysfs"`

	MQTT      session.Config   `json:"mqtt"`
	Discovery discovery.Config `json:"discovery"`
	// Dashboard configures `rollcall dashboard`; the agent itself does
	// not use it.
	Dashboard dashboard.Config `json:"dashboard"`
	// Metrics is the Prometheus endpoint, off unless metrics.listen is set.
	Metrics metrics.Config `json:"metrics"`
	// Buses are buses enabled on the board for something outside rollcall
	// (a HAT's kernel driver): their pins go to no service.
	Buses []string `json:"buses"`
	// Services lists the services to run; default: every kind there is.
	Services []string `json:"services"`
	// HomeAssistant publishes the host as one Home Assistant device
	// (MQTT device discovery); off by default.
	HomeAssistant homeassistant.Config `json:"homeassistant"`

	// Blocks are the services' configurations by kind: the file's
	// top-level keys named after a service ("gpio: ..."), each a pointer
	// to the kind's configuration type.
	Blocks map[string]any `json:"-"`
}

// Defaults used where the configuration is silent.
const (
	DefaultStateDir  = "/var/lib/rollcall"
	DefaultKeepalive = 30 * time.Second
	// DefaultMaxAuthFailures is how many refusals of its credentials an
	// agent takes before it exits.
	DefaultMaxAuthFailures = 3
)

// DefaultConfig returns the configuration with every default filled in,
// every registered service enabled with its default block. The
// configuration file is decoded over it, so a key the file sets to an
// invalid value (an empty state_dir, port 0) is an error, not a default.
func DefaultConfig() Config {
	c := Config{
		StateDir:      DefaultStateDir,
		LogLevel:      "info",
		Sysfs:         "/sys",
		MQTT:          session.Config{Keepalive: DefaultKeepalive, ConnectTimeout: session.DefaultConnectTimeout, MaxAuthFailures: DefaultMaxAuthFailures},
		Discovery:     discovery.DefaultConfig(),
		HomeAssistant: homeassistant.DefaultConfig(),
		Dashboard:     dashboard.DefaultConfig(),
		Blocks:        map[string]any{},
	}
	if h, err := os.Hostname(); err == nil {
		c.Host, _, _ = strings.Cut(h, ".")
	}
	for _, k := range services.Kinds() {
		c.Services = append(c.Services, k.Name)
		c.Blocks[k.Name] = k.NewConfig()
	}
	return c
}

// Client is the configuration a command run from this host (a sweep, an
// inventory read) needs: the broker and discovery settings, not the host's.
func (c Config) Client() cluster.Config {
	return cluster.Config{Name: c.Host, MQTT: c.MQTT, Discovery: c.Discovery}
}

// Validate reports every problem of the configuration, each with its key
// path, the services' blocks and their claims on pins and buses included.
func (c *Config) Validate() services.Errors {
	var errs services.Errors
	bad := func(field, format string, args ...any) {
		errs = append(errs, services.Errorf(services.CodeInvalid, field, format, args...))
	}
	if !services.ValidTopicName(c.Host) {
		bad("host", "%q is not a usable host name (1-64 bytes, no '/', '+', '#', control characters or leading '$')", c.Host)
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
	if c.Sysfs == "" {
		bad("sysfs", "must not be empty")
	}
	errs = append(errs, checkMQTT(c.MQTT).Prefix("mqtt")...)
	errs = append(errs, c.Discovery.Check().Prefix("discovery")...)
	errs = append(errs, c.HomeAssistant.Check().Prefix("homeassistant")...)
	prefix := c.MQTT.TopicPrefix
	if prefix.Check() != "" {
		prefix = "" // reported above; the checks below go on without it
	}
	if rest, under := prefix.Trim(c.HomeAssistant.Prefix); c.HomeAssistant.Enabled && under {
		if first, _, _ := strings.Cut(rest, "/"); first == c.Host {
			bad("homeassistant.prefix", "%q lies under this host's own topics (host %q): Home Assistant's status would read as this host's", c.HomeAssistant.Prefix, c.Host)
		}
	}
	if prefix != "" && services.ValidTopic(c.HomeAssistant.Prefix) && prefix.Reserved(homeassistant.DeviceTopic(c.HomeAssistant.Prefix, "x")) {
		bad("homeassistant.prefix", "%q would put the discovery configs among the topics rollcall keeps for hosts and services under mqtt.topic_prefix %q", c.HomeAssistant.Prefix, prefix)
	}
	errs = append(errs, c.Dashboard.Check().Prefix("dashboard")...)
	errs = append(errs, c.Metrics.Check().Prefix("metrics")...)
	if c.Discovery.ReportPerHost && services.ValidTopicName(c.Host) && services.ValidTopic(c.Discovery.ReportTopic) {
		if why := c.Discovery.CheckReportTopicUnder(prefix, c.Host); why != "" {
			bad("discovery.report_per_host", "this host's report topic %s", why)
		}
	}
	if prefix != "" {
		// The prefix does not move the report and reply topics: they may
		// not land among the topics it does move.
		for _, f := range []struct{ field, topic string }{{"discovery.report_topic", c.Discovery.ReportTopic}, {"discovery.reply_topic", c.Discovery.ReplyTopic}} {
			if services.ValidTopic(f.topic) && prefix.Reserved(f.topic) {
				bad(f.field, "%q is a topic rollcall keeps for state or requests under mqtt.topic_prefix %q", f.topic, prefix)
			}
		}
	}
	claims := services.NewClaims()
	for i, bus := range c.Buses {
		errs = append(errs, claims.EnableBus(fmt.Sprintf("buses[%d]", i), bus)...)
	}
	for i, name := range c.Services {
		if slices.Contains(c.Services[:i], name) {
			bad(fmt.Sprintf("services[%d]", i), "%q is listed twice", name)
			continue
		}
		if _, ok := services.LookupKind(name); !ok {
			bad(fmt.Sprintf("services[%d]", i), "no service called %q (there are: %s)", name, strings.Join(kindNames(), ", "))
			continue
		}
		setup, ok := c.Blocks[name].(services.Setup)
		if !ok {
			continue // a kind without a block runs on its defaults
		}
		errs = append(errs, setup.Check(services.Checker{Topics: services.Topics{Prefix: prefix, Host: c.Host, Service: name}}).Prefix(name)...)
		errs = append(errs, claims.Replace(name, setup.Claims()).Prefix(name)...)
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

func checkMQTT(m session.Config) services.Errors {
	var errs services.Errors
	bad := func(field, format string, args ...any) {
		errs = append(errs, services.Errorf(services.CodeInvalid, field, format, args...))
	}
	if m.Broker != "" {
		for _, b := range m.Brokers() {
			u, err := url.Parse(b)
			switch {
			case err != nil:
				bad("broker", "%v", err)
			case u.Host == "":
				bad("broker", "%q has no host (want e.g. tcp://10.0.0.2:1883)", b)
			default:
				switch u.Scheme {
				case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
				default:
					bad("broker", "scheme %q of %q is not one of tcp, ssl, ws, wss", u.Scheme, b)
				}
			}
		}
	}
	if addr := m.EmbeddedBroker; addr != "" || m.Broker == "" {
		if addr == "" {
			addr = session.DefaultEmbeddedBroker
		}
		host, _, err := net.SplitHostPort(addr)
		ip := net.ParseIP(host)
		switch {
		case err != nil:
			bad("embedded_broker", "%q is not host:port (%v)", addr, err)
		case len(m.EmbeddedUsers) == 0 && !m.EmbeddedInsecure && (ip == nil || !ip.IsLoopback()):
			bad("embedded_broker", "%q listens beyond loopback with no users: anyone on the network could drive the pins; set mqtt.embedded_users (and mqtt.username and mqtt.password for this agent), or mqtt.embedded_insecure: true on a network you trust", addr)
		case len(m.EmbeddedUsers) > 0 && m.Broker == "" && (m.Username == "" || m.EmbeddedUsers[m.Username] != m.Password):
			bad("username", "the agent connects to its own embedded broker as mqtt.username with mqtt.password, which must be one of mqtt.embedded_users")
		}
		for u, p := range m.EmbeddedUsers {
			if u == "" || len(p) < 8 {
				bad("embedded_users."+u, "a user needs a name and a password of at least 8 characters")
			}
		}
	}
	if m.Keepalive < time.Second {
		bad("keepalive", "%v is under one second", m.Keepalive)
	}
	if m.ConnectTimeout < 100*time.Millisecond || m.ConnectTimeout > time.Minute {
		bad("connect_timeout", "%v is not between 100ms and 1m", m.ConnectTimeout)
	}
	if m.MaxAuthFailures < 0 {
		bad("max_auth_failures", "must not be negative (0 never gives up)")
	}
	if (m.TLS.Cert == "") != (m.TLS.Key == "") {
		bad("tls", "cert and key go together")
	}
	if why := m.TopicPrefix.Check(); why != "" {
		bad("topic_prefix", "%s: want one or more topic levels such as site1 or farm/north", why)
	}
	return errs
}
