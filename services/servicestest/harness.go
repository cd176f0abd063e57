package servicestest

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
)

// A Service is what a Harness runs: a rollcall service built on
// services.Runtime, whose methods these are.
type Service interface {
	services.Service
	services.Serving
	services.Connector
	Topics() services.Topics
	Do(f func())
}

// Options say how a Harness runs its service.
type Options struct {
	// Host is the host's name, the first level of the service's topics;
	// "" is "pi1".
	Host string
	// Dir is the state directory; "" keeps nothing.
	Dir string
	// Holds are what other services of the host hold, beside what Claims
	// gives every harness (i2c1, and GPIO 4 held by dht22).
	Holds map[string][]services.Claim
	// Bus is the bus the service runs on; nil is a new one. Two services
	// given one bus hear each other, as on one broker.
	Bus *Bus
	// Sim runs the service on its simulated drivers (the agent's --sim).
	Sim bool
	// Sysfs is the root of the sysfs tree the service reads.
	Sysfs string
	// RealClock runs the service on the real clock, for tests of reads
	// that block; Harness.Clock then drives nothing.
	RealClock bool
}

// A Harness runs one service on a fake Bus and a fake Clock, on a host
// whose claims are those of Claims and Options.Holds, as the agent would
// run it, and stops it when the test ends. Build the service in the
// function given to Start, from the Env it gets: the harness's bus, clock
// and claims are then the service's.
type Harness[S Service] struct {
	// T is the test the harness runs for; its helpers fail it.
	T testing.TB
	// Svc is the service under test, Bus and Clock what it runs on,
	// Claims the host's record of what its services hold.
	Svc    S
	Bus    *Bus
	Clock  *Clock
	Claims *services.Claims
	// Dir is the state directory, "" when nothing is kept.
	Dir string
	// Topics are the service's topics.
	Topics services.Topics
	stop   func()
}

// Start builds a service with build, runs it, and returns once it serves
// its topics. The service stops when the test ends, or at Stop.
func Start[S Service](t testing.TB, o Options, build func(services.Env) (S, error)) *Harness[S] {
	t.Helper()
	if o.Host == "" {
		o.Host = "pi1"
	}
	h := &Harness[S]{T: t, Bus: o.Bus, Clock: NewClock(), Claims: Claims(t, o.Holds), Dir: o.Dir}
	if h.Bus == nil {
		h.Bus = NewBus()
	}
	env := services.Env{Host: o.Host, StateDir: o.Dir, Sim: o.Sim, Sysfs: o.Sysfs, Claims: h.Claims, Clock: h.Clock}
	if o.RealClock {
		env.Clock = nil
	}
	svc, err := build(env)
	if err != nil {
		t.Fatal(err)
	}
	h.Svc, h.Topics = svc, svc.Topics()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx, h.Bus) }()
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(Timeout):
			t.Fatal("Run did not return")
		}
	}
	t.Cleanup(h.stop)
	<-svc.Serving()
	return h
}

// Stop stops the service and waits until Run has returned: its hardware
// is released and its state file written, as after the agent stops.
func (h *Harness[S]) Stop() {
	h.T.Helper()
	h.stop()
}

// Request sends payload to the service's topic (relative: "setup",
// "set/lamp", "get/input/soil") and returns the result it causes.
func (h *Harness[S]) Request(topic, payload string) Result {
	h.T.Helper()
	return h.request(h.T, topic, payload)
}

func (h *Harness[S]) request(t testing.TB, topic, payload string) Result {
	t.Helper()
	return h.Bus.Request(t, h.Topics, h.Topics.Host+"/"+h.Topics.Service+"/"+topic, payload)
}

// OK sends a request and fails the test unless it succeeds.
func (h *Harness[S]) OK(topic, payload string) Result {
	h.T.Helper()
	r := h.Request(topic, payload)
	if r.Status != "ok" {
		h.T.Fatalf("%s %s: %+v", topic, payload, r.Problems())
	}
	return r
}

// Do runs f on the service's goroutine and waits for it: to read the
// service's own state without a race, or to know that what was queued
// before it has been served.
func (h *Harness[S]) Do(f func()) {
	h.T.Helper()
	done := make(chan struct{})
	h.Svc.Do(func() { f(); close(done) })
	select {
	case <-done:
	case <-time.After(Timeout):
		h.T.Fatal("the service's goroutine did not run")
	}
}

// Advance moves the fake clock on, which runs the timers due (a scan's
// reads among them) before it returns, and waits until the service has
// done what they asked of its goroutine.
func (h *Harness[S]) Advance(d time.Duration) {
	h.T.Helper()
	h.Clock.Advance(d)
	h.Do(func() {})
}

// Connected tells the service the session is up or down and waits until
// it has acted on it.
func (h *Harness[S]) Connected(up bool) {
	h.T.Helper()
	h.Svc.Connected(up)
	h.Do(func() {})
}

// Flush waits until everything the service has sent so far is on the
// bus: the answer to a setup query (an empty setup, which changes
// nothing) goes out after it, in order.
func (h *Harness[S]) Flush() {
	h.T.Helper()
	h.flush(h.T)
}

func (h *Harness[S]) flush(t testing.TB) {
	t.Helper()
	if r := h.request(t, "setup", ""); r.Status != "ok" {
		t.Fatalf("setup query: %+v", r.Problems())
	}
}

// Published returns the payloads published on topic after mark from,
// once everything sent so far has arrived.
func (h *Harness[S]) Published(from int, topic string) []string {
	h.T.Helper()
	h.Flush()
	var out []string
	for _, m := range h.Bus.Published(from, topic) {
		out = append(out, m.Payload)
	}
	return out
}

// ReadErrors returns the read errors the service reported unasked (op
// "read") after mark from, once everything sent so far has arrived.
func (h *Harness[S]) ReadErrors(from int) []Result {
	h.T.Helper()
	h.Flush()
	var out []Result
	for _, m := range h.Bus.Published(from, h.Topics.Result()) {
		if r := DecodeResult(h.T, m.Payload); r.Op == services.OpRead {
			out = append(out, r)
		}
	}
	return out
}

// Retained returns every retained message on the service's topics, as a
// client subscribing now would get them, once everything sent so far has
// arrived.
func (h *Harness[S]) Retained() map[string]string {
	h.T.Helper()
	return h.retained(h.T)
}

func (h *Harness[S]) retained(t testing.TB) map[string]string {
	t.Helper()
	h.flush(t)
	out := map[string]string{}
	for _, m := range h.Bus.Since(0) {
		if !m.Retained || !strings.HasPrefix(m.Topic, h.Topics.Host+"/"+h.Topics.Service+"/") {
			continue
		}
		if m.Payload == "" {
			delete(out, m.Topic)
		} else {
			out[m.Topic] = m.Payload
		}
	}
	return out
}

// File returns the content of file name in the state directory, "" when
// there is none.
func (h *Harness[S]) File(name string) string {
	b, _ := os.ReadFile(filepath.Join(h.Dir, name))
	return string(b)
}

// Saved returns the runtime's state file, <dir>/<service>.json.
func (h *Harness[S]) Saved() string { return h.File(h.Topics.Service + ".json") }

// DecodeState returns the State of a description as a client reads it,
// decoded into a T of the test's making (the runtime's halted, config
// and schema, and the service's own members).
func DecodeState[T any](t testing.TB, d services.Description) T {
	t.Helper()
	var st T
	b, err := json.Marshal(d.State)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("state %s: %v", b, err)
	}
	return st
}

// A Snapshot is what a request that is refused must leave as it was: the
// files of the state directory, the service's retained topics and its
// description's state (see Harness.Unchanged).
type Snapshot struct {
	mark     int
	files    map[string]string
	retained map[string]string
	state    string
}

// Snapshot takes a Snapshot, once everything sent so far has arrived.
func (h *Harness[S]) Snapshot() Snapshot {
	h.T.Helper()
	return h.snapshot(h.T)
}

func (h *Harness[S]) snapshot(t testing.TB) Snapshot {
	t.Helper()
	s := Snapshot{retained: h.retained(t), mark: h.Bus.Mark(), files: map[string]string{}}
	if entries, err := os.ReadDir(h.Dir); err == nil && h.Dir != "" {
		for _, e := range entries {
			s.files[e.Name()] = h.File(e.Name())
		}
	}
	b, err := json.Marshal(h.Svc.Describe().State)
	if err != nil {
		t.Fatal(err)
	}
	s.state = string(b)
	return s
}

// Unchanged fails t unless everything before holds is as it was, and
// nothing was published since on an input or output of the service.
func (h *Harness[S]) Unchanged(t testing.TB, before Snapshot) {
	t.Helper()
	now := h.snapshot(t)
	for _, m := range h.Bus.Since(before.mark) {
		if rest, ok := strings.CutPrefix(m.Topic, h.Topics.Host+"/"+h.Topics.Service+"/"); ok &&
			(strings.HasPrefix(rest, "input/") || strings.HasPrefix(rest, "output/")) {
			t.Errorf("published %s %q", m.Topic, m.Payload)
		}
	}
	if !maps.Equal(now.files, before.files) {
		t.Errorf("the state directory changed:\n%v\nwas\n%v", now.files, before.files)
	}
	if !maps.Equal(now.retained, before.retained) {
		t.Errorf("retained topics changed:\n%v\nwere\n%v", now.retained, before.retained)
	}
	if now.state != before.state {
		t.Errorf("the description's state changed:\n%s\nwas\n%s", now.state, before.state)
	}
}
