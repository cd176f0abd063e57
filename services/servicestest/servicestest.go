// Package servicestest holds fakes for testing rollcall services without
// a broker or hardware, the way periph ships gpiotest: a Bus that records
// what a service publishes and delivers what a test sends, a Clock whose
// timers run when the test advances it, and a host's Claims with a bus and
// a pin already held.
//
// On them, what every service's tests do alike: a Harness runs a service
// as the agent would and sends it requests, reads its results, retained
// topics and state file, and checks that a refused request (a BadRequest
// of the project's corpus) changed nothing; FuzzSetup is the body of a
// service's setup fuzz test, SchemaCoversModel keeps its published schema
// in step with its configuration's structs.
package servicestest

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

// Timeout bounds every wait of these helpers; nothing sleeps.
const Timeout = 5 * time.Second

// Message is one message a Bus carried.
type Message struct {
	Topic    string
	Retained bool
	Payload  string
}

type subscription struct {
	filter string
	h      services.Handler
}

// Bus is a services.Bus that records every publish and, like a broker,
// delivers it to matching subscriptions, one handler call at a time. It
// keeps retained messages and delivers them to later subscriptions with
// the Retained flag, as a broker does.
type Bus struct {
	mu       sync.Mutex
	msgs     []Message
	subs     []subscription
	retained map[string]string
	changed  int
	wake     chan struct{}

	deliver sync.Mutex
}

var _ services.Bus = (*Bus)(nil)

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{wake: make(chan struct{}), retained: map[string]string{}} }

func (b *Bus) notify() {
	close(b.wake)
	b.wake = make(chan struct{})
}

// Publish implements services.Publisher.
func (b *Bus) Publish(topic string, qos byte, retained bool, payload []byte) error {
	b.mu.Lock()
	b.msgs = append(b.msgs, Message{topic, retained, string(payload)})
	if retained {
		if len(payload) == 0 {
			delete(b.retained, topic)
		} else {
			b.retained[topic] = string(payload)
		}
	}
	b.notify()
	subs := slices.Clone(b.subs)
	b.mu.Unlock()
	b.route(subs, services.Message{Topic: topic, Payload: payload})
	return nil
}

func (b *Bus) route(subs []subscription, m services.Message) {
	b.deliver.Lock()
	defer b.deliver.Unlock()
	for _, s := range subs {
		if Match(s.filter, m.Topic) {
			s.h(m)
		}
	}
}

// Subscribe implements services.Bus. Retained messages matching filter are
// delivered first, flagged Retained.
func (b *Bus) Subscribe(filter string, h services.Handler) error {
	b.mu.Lock()
	b.subs = append(b.subs, subscription{filter, h})
	var old []services.Message
	for t, p := range b.retained {
		if Match(filter, t) {
			old = append(old, services.Message{Topic: t, Payload: []byte(p), Retained: true})
		}
	}
	b.notify()
	b.mu.Unlock()
	slices.SortFunc(old, func(x, y services.Message) int { return strings.Compare(x.Topic, y.Topic) })
	for _, m := range old {
		b.route([]subscription{{filter, h}}, m)
	}
	return nil
}

// Changed implements services.Bus.
func (b *Bus) Changed() {
	b.mu.Lock()
	b.changed++
	b.notify()
	b.mu.Unlock()
}

// Retain stores a retained message as if another client had published it
// before the service subscribed.
func (b *Bus) Retain(topic, payload string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.retained[topic] = payload
}

// Retained returns the retained message on topic.
func (b *Bus) Retained(topic string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.retained[topic]
	return p, ok
}

// Send delivers a message from another client to the subscriptions.
func (b *Bus) Send(topic, payload string) {
	b.mu.Lock()
	subs := slices.Clone(b.subs)
	b.mu.Unlock()
	b.route(subs, services.Message{Topic: topic, Payload: []byte(payload)})
}

// Subscriptions returns how many subscriptions were made.
func (b *Bus) Subscriptions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// ChangedCount returns how many times Changed was called.
func (b *Bus) ChangedCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// WaitFor waits until cond holds over the messages so far, the number of
// Changed calls and of subscriptions.
func (b *Bus) WaitFor(t testing.TB, what string, cond func(msgs []Message, changed, subs int) bool) {
	t.Helper()
	deadline := time.After(Timeout)
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
			t.Fatalf("timed out waiting for %s; messages:\n%s", what, Dump(b.msgs))
		}
	}
}

// Dump formats messages one a line, for failure messages.
func Dump(msgs []Message) string {
	var sb strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&sb, "  %s %q retained=%v\n", m.Topic, m.Payload, m.Retained)
	}
	return sb.String()
}

// Mark returns the number of messages so far, to look only at later ones.
func (b *Bus) Mark() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

// Next waits for the first message on topic after mark from and returns it.
func (b *Bus) Next(t testing.TB, from int, topic string) Message {
	t.Helper()
	var got Message
	b.WaitFor(t, "a message on "+topic, func(msgs []Message, _, _ int) bool {
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

// Expect waits for a message on topic after from with payload want.
func (b *Bus) Expect(t testing.TB, from int, topic, want string) {
	t.Helper()
	b.WaitFor(t, fmt.Sprintf("%q on %s", want, topic), func(msgs []Message, _, _ int) bool {
		for _, m := range msgs[min(from, len(msgs)):] {
			if m.Topic == topic && m.Payload == want {
				return true
			}
		}
		return false
	})
}

// Since returns the messages after from.
func (b *Bus) Since(from int) []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs[min(from, len(b.msgs)):])
}

// Published returns the messages on topic after from.
func (b *Bus) Published(from int, topic string) []Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Message
	for _, m := range b.msgs[min(from, len(b.msgs)):] {
		if m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// Request sends payload to topic, one of the request topics of the
// service whose topics are st, and returns the result it causes: the first
// later result of the request's op.
func (b *Bus) Request(t testing.TB, st services.Topics, topic, payload string) Result {
	t.Helper()
	op := strings.Split(strings.TrimPrefix(topic, st.Host+"/"+st.Service+"/"), "/")[0]
	from := b.Mark()
	b.Send(topic, payload)
	return b.AwaitResult(t, st, from, op)
}

// AwaitResult waits for the first result of op after from.
func (b *Bus) AwaitResult(t testing.TB, st services.Topics, from int, op string) Result {
	t.Helper()
	var m Message
	b.WaitFor(t, "a "+op+" result", func(msgs []Message, _, _ int) bool {
		for _, x := range msgs[min(from, len(msgs)):] {
			var r services.Result
			if x.Topic == st.Result() && json.Unmarshal([]byte(x.Payload), &r) == nil && r.Op == op {
				m = x
				return true
			}
		}
		return false
	})
	return DecodeResult(t, m.Payload)
}

// Result is a services.Result with its data kept as JSON.
type Result struct {
	services.Result
	Data json.RawMessage `json:"data"`
}

// Problems returns every error of a result.
func (r Result) Problems() []services.Error {
	if len(r.Errors) > 0 {
		return r.Errors
	}
	if r.Error != nil {
		return []services.Error{*r.Error}
	}
	return nil
}

// HasError reports whether the result has an error with code at field.
func (r Result) HasError(code, field string) bool {
	for _, e := range r.Problems() {
		if e.Code == code && e.Field == field {
			return true
		}
	}
	return false
}

// DecodeResult decodes a result payload.
func DecodeResult(t testing.TB, payload string) Result {
	t.Helper()
	var r Result
	if err := json.Unmarshal([]byte(payload), &r); err != nil {
		t.Fatalf("result %q: %v", payload, err)
	}
	return r
}

// Match reports whether MQTT topic filter matches topic.
func Match(filter, topic string) bool {
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

// WaitUntil polls cond until it holds or Timeout passes: for state that
// has no channel to wait on (a fake pin's level).
func WaitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(Timeout)
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

// Claims returns a host's claims with i2c1 enabled (GPIO 2 and 3) and
// GPIO 4 held by "dht22", as on a Pi with a sensor HAT, plus holds.
func Claims(t testing.TB, holds map[string][]services.Claim) *services.Claims {
	t.Helper()
	c := services.NewClaims()
	if err := c.EnableBus("buses[0]", "i2c1"); err != nil {
		t.Fatal(err)
	}
	if errs := c.Replace("dht22", []services.Claim{services.PinClaim("pin", 4)}); errs != nil {
		t.Fatal(errs)
	}
	for owner, cl := range holds {
		if errs := c.Replace(owner, cl); errs != nil {
			t.Fatal(errs)
		}
	}
	return c
}
