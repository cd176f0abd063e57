package cluster

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/services"
)

func TestRetainedInventory(t *testing.T) {
	r := retained{status: map[string]string{}, descs: map[string]hostDesc{}, summary: map[string]bool{}}
	for _, m := range []struct{ topic, payload string }{
		{"pi1/status", "online"},
		{"pi1/description", `{"protocol":"rollcall/1","host":"pi1","machine":"aaaaaaaa","version":3,"services":[{"function":"gpio","inputs":[],"outputs":[]}]}`},
		{"pi1/services", `{"protocol":"rollcall/1","host":"pi1","machine":"aaaaaaaa","version":3,"services":[{"function":"gpio"}]}`},
		// A rollcall host whose description was damaged: its summary vouches for it.
		{"pi2/status", "offline"},
		{"pi2/description", `{"protocol":"rollcall/1","host":"pi2","version":"three"}`},
		{"pi2/services", `{"protocol":"rollcall/1","host":"pi2","machine":"bbbbbbbb","version":3,"services":[]}`},
		// Other systems on the same broker.
		{"kitchen-esp/status", "online"},
		{"zigbee2mqtt/description", `{"name":"bridge","version":"1.40"}`},
		{"mqtt-io/status", "running"},
		// A name that prints escape sequences.
		{"evil/status", "online"},
		{"evil/description", "{\"protocol\":\"rollcall/1\",\"host\":\"evil\",\"machine\":\"\\u001b[31mred\",\"version\":1,\"services\":[{\"function\":\"x\\u001b]0;pwned\\u0007\"}]}"},
	} {
		r.take(services.Message{Topic: m.topic, Payload: []byte(m.payload), Retained: true}, "rollcall/inventory")
	}
	inv := r.inventory()
	var names []string
	for _, h := range inv.Hosts {
		names = append(names, h.Host)
	}
	if strings.Join(names, ",") != "evil,pi1,pi2" {
		t.Fatalf("hosts %v, want evil, pi1, pi2", names)
	}
	if inv.Hosts[2].Invalid == "" || inv.Hosts[2].Status != "offline" {
		t.Errorf("pi2 %+v: its damaged description is not shown as invalid", inv.Hosts[2])
	}
	if inv.Schema != Schema || inv.Source != SourceRetained {
		t.Errorf("schema %d source %q", inv.Schema, inv.Source)
	}
	var b bytes.Buffer
	inv.Table(&b)
	out := b.String()
	if !strings.Contains(out, "\npi1 ") || !strings.Contains(strings.SplitAfter(out, "\npi1 ")[1], "online") {
		t.Errorf("pi1 not online in:\n%s", out)
	}
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("the table passes control characters through:\n%q", out)
	}
	for _, want := range []string{`x\x1b]0;pwned\a[0 in, 0 out]`, "invalid description:"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain":            "plain",
		"café ✓":           "café ✓",
		"a\x1b[2Jb":        `a\x1b[2Jb`,
		"bell\a":           `bell\a`,
		"line\nbreak":      `line\nbreak`,
		"bad \xff utf8":    `bad \xff utf8`,
		"\u202eright2left": `\u202eright2left`,
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRetainedInventoryUnderPrefix: under a topic prefix, host names are
// the level below it, and what lies outside it is another cluster's.
func TestRetainedInventoryUnderPrefix(t *testing.T) {
	r := retained{prefix: "farm/north", status: map[string]string{}, descs: map[string]hostDesc{}, summary: map[string]bool{}}
	for _, m := range []struct{ topic, payload string }{
		{"farm/north/pi1/status", "online"},
		{"farm/north/pi1/description", `{"protocol":"rollcall/1","host":"pi1","machine":"aaaaaaaa","version":3,"services":[{"function":"gpio","inputs":[],"outputs":[]}]}`},
		{"farm/north/pi1/services", `{"protocol":"rollcall/1","host":"pi1","machine":"aaaaaaaa","version":3,"services":[{"function":"gpio"}]}`},
		// The same names with no prefix, or under another.
		{"pi2/status", "online"},
		{"pi2/description", `{"protocol":"rollcall/1","host":"pi2","machine":"bbbbbbbb","version":1,"services":[]}`},
		{"farm/south/pi3/description", `{"protocol":"rollcall/1","host":"pi3","machine":"cccccccc","version":1,"services":[]}`},
	} {
		r.take(services.Message{Topic: m.topic, Payload: []byte(m.payload), Retained: true}, "farm/north/rollcall/inventory")
	}
	inv := r.inventory()
	if len(inv.Hosts) != 1 || inv.Hosts[0].Host != "pi1" || inv.Hosts[0].Status != "online" || inv.Hosts[0].Version != 3 {
		t.Errorf("hosts %+v, want pi1 alone, online at version 3", inv.Hosts)
	}
}
