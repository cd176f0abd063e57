package gpio

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
)

// waitTimeout bounds every wait in these tests; nothing sleeps.
const waitTimeout = 5 * time.Second

type message struct {
	Topic    string
	Retained bool
	Payload  string
}

type subscription struct {
	filter string
	h      services.Handler
}

// fakeBus records publishes and, like a broker, delivers them to matching
// subscriptions, one handler call at a time.
type fakeBus struct {
	mu      sync.Mutex
	msgs    []message
	subs    []subscription
	changed int
	wake    chan struct{}

	deliver sync.Mutex
}

func newFakeBus() *fakeBus { return &fakeBus{wake: make(chan struct{})} }

func (b *fakeBus) Publish(topic string, qos byte, retained bool, payload []byte) error {
	b.mu.Lock()
	b.msgs = append(b.msgs, message{topic, retained, string(payload)})
	close(b.wake)
	b.wake = make(chan struct{})
	subs := slices.Clone(b.subs)
	b.mu.Unlock()
	b.route(subs, topic, payload)
	return nil
}

func (b *fakeBus) route(subs []subscription, topic string, payload []byte) {
	b.deliver.Lock()
	defer b.deliver.Unlock()
	for _, s := range subs {
		if matchTopic(s.filter, topic) {
			s.h(topic, payload)
		}
	}
}

func (b *fakeBus) Subscribe(filter string, h services.Handler) error {
	b.mu.Lock()
	b.subs = append(b.subs, subscription{filter, h})
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
	return nil
}

func (b *fakeBus) Changed() {
	b.mu.Lock()
	b.changed++
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

// send delivers a message from "outside" (another client).
func (b *fakeBus) send(topic, payload string) {
	b.mu.Lock()
	subs := slices.Clone(b.subs)
	b.mu.Unlock()
	b.route(subs, topic, []byte(payload))
}

// waitFor waits until cond holds over the bus's state.
func (b *fakeBus) waitFor(t testing.TB, what string, cond func(msgs []message, changed, subs int) bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		b.mu.Lock()
		ok := cond(b.msgs, b.changed, len(b.subs))
		wake := b.wake
		b.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-wake:
		case <-deadline:
			b.mu.Lock()
			defer b.mu.Unlock()
			t.Fatalf("timed out waiting for %s; messages:\n%s", what, dump(b.msgs))
		}
	}
}

func dump(msgs []message) string {
	var sb strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&sb, "  %s %q retained=%v\n", m.Topic, m.Payload, m.Retained)
	}
	return sb.String()
}

// mark returns the number of messages so far, to look only at later ones.
func (b *fakeBus) mark() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

// next waits for the first message on topic after mark and returns it.
func (b *fakeBus) next(t testing.TB, from int, topic string) message {
	t.Helper()
	var got message
	b.waitFor(t, "a message on "+topic, func(msgs []message, _, _ int) bool {
		for _, m := range msgs[min(from, len(msgs)):] {
			if m.Topic == topic {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// last waits for a message on topic after from with payload want.
func (b *fakeBus) expect(t testing.TB, from int, topic, want string) {
	t.Helper()
	b.waitFor(t, fmt.Sprintf("%q on %s", want, topic), func(msgs []message, _, _ int) bool {
		for _, m := range msgs[min(from, len(msgs)):] {
			if m.Topic == topic && m.Payload == want {
				return true
			}
		}
		return false
	})
}

// result waits for the next result after from and decodes it.
func (b *fakeBus) result(t testing.TB, from int, host string) services.Result {
	t.Helper()
	m := b.next(t, from, host+"/gpio/result")
	return decodeResult(t, m.Payload)
}

// request sends payload to topic and returns the result it causes: the
// first later result of the request's op, since the result of an earlier
// request may still be on its way.
func (b *fakeBus) request(t testing.TB, host, topic, payload string) services.Result {
	t.Helper()
	op := strings.Split(strings.TrimPrefix(topic, host+"/gpio/"), "/")[0]
	from := b.mark()
	b.send(topic, payload)
	var m message
	b.waitFor(t, "a "+op+" result", func(msgs []message, _, _ int) bool {
		for _, x := range msgs[min(from, len(msgs)):] {
			var r services.Result
			if x.Topic == host+"/gpio/result" && json.Unmarshal([]byte(x.Payload), &r) == nil && r.Op == op {
				m = x
				return true
			}
		}
		return false
	})
	return decodeResult(t, m.Payload)
}

// since returns the messages after from.
func (b *fakeBus) since(from int) []message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs[min(from, len(b.msgs)):])
}

// published reports the messages on topic after from.
func (b *fakeBus) published(from int, topic string) []message {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []message
	for _, m := range b.msgs[min(from, len(b.msgs)):] {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

func matchTopic(filter, topic string) bool {
	f := strings.Split(filter, "/")
	p := strings.Split(topic, "/")
	for i, l := range f {
		if l == "#" {
			return true
		}
		if i >= len(p) {
			return false
		}
		if l != "+" && l != p[i] {
			return false
		}
	}
	return len(f) == len(p)
}

// fakeClock runs timers when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c    *fakeClock
	at   time.Time
	f    func()
	done bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// pending reports how many timers are waiting.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.done {
			n++
		}
	}
	return n
}

// Advance moves time on and runs every timer due, in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.done:
		case !t.at.After(c.now):
			t.done = true
			due = append(due, t)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.f()
	}
}

// waitUntil polls cond until it holds or the deadline passes; for state
// that has no channel to wait on (a fake pin's level).
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// decodeResult decodes a result, keeping its data as raw JSON.
func decodeResult(t testing.TB, payload string) services.Result {
	t.Helper()
	var r struct {
		services.Result
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(payload), &r); err != nil {
		t.Fatalf("result %q: %v", payload, err)
	}
	r.Result.Data = r.Data
	return r.Result
}
