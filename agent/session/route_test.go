package session

import (
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rollcall/rollcall/services"
)

// TestMatches: MQTT's filter rules (3.1.1, 4.7), as a broker applies them.
func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		name, filter, topic string
		want                bool
	}{
		{name: "exact", filter: "pi1/status", topic: "pi1/status", want: true},
		{name: "exact, other topic", filter: "pi1/status", topic: "pi2/status"},
		{name: "exact, longer topic", filter: "pi1/status", topic: "pi1/status/x"},
		{name: "exact, shorter topic", filter: "pi1/status", topic: "pi1"},
		{name: "plus, one level", filter: "+/status", topic: "pi1/status", want: true},
		{name: "plus, not two levels", filter: "+/status", topic: "a/pi1/status"},
		{name: "plus in the middle", filter: "pi1/+/description", topic: "pi1/gpio/description", want: true},
		{name: "plus matches an empty level", filter: "pi1/+/x", topic: "pi1//x", want: true},
		{name: "plus at the end", filter: "pi1/gpio/set/+", topic: "pi1/gpio/set/lamp", want: true},
		{name: "plus at the end, not deeper", filter: "pi1/gpio/set/+", topic: "pi1/gpio/set/lamp/x"},
		{name: "plus at the end, not the parent", filter: "pi1/gpio/set/+", topic: "pi1/gpio/set"},
		{name: "hash, everything", filter: "#", topic: "a/b/c", want: true},
		{name: "hash below", filter: "pi1/gpio/get/#", topic: "pi1/gpio/get/pins/lamp", want: true},
		{name: "hash, the parent level", filter: "pi1/gpio/get/#", topic: "pi1/gpio/get", want: true},
		{name: "hash, not a sibling", filter: "pi1/gpio/get/#", topic: "pi1/gpio/getx"},
		{name: "plus then hash, parent", filter: "a/+/#", topic: "a/b", want: true},
		{name: "plus then hash, not above", filter: "a/+/#", topic: "a"},
		{name: "leading slash", filter: "/udp/report", topic: "/udp/report", want: true},
		{name: "leading slash, plus", filter: "+/udp/report", topic: "/udp/report", want: true},
		{name: "dollar topic, plus", filter: "+/status", topic: "$SYS/status"},
		{name: "dollar topic, hash", filter: "#", topic: "$SYS/broker/uptime"},
		{name: "dollar topic, named", filter: "$SYS/#", topic: "$SYS/broker/uptime", want: true},
		{name: "case matters", filter: "pi1/Status", topic: "pi1/status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := matches(tc.filter, tc.topic); got != tc.want {
				t.Errorf("matches(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
			}
		})
	}
}

func BenchmarkMatches(b *testing.B) {
	for range b.N {
		matches("pi1/+/description", "pi1/gpio/description")
	}
}

// TestRouteOncePerSubscription: a message reaches every subscription whose
// filters match it, once each, however many of its filters match.
func TestRouteOncePerSubscription(t *testing.T) {
	s := &Session{subs: map[string]*subscription{}, done: make(chan struct{})}
	a := &subscription{queue: make(chan services.Message, 8)}
	b := &subscription{queue: make(chan services.Message, 8)}
	c := &subscription{queue: make(chan services.Message, 8)}
	for f, sub := range map[string]*subscription{
		"pi1/status": a, "+/status": a, "#": a, // three filters, one subscription
		"pi1/+":      b,
		"pi2/status": c,
	} {
		s.subs[f] = sub
	}
	s.rebuildRoutes()
	s.route(nil, fakeMessage{topic: "pi1/status", payload: "online", retained: true})
	for _, tc := range []struct {
		name string
		sub  *subscription
		want int
	}{{"three matching filters", a, 1}, {"one matching filter", b, 1}, {"no matching filter", c, 0}} {
		if got := len(tc.sub.queue); got != tc.want {
			t.Errorf("%s: %d messages, want %d", tc.name, got, tc.want)
		}
	}
	if m := <-a.queue; m.Topic != "pi1/status" || string(m.Payload) != "online" || !m.Retained {
		t.Errorf("delivered %+v", m)
	}
	if n := s.counts.received.Load(); n != 2 {
		t.Errorf("received counted %d, want 2 (one per subscription)", n)
	}
}

// fakeMessage is a paho.Message as the router sees it.
type fakeMessage struct {
	paho.Message
	topic, payload string
	retained       bool
}

func (m fakeMessage) Topic() string   { return m.topic }
func (m fakeMessage) Payload() []byte { return []byte(m.payload) }
func (m fakeMessage) Retained() bool  { return m.retained }
