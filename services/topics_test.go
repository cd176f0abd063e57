package services

import (
	"strings"
	"testing"
)

func TestPrefixCheck(t *testing.T) {
	tests := []struct {
		name   string
		prefix Prefix
		why    string // in the reason; "" for a good prefix
	}{
		{name: "none", prefix: ""},
		{name: "one level", prefix: "site1"},
		{name: "two levels", prefix: "farm/north"},
		{name: "the word rollcall", prefix: "rollcall"},
		{name: "spaces and dots", prefix: "my site.1"},
		{name: "64 bytes", prefix: Prefix(strings.Repeat("a", 64))},
		{name: "65 bytes", prefix: Prefix(strings.Repeat("a", 65)), why: "longer than 64 bytes"},
		{name: "plus", prefix: "site+1", why: "wildcard"},
		{name: "hash level", prefix: "site/#", why: "wildcard"},
		{name: "NUL", prefix: "site\x001", why: "control character"},
		{name: "newline", prefix: "site\n1", why: "control character"},
		{name: "DEL", prefix: "site\x7f", why: "control character"},
		{name: "dollar", prefix: "$SYS", why: "starts with '$'"},
		{name: "leading slash", prefix: "/site1", why: "empty level"},
		{name: "trailing slash", prefix: "site1/", why: "empty level"},
		{name: "doubled slash", prefix: "farm//north", why: "empty level"},
		{name: "only a slash", prefix: "/", why: "empty level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.prefix.Check()
			if tt.why == "" && got != "" || tt.why != "" && !strings.Contains(got, tt.why) {
				t.Errorf("Prefix(%q).Check() = %q, want %q", tt.prefix, got, tt.why)
			}
		})
	}
}

func TestPrefixTopicTrim(t *testing.T) {
	tests := []struct {
		name   string
		prefix Prefix
		levels []string
		topic  string
	}{
		{name: "none, host level", levels: []string{"pi1", "status"}, topic: "pi1/status"},
		{name: "none, rollcall level", levels: []string{"rollcall/inventory"}, topic: "rollcall/inventory"},
		{name: "one level", prefix: "site1", levels: []string{"pi1", "gpio", "set", "lamp"}, topic: "site1/pi1/gpio/set/lamp"},
		{name: "two levels", prefix: "farm/north", levels: []string{"rollcall", "sync", "ab"}, topic: "farm/north/rollcall/sync/ab"},
		{name: "wildcard levels", prefix: "site1", levels: []string{"+", "status"}, topic: "site1/+/status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.prefix.Topic(tt.levels...)
			if got != tt.topic {
				t.Fatalf("Topic(%q) = %q, want %q", tt.levels, got, tt.topic)
			}
			rest, ok := tt.prefix.Trim(got)
			if !ok || rest != strings.Join(tt.levels, "/") {
				t.Errorf("Trim(%q) = %q, %v; want %q", got, rest, ok, strings.Join(tt.levels, "/"))
			}
		})
	}
	for _, topic := range []string{"pi1/status", "site10/pi1/status", "site1", "site1/", "xsite1/pi1/status"} {
		if rest, ok := Prefix("site1").Trim(topic); ok {
			t.Errorf("Trim(%q) = %q, true: not under site1", topic, rest)
		}
	}
}

// TestReservedUnderPrefix: under a prefix, rollcall keeps the prefixed
// forms of its topics and leaves the unprefixed ones to the other systems
// on the broker; the linking exception is the prefixed set topic.
func TestReservedUnderPrefix(t *testing.T) {
	tests := []struct {
		prefix   Prefix
		topic    string
		reserved bool
		onChange bool // allowed as an on_change target of pizero2/gpio
	}{
		{"site1", "site1/otherpi/status", true, false},
		{"site1", "site1/otherpi/description", true, false},
		{"site1", "site1/otherpi/services", true, false},
		{"site1", "site1/otherpi/get", true, false},
		{"site1", "site1/otherpi/display/status", true, false},
		{"site1", "site1/otherpi/gpio/setup", true, false},
		{"site1", "site1/otherpi/gpio/control", true, false},
		{"site1", "site1/otherpi/gpio/result", true, false},
		{"site1", "site1/otherpi/gpio/get/input", true, false},
		{"site1", "site1/otherpi/gpio/input/button", true, false},
		{"site1", "site1/otherpi/gpio/output/lamp", true, false},
		{"site1", "site1/rollcall/inventory", true, false},
		{"site1", "site1/rollcall", true, false},
		{"site1", "site1/otherpi/gpio/set/lamp", true, true},
		{"site1", "site1/pizero2/dac/set/level", true, true},
		{"site1", "site1/pizero2/gpio/set/lamp", true, false},
		{"site1", "site1/pizero2/gpio/get", true, false},
		{"site1", "site1/otherpi/gpio/setup/extra", false, true},
		{"site1", "site1/sensors", false, true},
		// Outside the prefix: the other systems' topics, rollcall's own
		// unprefixed forms included.
		{"site1", "otherpi/status", false, true},
		{"site1", "zigbee2mqtt/lamp/set", false, true},
		{"site1", "otherpi/gpio/set/lamp", false, true},
		{"site1", "rollcall/inventory", false, true},
		{"site1", "pizero2/gpio/set/lamp", false, true},
		{"site1", "site10/otherpi/status", false, true},
		{"site1", "/stat/data", false, true},
		{"farm/north", "farm/north/otherpi/status", true, false},
		{"farm/north", "farm/north/otherpi/gpio/set/lamp", true, true},
		{"farm/north", "farm/otherpi/status", false, true},
		{"farm/north", "farm/north/pizero2/gpio/set/lamp", true, false},
		// No prefix: as Reserved.
		{"", "otherpi/status", true, false},
		{"", "otherpi/gpio/set/lamp", true, true},
		{"", "site1/otherpi/status", true, false}, // host site1, external service otherpi
	}
	for _, tc := range tests {
		t.Run(string(tc.prefix)+" "+tc.topic, func(t *testing.T) {
			if got := tc.prefix.Reserved(tc.topic); got != tc.reserved {
				t.Errorf("Prefix(%q).Reserved(%q) = %v", tc.prefix, tc.topic, got)
			}
			own := Topics{Prefix: tc.prefix, Host: "pizero2", Service: "gpio"}
			msg := CheckOnChange(own, tc.topic)
			if (msg == "") != tc.onChange {
				t.Errorf("CheckOnChange(%q) allowed = %v: %s", tc.topic, msg == "", msg)
			}
			if !tc.onChange && tc.prefix != "" && tc.reserved && !own.Contains(tc.topic) && !strings.Contains(msg, string(tc.prefix)+"/<host>/<service>/set/<name>") {
				t.Errorf("CheckOnChange(%q) = %q: does not name the prefixed set topic", tc.topic, msg)
			}
		})
	}
}

func TestCheckFollowUnderPrefix(t *testing.T) {
	own := Topics{Prefix: "site1", Host: "pizero2", Service: "dac"}
	tests := []struct {
		topic string
		ok    bool
	}{
		{"site1/otherpi/ain/input/soil", true},
		{"site1/otherpi/ain/input/soil/value", true},
		{"site1/pizero2/dac/input/x", true},
		{"site1/pizero2/dac/output/level", false},
		{"site1/pizero2/dac/set/level", false},
		{"site1/otherpi/dac/set/level", false},
		{"site1/otherpi/status", false},
		{"site1/otherpi/ain/input/soil/raw", false},
		{"site1/rollcall/inventory", false},
		{"site1/sensors/door", true},
		// Outside the prefix, no topic is rollcall's.
		{"otherpi/status", true},
		{"otherpi/dac/set/level", true},
		{"pizero2/dac/output/level", true},
		{"rollcall/inventory", true},
	}
	for _, tc := range tests {
		t.Run(tc.topic, func(t *testing.T) {
			msg := CheckFollow(own, tc.topic)
			if (msg == "") != tc.ok {
				t.Errorf("CheckFollow(%q) = %q, want allowed %v", tc.topic, msg, tc.ok)
			}
		})
	}
}

func TestTopicsUnderPrefix(t *testing.T) {
	tp := Topics{Prefix: "farm/north", Host: "pi1", Service: "gpio"}
	tests := []struct{ name, got, want string }{
		{"setup", tp.Setup(), "farm/north/pi1/gpio/setup"},
		{"control", tp.Control(), "farm/north/pi1/gpio/control"},
		{"get", tp.Get(), "farm/north/pi1/gpio/get"},
		{"result", tp.Result(), "farm/north/pi1/gpio/result"},
		{"set", tp.Set("lamp"), "farm/north/pi1/gpio/set/lamp"},
		{"input", tp.Input("b"), "farm/north/pi1/gpio/input/b"},
		{"output", tp.Output("l"), "farm/north/pi1/gpio/output/l"},
		{"description's setup", tp.Base().Setup, "farm/north/pi1/gpio/setup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
