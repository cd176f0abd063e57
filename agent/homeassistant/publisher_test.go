package homeassistant

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
)

// fakeSession records what is published and, like a broker that lets
// the client read what it writes, delivers it back to a subscriber of
// the same topic, unless refusing is set (a broker whose ACL drops it).
type fakeSession struct {
	mu       sync.Mutex
	subs     map[string]services.Handler
	all      []msg
	refusing bool
	pub      chan msg
}

type msg struct {
	topic    string
	qos      byte
	retained bool
	payload  []byte
}

func newFakeSession() *fakeSession {
	return &fakeSession{subs: map[string]services.Handler{}, pub: make(chan msg, 100)}
}

func (f *fakeSession) Publish(topic string, qos byte, retained bool, payload []byte) error {
	m := msg{topic, qos, retained, bytes.Clone(payload)}
	f.mu.Lock()
	f.all = append(f.all, m)
	h, refusing := f.subs[topic], f.refusing
	f.mu.Unlock()
	if h != nil && !refusing {
		h(services.Message{Topic: topic, Payload: m.payload})
	}
	f.pub <- m
	return nil
}

func (f *fakeSession) Subscribe(filter string, h services.Handler) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs[filter] = h
	return nil
}

func (f *fakeSession) filters() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.subs {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// deliver hands a message to the subscriber of its topic, as the broker
// would.
func (f *fakeSession) deliver(m services.Message) {
	f.mu.Lock()
	h := f.subs[m.Topic]
	f.mu.Unlock()
	if h != nil {
		h(m)
	}
}

// next waits for the next publish.
func (f *fakeSession) next(t *testing.T) msg {
	t.Helper()
	select {
	case m := <-f.pub:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published within 5s")
		return msg{}
	}
}

// quiet checks that nothing is published for a while: what cannot be
// waited for, only given time.
func (f *fakeSession) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-f.pub:
		t.Fatalf("published %s %q, want nothing", m.topic, m.payload)
	case <-time.After(d):
	}
}

// logBuffer collects log lines for tests to look for.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func (l *logBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for l.count(s) == 0 {
		if time.Now().After(deadline) {
			l.mu.Lock()
			t.Fatalf("no log line with %q in:\n%s", s, l.b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type harness struct {
	t    *testing.T
	s    *fakeSession
	p    *Publisher
	logs *logBuffer
	dir  string
	done chan struct{}
}

// start runs a publisher until the test ends.
func start(t *testing.T, dir string, cfg Config, s *fakeSession, echoTimeout time.Duration) *harness {
	t.Helper()
	logs := &logBuffer{}
	p, err := NewPublisher(s, Options{
		Config: cfg, Host: "simpi", Machine: "5e1f0c0ffee0a11ce5e1f0c0ffee0a11",
		Info: Info{Version: "1.2.3"}, StateDir: dir, EchoTimeout: echoTimeout,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, s: s, p: p, logs: logs, dir: dir, done: make(chan struct{})}
	go func() { defer close(h.done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

var on = Config{Enabled: true, Prefix: DefaultPrefix}

const simpiTopic = "homeassistant/device/simpi/config"

func configOf(t *testing.T, d services.HostDescription) []byte {
	t.Helper()
	b, err := Generate(d, Info{Version: "1.2.3"}).JSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func withoutOutput(d services.HostDescription, service, name string) services.HostDescription {
	d.Services = slices.Clone(d.Services)
	for i, s := range d.Services {
		if s.Function == service {
			s.Outputs = slices.DeleteFunc(slices.Clone(s.Outputs), func(it services.Interface) bool { return it.Name == name })
			d.Services[i] = s
		}
	}
	return d
}

func components(t *testing.T, payload []byte) map[string]map[string]any {
	t.Helper()
	var c struct {
		Cmps map[string]map[string]any `json:"cmps"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("%v: %s", err, payload)
	}
	return c.Cmps
}

// waitState waits until the state file holds what ok wants: it is
// written after the publish that the test saw.
func waitState(t *testing.T, dir string, ok func(published) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st published
		b, err := os.ReadFile(filepath.Join(dir, StateFile))
		if err == nil {
			err = json.Unmarshal(b, &st)
		}
		if err == nil && ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state file %s (%v)", b, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPublisherOffDoesNothing(t *testing.T) {
	dir := t.TempDir()
	s := newFakeSession()
	h := start(t, dir, DefaultConfig(), s, 0)
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run keeps running with nothing to do")
	}
	h.p.Connected(true)
	h.p.Update(readDescription(t, "simpi.json"))
	if f := s.filters(); len(f) != 0 {
		t.Errorf("subscribed to %v", f)
	}
	s.quiet(t, 50*time.Millisecond)
	if _, err := os.Stat(filepath.Join(dir, StateFile)); err == nil {
		t.Error("state file written while off")
	}
}

func TestPublisherFollowsDescription(t *testing.T) {
	dir := t.TempDir()
	s := newFakeSession()
	h := start(t, dir, on, s, 0)
	if got, want := s.filters(), []string{"homeassistant/device/simpi/config", "homeassistant/status"}; !slices.Equal(got, want) {
		t.Fatalf("subscribed to %v, want %v", got, want)
	}
	full := readDescription(t, "simpi.json")
	noLamp := withoutOutput(full, "gpio", "lamp")

	h.p.Update(noLamp)
	h.p.Connected(true)
	m := s.next(t)
	if m.topic != simpiTopic || !m.retained || m.qos != 0 || !bytes.Equal(m.payload, configOf(t, noLamp)) {
		t.Fatalf("first publish %s retained=%v qos=%d %s", m.topic, m.retained, m.qos, m.payload)
	}
	waitState(t, dir, func(st published) bool {
		return st.Topic == simpiTopic && st.Components["gpio_pump_drive"] == "switch" && len(st.Components) == 10
	})

	// A reading changes the description's values, not the config.
	changed := noLamp
	changed.Version++
	h.p.Update(changed)
	// A retained "online" is Home Assistant's old birth, seen because we
	// subscribed: nothing to do.
	s.deliver(services.Message{Topic: "homeassistant/status", Payload: []byte("online"), Retained: true})
	// A pin set up: the config follows at once.
	h.p.Update(full)
	if m := s.next(t); !bytes.Equal(m.payload, configOf(t, full)) {
		t.Fatalf("after a pin was added, published %s", m.payload)
	}

	// Home Assistant restarted: the same config again.
	s.deliver(services.Message{Topic: "homeassistant/status", Payload: []byte("online")})
	if m := s.next(t); !bytes.Equal(m.payload, configOf(t, full)) {
		t.Fatalf("after Home Assistant's birth, published %s", m.payload)
	}
	s.deliver(services.Message{Topic: "homeassistant/status", Payload: []byte("offline")})

	// The pin removed while Home Assistant is down: the retained config
	// carries it with its platform alone, which is how Home Assistant
	// removes a component, until Home Assistant comes back.
	h.p.Update(noLamp)
	removal := s.next(t)
	tomb := components(t, removal.payload)
	if lamp := tomb["gpio_lamp"]; !removal.retained || len(lamp) != 1 || lamp["p"] != "switch" || len(tomb) != 11 {
		t.Errorf("removal config (retained %v): gpio_lamp %v among %d components", removal.retained, lamp, len(tomb))
	}
	s.quiet(t, 50*time.Millisecond)
	waitState(t, dir, func(st published) bool {
		return st.Components["gpio_lamp"] == "" && len(st.Components) == 10 && st.Removed["gpio_lamp"] == "switch"
	})
	// A reading changes nothing: the removal stays in the config.
	changed = noLamp
	changed.Version += 2
	h.p.Update(changed)
	s.quiet(t, 50*time.Millisecond)

	// Home Assistant back: the removal once more, then the config of
	// what there is, and the removal is done with.
	s.deliver(services.Message{Topic: "homeassistant/status", Payload: []byte("online")})
	if m := s.next(t); !bytes.Equal(m.payload, removal.payload) {
		t.Errorf("at Home Assistant's birth, published %s, want the removal config", m.payload)
	}
	if m := s.next(t); !bytes.Equal(m.payload, configOf(t, noLamp)) || !m.retained {
		t.Errorf("after the removal, published %s", m.payload)
	}
	waitState(t, dir, func(st published) bool { return len(st.Removed) == 0 && len(st.Components) == 10 })
	s.deliver(services.Message{Topic: "homeassistant/status", Payload: []byte("online")})
	if m := s.next(t); !bytes.Equal(m.payload, configOf(t, noLamp)) {
		t.Errorf("at the next birth, published %s, want the config alone", m.payload)
	}
	if n := h.logs.count("did not deliver back"); n != 0 {
		t.Errorf("%d warnings about a refusing broker from one that echoes", n)
	}
}

func TestPublisherAcrossRestarts(t *testing.T) {
	full := readDescription(t, "simpi.json")
	noLamp := withoutOutput(full, "gpio", "lamp")
	tests := []struct {
		name   string
		before published
		cfg    Config
		want   []string // topic and component keys of each publish, in order
	}{
		{
			name:   "pin removed while stopped",
			before: published{Topic: simpiTopic, Components: map[string]string{"gpio_lamp": "switch", "gpio_old": "binary_sensor"}},
			cfg:    on,
			want:   []string{simpiTopic + " +gpio_lamp:switch"},
		},
		{
			name:   "prefix changed",
			before: published{Topic: "ha/device/simpi/config", Components: map[string]string{"gpio_lamp": "switch", "gpio_old": "binary_sensor"}},
			cfg:    on,
			want:   []string{"ha/device/simpi/config (empty)", simpiTopic + " -gpio_lamp"},
		},
		{
			name:   "turned off",
			before: published{Topic: simpiTopic, Components: map[string]string{"gpio_lamp": "switch"}},
			cfg:    DefaultConfig(),
			want:   []string{simpiTopic + " (empty)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b, _ := json.Marshal(tc.before)
			if err := os.WriteFile(filepath.Join(dir, StateFile), b, 0o644); err != nil {
				t.Fatal(err)
			}
			s := newFakeSession()
			h := start(t, dir, tc.cfg, s, 0)
			h.p.Update(noLamp)
			h.p.Connected(true)
			for i, want := range tc.want {
				m := s.next(t)
				got := m.topic + " (empty)"
				if len(m.payload) > 0 {
					cmps := components(t, m.payload)
					got = m.topic + " -gpio_lamp"
					if lamp, ok := cmps["gpio_lamp"]; ok {
						got = m.topic + " +gpio_lamp:" + lamp["p"].(string)
						if len(lamp) != 1 {
							t.Errorf("publish %d: gpio_lamp %v, want its platform alone", i, lamp)
						}
					}
					// gpio_old went with the lamp: removed alike, then left out.
					if old, ok := cmps["gpio_old"]; ok != strings.Contains(got, "+") || ok && (len(old) != 1 || old["p"] != "binary_sensor") {
						t.Errorf("publish %d: gpio_old %v", i, old)
					}
				}
				if !m.retained {
					t.Errorf("publish %d not retained", i)
				}
				if got != want {
					t.Errorf("publish %d: %s, want %s", i, got, want)
				}
			}
			if tc.cfg.Enabled {
				waitState(t, dir, func(st published) bool {
					return st.Topic == simpiTopic && st.Components["gpio_old"] == "" && st.Components["gpio_lamp"] == ""
				})
				s.quiet(t, 50*time.Millisecond)
				return
			}
			// Off: the device gone, the state file goes, and the next
			// start does nothing at all.
			deadline := time.Now().Add(5 * time.Second)
			for {
				if _, err := os.Stat(filepath.Join(dir, StateFile)); os.IsNotExist(err) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("state file kept after the device was removed")
				}
				time.Sleep(5 * time.Millisecond)
			}
			s2 := newFakeSession()
			h2 := start(t, dir, tc.cfg, s2, 0)
			h2.p.Connected(true)
			if f := s2.filters(); len(f) != 0 {
				t.Errorf("second start subscribed to %v", f)
			}
			s2.quiet(t, 50*time.Millisecond)
		})
	}
}

func TestPublisherRefusingBroker(t *testing.T) {
	s := newFakeSession()
	s.refusing = true
	h := start(t, t.TempDir(), on, s, 20*time.Millisecond)
	full := readDescription(t, "simpi.json")
	h.p.Update(full)
	h.p.Connected(true)
	s.next(t)
	h.logs.waitFor(t, "did not deliver back")
	// It keeps trying on changes, without saying so again.
	h.p.Update(withoutOutput(full, "gpio", "lamp"))
	s.next(t)
	s.quiet(t, 100*time.Millisecond)
	if n := h.logs.count("did not deliver back"); n != 1 {
		t.Errorf("warned %d times, want once", n)
	}
	// The ACL fixed: the next config is taken, and said so.
	s.mu.Lock()
	s.refusing = false
	s.mu.Unlock()
	s.deliver(services.Message{Topic: "homeassistant/status", Payload: []byte("online")})
	s.next(t)
	h.logs.waitFor(t, "now takes")
}

// TestPublisherStopsWhenDropped: a broker that disconnects a client for
// publishing where it may not would kick the agent at every reconnect.
func TestPublisherStopsWhenDropped(t *testing.T) {
	s := newFakeSession()
	s.refusing = true
	h := start(t, t.TempDir(), on, s, time.Minute)
	h.p.Update(readDescription(t, "simpi.json"))
	for range maxDrops {
		h.p.Connected(true)
		s.next(t)
		h.p.Connected(false)
	}
	h.logs.waitFor(t, "not publishing it again until the agent restarts")
	h.p.Connected(true)
	s.quiet(t, 100*time.Millisecond)
}
