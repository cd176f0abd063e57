package dashboard

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// The live updates are server-sent events: one long GET, one event a
// change, reconnected by the browser on its own (EventSource), through
// any proxy that passes HTTP, with nothing beyond the standard library.
// Updates only flow one way; writes are plain POSTs.
//
// A page that reads slower than values arrive (a phone on a weak link,
// an input scanned at 1 kHz) must not make the dashboard queue without
// bound: each subscriber keeps only the latest value of each interface
// it has not been sent yet, so a slow reader skips values instead of
// falling behind, while a quick one gets every value at once.

// maxStreams bounds the open event streams: each holds a goroutine and a
// connection, and a Pi Zero has few of either to spare.
const maxStreams = 64

// eventQueue bounds the state and log events queued for one subscriber;
// one that falls this far behind is dropped, and its browser reconnects
// to a fresh state.
const eventQueue = 64

// keepalive is how often an idle stream gets a comment, so that proxies
// and NAT tables keep it open and a dead peer is found.
const keepalive = 25 * time.Second

// writeTimeout bounds one write to a stream: a peer that stops reading
// (gone without a FIN) is dropped.
const writeTimeout = 10 * time.Second

// hub fans events out to the subscribed streams.
type hub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

// subscriber is one stream's pending events.
type subscriber struct {
	mu     sync.Mutex
	frames [][]byte          // state and log events, in order
	values map[string][]byte // latest value event per interface
	order  []string          // keys of values, in arrival order
	wake   chan struct{}
	gone   chan struct{}
	once   sync.Once
}

func newHub() *hub { return &hub{subs: map[*subscriber]struct{}{}} }

// subscribe adds a stream; nil once the hub is closed or full.
func (h *hub) subscribe() *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.subs) >= maxStreams {
		return nil
	}
	s := &subscriber{values: map[string][]byte{}, wake: make(chan struct{}, 1), gone: make(chan struct{})}
	h.subs[s] = struct{}{}
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
	s.drop()
}

// close ends every stream: the dashboard is stopping.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		s.drop()
		delete(h.subs, s)
	}
}

// send queues a state or log event for every stream.
func (h *hub) send(event string, v any) {
	f := frame(event, v)
	h.each(func(s *subscriber) bool { return s.queue(f) })
}

// value queues a value event for every stream, replacing the value of the
// same interface that one has not been sent yet.
func (h *hub) value(v Value) {
	f := frame("value", v)
	k := v.key()
	h.each(func(s *subscriber) bool { s.latest(k, f); return true })
}

func (h *hub) each(f func(*subscriber) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if !f(s) {
			s.drop()
			delete(h.subs, s)
		}
	}
}

func (s *subscriber) queue(f []byte) bool {
	s.mu.Lock()
	if len(s.frames) >= eventQueue {
		s.mu.Unlock()
		return false
	}
	s.frames = append(s.frames, f)
	s.mu.Unlock()
	s.signal()
	return true
}

func (s *subscriber) latest(key string, f []byte) {
	s.mu.Lock()
	if _, ok := s.values[key]; !ok {
		s.order = append(s.order, key)
	}
	s.values[key] = f
	s.mu.Unlock()
	s.signal()
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) drop() { s.once.Do(func() { close(s.gone) }) }

// take returns what is pending: the ordered events first, then the
// values. A value pending now is at least as new as any state queued
// before it, so the page never goes back in time.
func (s *subscriber) take() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b bytes.Buffer
	for _, f := range s.frames {
		b.Write(f)
	}
	for _, k := range s.order {
		b.Write(s.values[k])
	}
	s.frames, s.order = s.frames[:0], s.order[:0]
	clear(s.values)
	return b.Bytes()
}

// frame encodes one server-sent event. JSON has no raw newline, so the
// data fits one line.
func frame(event string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte(`null`)
	}
	b := make([]byte, 0, len(event)+len(data)+16)
	b = append(b, "event: "...)
	b = append(b, event...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// stream serves one subscriber until the client goes, the hub closes or
// a write fails.
func (s *subscriber) stream(w http.ResponseWriter, r *http.Request, first []byte) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// Tells nginx not to buffer the stream.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(append([]byte("retry: 2000\n\n"), first...)) {
		return
	}
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.gone:
			return
		case <-tick.C:
			if !write([]byte(": keepalive\n\n")) {
				return
			}
		case <-s.wake:
			if b := s.take(); len(b) > 0 && !write(b) {
				return
			}
		}
	}
}
