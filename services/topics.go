package services

import (
	"fmt"
	"slices"
	"strings"
)

// A Prefix is the topic levels all of rollcall's topics lie under
// (mqtt.topic_prefix), so that rollcall can share a broker with other
// systems: "" (no prefix, the default), or one or more levels such as
// "site1" or "farm/north". A host's topics are then <prefix>/<host>/...
// and rollcall's own <prefix>/rollcall/...; the topics rollcall does not
// choose (a probe's reply topic, the discovery report topic, Home
// Assistant's discovery topics) stay where they are.
//
// Every topic a host, a service or a command builds goes through Topic
// (or Topics, which holds a Prefix), and every topic read back from a
// wildcard subscription through Trim, so the rule lives here only.
type Prefix string

// MaxPrefix bounds a prefix, leaving a topic room for the host, service
// and interface levels below it within ValidTopic's 256 bytes.
const MaxPrefix = 64

// Topic is the topic of levels, joined by '/', under the prefix:
// Prefix("site1").Topic("pi1", "status") is "site1/pi1/status", and with
// no prefix "pi1/status".
func (p Prefix) Topic(levels ...string) string {
	t := strings.Join(levels, "/")
	if p == "" {
		return t
	}
	return string(p) + "/" + t
}

// Trim returns topic without the prefix, and whether topic lies under the
// prefix at all. With no prefix, every topic does and comes back whole.
func (p Prefix) Trim(topic string) (string, bool) {
	if p == "" {
		return topic, true
	}
	rest, ok := strings.CutPrefix(topic, string(p)+"/")
	return rest, ok && rest != ""
}

// Reserved reports whether rollcall, under this prefix, uses topic for
// state or requests: whether topic lies under the prefix and the rest of
// it is reserved (see Reserved). With a prefix, topics outside it belong
// to the other systems sharing the broker: an unprefixed "lamp/set" or
// "kitchen/status" is theirs to use, and an on_change or follow may name
// them.
func (p Prefix) Reserved(topic string) bool {
	rest, ok := p.Trim(topic)
	return ok && Reserved(rest)
}

// Check returns why p cannot be a topic prefix, or "" if it can: it must
// be whole topic levels one can publish under (no '+', '#', NUL or other
// control character, no leading '$', no empty level, so no leading,
// trailing or doubled '/'), at most MaxPrefix bytes.
func (p Prefix) Check() string {
	s := string(p)
	switch {
	case s == "":
		return ""
	case len(s) > MaxPrefix:
		return fmt.Sprintf("%q is longer than %d bytes", truncate(s, 70), MaxPrefix)
	case s[0] == '$':
		return fmt.Sprintf("%q starts with '$', which brokers keep for themselves ($SYS)", s)
	case strings.ContainsAny(s, "+#"):
		return fmt.Sprintf("%q has a wildcard ('+' or '#')", s)
	case hasControl(s):
		return fmt.Sprintf("%q has a NUL or control character", s)
	case slices.Contains(strings.Split(s, "/"), ""):
		return fmt.Sprintf("%q has an empty level (a leading, trailing or doubled '/')", s)
	}
	return ""
}

// Reserved reports whether rollcall uses topic for state or requests, so
// that no payload or probe may make a host publish there:
//
//	+/status  +/description  +/services  +/get
//	+/+/setup  +/+/control  +/+/result  +/+/description  +/+/status
//	+/+/set/#  +/+/get/#  +/+/input/#  +/+/output/#
//	rollcall/#
//
// A probe that names such a reply topic, or an on_change pointing at one,
// could otherwise overwrite another host's status or description, or feed
// a service its own requests. These are the topics with no prefix; under
// one, see Prefix.Reserved.
func Reserved(topic string) bool {
	lv := strings.Split(topic, "/")
	if lv[0] == "rollcall" {
		return true
	}
	switch len(lv) {
	case 1:
		return false
	case 2:
		switch lv[1] {
		case "status", "description", "services", "get":
			return true
		}
		return false
	}
	switch lv[2] {
	case "setup", "control", "result", "description", "status":
		return len(lv) == 3
	case "set", "get", "input", "output":
		return true
	}
	return false
}

// CheckOnChange returns why a service whose topics are own may not publish
// an input's changes to topic, or "" if it may. Topics rollcall reserves
// under own's prefix are refused (see Prefix.Reserved), with one
// exception, the linking the README shows: another service's set topic,
// <prefix>/<host>/<service>/set/<name>, which receives the value
// non-retained. A service's own topics are always refused: an input
// driving its own set or get topic loops.
func CheckOnChange(own Topics, topic string) string {
	if !ValidTopic(topic) {
		return fmt.Sprintf("%q is not a topic one can publish to (no + # control characters or leading $, at most 256 bytes)", topic)
	}
	if own.Contains(topic) {
		return fmt.Sprintf("%q is a topic of this service itself; an input publishing there would loop", topic)
	}
	rest, under := own.Prefix.Trim(topic)
	lv := strings.Split(rest, "/")
	if under && len(lv) == 4 && lv[2] == "set" && ValidTopicName(lv[0]) && ValidTopicName(lv[1]) && ValidTopicName(lv[3]) {
		return ""
	}
	if own.Prefix.Reserved(topic) {
		return fmt.Sprintf("%q is a topic rollcall uses for state or requests; on_change may name another host's %s or a topic of your own", topic, own.Prefix.Topic("<host>/<service>/set/<name>"))
	}
	return ""
}

// CheckFollow returns why an output of the service whose topics are own
// may not follow topic (take its values as sets), or "" if it may. Any
// plain topic may be followed but the requests and state topics rollcall
// keeps under own's prefix (see Prefix.Reserved), except the retained
// values of inputs and outputs, with their plain-number subtopic
// (<host>/<service>/input/<name>/value): of any service, and of the
// service itself only an input, since an output following its own outputs
// or requests loops.
func CheckFollow(own Topics, topic string) string {
	if !ValidTopic(topic) {
		return fmt.Sprintf("%q is not a plain topic (no + # control characters or leading $, at most 256 bytes)", truncate(topic, 70))
	}
	rest, under := own.Prefix.Trim(topic)
	lv := strings.Split(rest, "/")
	value := under && (len(lv) == 4 || len(lv) == 5 && lv[4] == "value") && (lv[2] == "input" || lv[2] == "output")
	if own.Contains(topic) && !(value && lv[2] == "input") {
		return fmt.Sprintf("%q is a topic of this service itself; an output following it would loop (of its own topics, an output may follow only an input)", topic)
	}
	if value {
		return ""
	}
	if own.Prefix.Reserved(topic) {
		return fmt.Sprintf("%q is a topic rollcall uses for requests or state; follow %s or a topic of your own", topic, own.Prefix.Topic("<host>/<service>/input/<name>"))
	}
	return ""
}
