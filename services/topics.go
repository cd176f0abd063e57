package services

import (
	"fmt"
	"strings"
)

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
// a service its own requests.
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
// are refused (see Reserved), with one exception, the linking the README
// shows: another service's set topic, <host>/<service>/set/<name>, which
// receives the value non-retained. A service's own topics are always
// refused: an input driving its own set or get topic loops.
func CheckOnChange(own Topics, topic string) string {
	if !ValidTopic(topic) {
		return fmt.Sprintf("%q is not a topic one can publish to (no + # control characters or leading $, at most 256 bytes)", topic)
	}
	if strings.HasPrefix(topic+"/", own.Host+"/"+own.Service+"/") {
		return fmt.Sprintf("%q is a topic of this service itself; an input publishing there would loop", topic)
	}
	lv := strings.Split(topic, "/")
	if len(lv) == 4 && lv[2] == "set" && ValidTopicName(lv[0]) && ValidTopicName(lv[1]) && ValidTopicName(lv[3]) {
		return ""
	}
	if Reserved(topic) {
		return fmt.Sprintf("%q is a topic rollcall uses for state or requests; on_change may name another host's <host>/<service>/set/<name> or a topic of your own", topic)
	}
	return ""
}

// CheckFollow returns why an output of the service whose topics are own
// may not follow topic (take its values as sets), or "" if it may. Any
// plain topic may be followed but the requests and state topics rollcall
// keeps (see Reserved), except the retained values of inputs and outputs,
// with their plain-number subtopic (<host>/<service>/input/<name>/value):
// of any service, and of the service itself only an input, since an
// output following its own outputs or requests loops.
func CheckFollow(own Topics, topic string) string {
	if !ValidTopic(topic) {
		return fmt.Sprintf("%q is not a plain topic (no + # control characters or leading $, at most 256 bytes)", truncate(topic, 70))
	}
	lv := strings.Split(topic, "/")
	value := (len(lv) == 4 || len(lv) == 5 && lv[4] == "value") && (lv[2] == "input" || lv[2] == "output")
	if strings.HasPrefix(topic+"/", own.Host+"/"+own.Service+"/") && !(value && lv[2] == "input") {
		return fmt.Sprintf("%q is a topic of this service itself; an output following it would loop (of its own topics, an output may follow only an input)", topic)
	}
	if value {
		return ""
	}
	if Reserved(topic) {
		return fmt.Sprintf("%q is a topic rollcall uses for requests or state; follow <host>/<service>/input/<name> or a topic of your own", topic)
	}
	return ""
}
