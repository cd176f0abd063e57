package session

import (
	"strings"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rollcall/rollcall/services"
)

// The session routes incoming messages itself rather than through paho's
// per-filter handlers. paho tries every filter a client holds against
// every message, splitting both into levels each time (two allocations a
// filter a message): an agent holds some thirty filters, and a flood of
// requests cost it that much work per message before the estop queued
// behind them could be read. Here an exact filter is one map lookup and
// only wildcard filters are matched, level by level, without allocating.

// routes is the session's routing table, replaced whole on every
// subscription: the reader takes it without a lock.
type routes struct {
	exact map[string]*subscription
	wild  []wildRoute
}

type wildRoute struct {
	filter string
	sub    *subscription
}

// rebuildRoutes makes the routing table from s.subs; s.mu is held.
func (s *Session) rebuildRoutes() {
	r := &routes{exact: make(map[string]*subscription, len(s.subs))}
	for f, sub := range s.subs {
		if strings.ContainsAny(f, "+#") {
			r.wild = append(r.wild, wildRoute{f, sub})
		} else {
			r.exact[f] = sub
		}
	}
	s.routes.Store(r)
}

// route is paho's default handler, the only one: it hands a message to
// every subscription with a matching filter, once each, in the order the
// broker sent it.
func (s *Session) route(_ paho.Client, m paho.Message) {
	r := s.routes.Load()
	if r == nil {
		return
	}
	topic := m.Topic()
	msg := services.Message{Topic: topic, Payload: m.Payload(), Retained: m.Retained()}
	first := r.exact[topic]
	if first != nil {
		s.deliver(first, msg)
	}
	var done []*subscription // beyond first; rarely more than one
	for _, w := range r.wild {
		if w.sub == first || !matches(w.filter, topic) {
			continue
		}
		dup := false
		for _, d := range done {
			dup = dup || d == w.sub
		}
		if dup {
			continue
		}
		done = append(done, w.sub)
		s.deliver(w.sub, msg)
	}
}

// deliver queues msg for sub's handler, or drops it once the session is
// closed.
func (s *Session) deliver(sub *subscription, msg services.Message) {
	s.counts.received.Add(1)
	select {
	case sub.queue <- msg:
	case <-s.done:
	}
}

// matches reports whether an MQTT topic filter matches topic: "+" is one
// level, a trailing "#" the parent level and everything below it, and a
// topic starting with "$" is matched by no filter starting with a
// wildcard (MQTT 3.1.1, 4.7.2).
func matches(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return true
		}
		t, trest, tmore := strings.Cut(topic, "/")
		if f != "+" && f != t {
			return false
		}
		switch {
		case !fmore && !tmore:
			return true
		case !tmore:
			// The topic ends here: "a/#" matches "a".
			return frest == "#"
		case !fmore:
			return false
		}
		filter, topic = frest, trest
	}
}
