package discovery

import (
	"fmt"
	"strings"
	"time"

	"github.com/rollcall/rollcall/services"
)

// Config is the discovery side of a host, shared by its monitor and the
// sweeps run from it: the "discovery" block of the agent's configuration.
type Config struct {
	// Port is the UDP port monitors listen on and sweeps send to.
	Port int `json:"port"`
	// ReportTopic is where monitors republish the probes they accept.
	ReportTopic string `json:"report_topic"`
	// ReportPerHost makes each monitor publish its reports one level
	// below ReportTopic, on <report_topic>/<host> (see ReportTopicFor),
	// so that a service outside the agent subscribes to its own host's
	// reports only. On the shared topic every such subscriber receives
	// every host's report: N hosts each running one cost the broker N²
	// deliveries per sweep. Off by default: the shared topic is the
	// seed's, and what existing scripts subscribe to.
	ReportPerHost bool `json:"report_per_host"`
	// ReplyTopic is where a sweep asks services to answer.
	ReplyTopic string `json:"reply_topic"`
	// ReplyPrefixes are the topics a probe may ask answers on: a monitor
	// drops a probe whose reply topic starts with none of them, and any
	// whose topic rollcall keeps for state or requests (see
	// services.Reserved). Default: "/stat/".
	ReplyPrefixes []string `json:"reply_prefixes"`
	// ExtAddr is reported as the host's external address; empty when none.
	ExtAddr string `json:"extaddr"`
	// Key, when set, makes sweeps sign probes and monitors drop unsigned
	// ones. Keys adds older keys a monitor still accepts during rotation.
	Key          string            `json:"key"`
	KeyID        string            `json:"key_id"`
	Keys         map[string]string `json:"keys"`
	ReplayWindow time.Duration     `json:"replay_window"`
	// Interfaces the sweep broadcasts on; empty: every up, broadcast-capable
	// IPv4 interface. Targets adds explicit addresses.
	Interfaces []string `json:"interfaces"`
	Targets    []string `json:"targets"`
	// InventoryTopic carries the last sweep's result, retained.
	InventoryTopic string `json:"inventory_topic"`
}

// Defaults of Config.
const (
	DefaultInventoryTopic = "rollcall/inventory"
	DefaultKeyID          = "k1"
)

// DefaultConfig returns the configuration used where the file is silent.
func DefaultConfig() Config {
	return Config{
		Port:           DefaultPort,
		ReportTopic:    DefaultReportTopic,
		ReplyTopic:     DefaultReplyTopic,
		ReplyPrefixes:  []string{DefaultReplyPrefix},
		KeyID:          DefaultKeyID,
		ReplayWindow:   DefaultReplayWindow,
		InventoryTopic: DefaultInventoryTopic,
	}
}

// Check returns every problem of c, each with its field.
func (c Config) Check() services.Errors {
	var errs services.Errors
	bad := func(field, format string, a ...any) {
		errs = append(errs, services.Errorf(services.CodeInvalid, field, format, a...))
	}
	if c.Port < 1 || c.Port > 65535 {
		bad("port", "%d is not a UDP port (1–65535)", c.Port)
	}
	for _, f := range []struct{ field, topic string }{{"report_topic", c.ReportTopic}, {"reply_topic", c.ReplyTopic}, {"inventory_topic", c.InventoryTopic}} {
		if !services.ValidTopic(f.topic) {
			bad(f.field, "%q is not a plain topic", f.topic)
		}
	}
	if services.ValidTopic(c.ReportTopic) && services.Reserved(c.ReportTopic) {
		bad("report_topic", "%q is a topic rollcall keeps for state or requests: every probe would publish there", c.ReportTopic)
	}
	if len(c.ReplyPrefixes) == 0 {
		bad("reply_prefixes", "must list at least one prefix (default %q)", DefaultReplyPrefix)
	}
	for i, p := range c.ReplyPrefixes {
		if p == "" || !services.ValidTopic(p) {
			bad(fmt.Sprintf("reply_prefixes[%d]", i), "%q is not a plain topic prefix", p)
		}
	}
	if c.ReplyTopic != "" && services.ValidTopic(c.ReplyTopic) {
		if why := CheckReplyTopic(c.ReplyTopic, c.ReportTopic, c.ReplyPrefixes); why != "" {
			bad("reply_topic", "%s", why)
		}
	}
	if c.ReplayWindow < time.Second {
		bad("replay_window", "%v is under one second", c.ReplayWindow)
	}
	for kid, k := range c.Keys {
		if len(k) < 16 {
			bad("keys."+kid, "shorter than 16 bytes")
		}
	}
	if c.Key != "" && len(c.Key) < 16 {
		bad("key", "shorter than 16 bytes")
	}
	if !isToken(c.KeyID) {
		bad("key_id", "%q is not 1–64 of [A-Za-z0-9._-]", c.KeyID)
	}
	if len(c.ExtAddr) > 255 || !printable(c.ExtAddr) {
		bad("extaddr", "not at most 255 printable characters")
	}
	return errs
}

// ReportTopicFor is the topic host's monitor publishes its reports on:
// the report topic, or with ReportPerHost the level below it named after
// the host ("/udp/report/pi1").
func (c Config) ReportTopicFor(host string) string {
	return reportTopicFor(c.ReportTopic, host, c.ReportPerHost)
}

func reportTopicFor(topic, host string, perHost bool) string {
	if perHost {
		return topic + "/" + host
	}
	return topic
}

// CheckReportTopicFor returns why host's monitor may not publish its
// reports on the topic ReportTopicFor gives, or "". Per host, a host name
// can complete the report topic into one rollcall keeps for state or
// requests ("x" and host "get" make "x/get", another host's request
// topic), or make it too long.
func (c Config) CheckReportTopicFor(host string) string {
	return c.CheckReportTopicUnder("", host)
}

// CheckReportTopicUnder is CheckReportTopicFor for a host whose topics lie
// under prefix (mqtt.topic_prefix): the report topic, which the prefix
// does not move, may be none of rollcall's, with or without the prefix
// (see reserved).
func (c Config) CheckReportTopicUnder(prefix services.Prefix, host string) string {
	t := c.ReportTopicFor(host)
	if !services.ValidTopic(t) {
		return fmt.Sprintf("%q is not a plain topic", t)
	}
	if reserved(prefix, t) {
		return fmt.Sprintf("%q is a topic rollcall keeps for state or requests", t)
	}
	return ""
}

// reserved reports whether topic is one rollcall keeps, under prefix or
// with no prefix at all. What a probe makes a host publish is refused in
// both forms: a probe is anyone on the LAN, a reply has its own prefixes
// to go to, and a broker shared by a prefixed cluster and an unprefixed
// one must not let a probe to one overwrite the other's state.
func reserved(prefix services.Prefix, topic string) bool {
	return services.Reserved(topic) || prefix.Reserved(topic)
}

// Keyring is the keys a monitor accepts, or nil when probes are unsigned.
func (c Config) Keyring() Keyring {
	if c.Key == "" && len(c.Keys) == 0 {
		return nil
	}
	k := Keyring{}
	for kid, key := range c.Keys {
		k[kid] = []byte(key)
	}
	if c.Key != "" {
		k[c.KeyID] = []byte(c.Key)
	}
	return k
}

// DefaultReplyPrefix is the one prefix reply topics may have by default:
// the seed's /stat/data is under it.
const DefaultReplyPrefix = "/stat/"

// CheckReplyTopic returns why a probe may not ask for answers on topic, or
// "": a topic rollcall keeps for state or requests, the report topic or
// one below it (a host's own report topic, with ReportPerHost), or one
// outside the allowed prefixes would let anyone on the LAN make every host
// publish there. A topic with a space or a dot would let one probe
// disconnect every host from nats-server, which maps topics to its
// subjects: it closes the connection of a client that publishes such a
// topic (a space in any version, a dot before v2.10).
func CheckReplyTopic(topic, reportTopic string, prefixes []string) string {
	return CheckReplyTopicUnder("", topic, reportTopic, prefixes)
}

// CheckReplyTopicUnder is CheckReplyTopic for hosts whose topics lie under
// prefix (mqtt.topic_prefix): the topics rollcall keeps are refused with
// the prefix and without it.
func CheckReplyTopicUnder(prefix services.Prefix, topic, reportTopic string, prefixes []string) string {
	if strings.ContainsAny(topic, " .") {
		return fmt.Sprintf("%q has a space or a dot, which nats-server refuses in a topic", topic)
	}
	if reserved(prefix, topic) {
		return fmt.Sprintf("%q is a topic rollcall keeps for state or requests", topic)
	}
	if topic == reportTopic {
		return fmt.Sprintf("%q is the report topic", topic)
	}
	if strings.HasPrefix(topic, reportTopic+"/") {
		return fmt.Sprintf("%q is below the report topic %q, where a host's own reports go (discovery.report_per_host)", topic, reportTopic)
	}
	for _, p := range prefixes {
		if strings.HasPrefix(topic, p) {
			return ""
		}
	}
	return fmt.Sprintf("%q is not under an allowed reply prefix (%s; see discovery.reply_prefixes)", topic, strings.Join(prefixes, ", "))
}
