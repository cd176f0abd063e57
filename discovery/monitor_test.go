package discovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
)

// The agent's MQTT session, a services.Bus, is a Publisher.
var _ Publisher = services.Bus(nil)

// message is one publish seen by fakePublisher.
type message struct {
	topic    string
	qos      byte
	retained bool
	payload  []byte
}

// fakePublisher records publishes in a slice, and on a channel when one
// is given, so tests can wait for a publish from another goroutine.
type fakePublisher struct {
	mu   sync.Mutex
	msgs []message
	ch   chan message
	err  error
}

func (f *fakePublisher) Publish(topic string, qos byte, retained bool, payload []byte) error {
	m := message{topic, qos, retained, bytes.Clone(payload)}
	f.mu.Lock()
	f.msgs = append(f.msgs, m)
	err := f.err
	f.mu.Unlock()
	if f.ch != nil {
		f.ch <- m
	}
	return err
}

func (f *fakePublisher) reports(t *testing.T) []Report {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var rs []Report
	for _, m := range f.msgs {
		r, err := ParseReport(m.payload)
		if err != nil {
			t.Fatalf("monitor published a bad report %s: %v", m.payload, err)
		}
		rs = append(rs, r)
	}
	return rs
}

// fakeTime is a clock the test moves by hand.
type fakeTime struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeTime) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// AfterFunc runs on real time: tests that need jittered reports on their
// own schedule replace the monitor's after.
func (c *fakeTime) AfterFunc(d time.Duration, f func()) services.Timer { return time.AfterFunc(d, f) }
func (c *fakeTime) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// A host with two subnets on eth0 (ifindex 2) and one on wlan0 (3).
var testIfaces = map[int][]netip.Prefix{
	1: {netip.MustParsePrefix("127.0.0.1/8")},
	2: {netip.MustParsePrefix("10.0.0.5/24"), netip.MustParsePrefix("192.168.1.50/24")},
	3: {netip.MustParsePrefix("172.16.4.9/16")},
}

func testLookup(ifIndex int) ([]netip.Prefix, error) {
	if ifIndex == 0 {
		var all []netip.Prefix
		for _, i := range []int{1, 2, 3} {
			all = append(all, testIfaces[i]...)
		}
		return all, nil
	}
	ps, ok := testIfaces[ifIndex]
	if !ok {
		return nil, errors.New("no such interface")
	}
	return ps, nil
}

var (
	lanSweeper = netip.MustParseAddr("192.168.1.7")
	ourShortID = ShortID(machineA)
)

func newTestMonitor(t *testing.T, edit func(*MonitorConfig)) (*Monitor, *fakePublisher, *fakeTime) {
	t.Helper()
	clk := &fakeTime{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	cfg := MonitorConfig{
		Hostname:       "pibot01",
		Machine:        machineA,
		ExtAddr:        "173.95.174.120",
		Clock:          clk,
		InterfaceAddrs: testLookup,
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := NewMonitor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, &fakePublisher{}, clk
}

func probeBytes(t testing.TB, p Probe) []byte {
	t.Helper()
	if p.Cmd == "" {
		p.Cmd = CmdStatus
	}
	if p.ReplyTo == "" {
		p.ReplyTo = "sweeper"
	}
	if p.Topic == "" {
		p.Topic = DefaultReplyTopic
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dropReason(err error) string {
	var de *DropError
	if errors.As(err, &de) {
		return de.Reason
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return ""
}

func TestMonitorPublishesReport(t *testing.T) {
	tests := []struct {
		name    string
		topic   string
		perHost bool
		want    string
	}{
		{"shared topic", "", false, DefaultReportTopic},
		{"per host", "", true, DefaultReportTopic + "/pibot01"},
		{"per host below a configured topic", "site/report", true, "site/report/pibot01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, pub, _ := newTestMonitor(t, func(c *MonitorConfig) { c.ReportTopic, c.ReportPerHost = tt.topic, tt.perHost })
			if err := m.Handle(pub, probeBytes(t, Probe{ReplyTo: "pibot09", ID: 1241}), lanSweeper, 2); err != nil {
				t.Fatal(err)
			}
			if len(pub.msgs) != 1 {
				t.Fatalf("published %d messages, want 1", len(pub.msgs))
			}
			msg := pub.msgs[0]
			if msg.topic != tt.want || msg.qos != 0 || msg.retained {
				t.Errorf("published on %q qos %d retained %v, want %q qos 0 not retained", msg.topic, msg.qos, msg.retained, tt.want)
			}
			if m.ReportTopic() != tt.want {
				t.Errorf("ReportTopic() = %q, want %q", m.ReportTopic(), tt.want)
			}
			want := Report{Hostname: "pibot01", ReplyTo: "pibot09", Cmd: CmdGetStatus, IPAddr: "192.168.1.50",
				Topic: DefaultReplyTopic, ExtAddr: "173.95.174.120", ID: 1241, Machine: machineA, V: 1}
			if got := pub.reports(t)[0]; got != want {
				t.Errorf("report\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestMonitorIPAddr(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		ifIndex int
		want    string // ipaddr, or the drop reason
	}{
		{"first subnet of eth0", "10.0.0.77", 2, "10.0.0.5"},
		{"second subnet of eth0", "192.168.1.7", 2, "192.168.1.50"},
		{"wlan0", "172.16.200.1", 3, "172.16.4.9"},
		{"loopback", "127.0.0.1", 1, "127.0.0.1"},
		{"unknown interface falls back to all", "172.16.0.2", 0, "172.16.4.9"},
		{"source of another interface", "172.16.0.2", 2, DropOffSubnet},
		{"off-link source", "8.8.8.8", 2, DropOffSubnet},
		{"v4-mapped source", "::ffff:10.0.0.9", 2, "10.0.0.5"},
		{"interface gone", "10.0.0.9", 9, DropOffSubnet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, pub, _ := newTestMonitor(t, nil)
			err := m.Handle(pub, probeBytes(t, Probe{ID: 1}), netip.MustParseAddr(tt.src), tt.ifIndex)
			if err != nil {
				if r := dropReason(err); r != tt.want {
					t.Errorf("dropped (%v), want %s", err, tt.want)
				}
				if len(pub.msgs) != 0 {
					t.Error("dropped probe was answered")
				}
				return
			}
			if got := pub.reports(t)[0].IPAddr; got != tt.want {
				t.Errorf("ipaddr %s, want %s", got, tt.want)
			}
		})
	}
}

func TestMonitorDrops(t *testing.T) {
	key := []byte("k")
	signed := func(edit func(*Probe)) []byte {
		p := Probe{Cmd: CmdStatus, ReplyTo: "sweeper", Topic: DefaultReplyTopic, ID: 3}
		if err := Sign(&p, "k1", key, time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(&p)
		}
		return probeBytes(t, p)
	}
	tests := []struct {
		name string
		keys Keyring
		in   []byte
		want string
	}{
		{"too large", nil, append(probeBytes(t, Probe{ID: 1}), bytes.Repeat([]byte(" "), MaxDatagram)...), DropTooLarge},
		{"not json", nil, []byte("who are you"), DropMalformed},
		{"wildcard topic", nil, probeBytes(t, Probe{ID: 1, Topic: "/stat/#"}), DropInvalid},
		{"heard us", nil, probeBytes(t, Probe{ID: 1, Heard: []string{"00000000", ourShortID}}), DropHeard},
		{"reply onto a host's description", nil, probeBytes(t, Probe{ID: 1, Topic: "otherpi/description"}), DropReplyTopic},
		{"reply onto a host's status", nil, probeBytes(t, Probe{ID: 1, Topic: "otherpi/status"}), DropReplyTopic},
		{"reply onto the inventory", nil, probeBytes(t, Probe{ID: 1, Topic: "rollcall/inventory"}), DropReplyTopic},
		{"reply onto a setup", nil, probeBytes(t, Probe{ID: 1, Topic: "otherpi/gpio/setup"}), DropReplyTopic},
		{"reply onto the report topic", nil, probeBytes(t, Probe{ID: 1, Topic: DefaultReportTopic}), DropReplyTopic},
		{"reply onto another system's topic", nil, probeBytes(t, Probe{ID: 1, Topic: "zigbee2mqtt/bridge/request/permit_join"}), DropReplyTopic},
		// nats-server closes the connection of a client that publishes
		// these: one probe would disconnect every host.
		{"reply topic with a space", nil, probeBytes(t, Probe{ID: 1, Topic: "/stat/a b"}), DropReplyTopic},
		{"reply topic with a dot", nil, probeBytes(t, Probe{ID: 1, Topic: "/stat/a.b"}), DropReplyTopic},
		{"unsigned, keyed monitor", Keyring{"k1": key}, probeBytes(t, Probe{ID: 1}), DropUnsigned},
		{"unknown key", Keyring{"k2": key}, signed(nil), DropUnknownKey},
		{"forged mac", Keyring{"k1": key}, signed(func(p *Probe) { p.Topic = "/other" }), DropBadMAC},
		{"stale", Keyring{"k1": key}, signed(func(p *Probe) { p.TS -= 31000; Sign(p, "k1", key, time.UnixMilli(p.TS)) }), DropStale},
		{"signed ok", Keyring{"k1": key}, signed(nil), ""},
		{"signed, monitor without keys", nil, signed(nil), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, pub, _ := newTestMonitor(t, func(c *MonitorConfig) { c.Keys = tt.keys })
			err := m.Handle(pub, tt.in, lanSweeper, 2)
			if got := dropReason(err); got != tt.want {
				t.Fatalf("Handle = %v, want reason %q", err, tt.want)
			}
			st := m.Stats()
			if tt.want != "" {
				if len(pub.msgs) != 0 || st.Dropped[tt.want] != 1 || st.Published != 0 {
					t.Errorf("published %d, stats %+v; want one %s drop", len(pub.msgs), st, tt.want)
				}
			} else if len(pub.msgs) != 1 || st.Published != 1 {
				t.Errorf("published %d, stats %+v; want one publish", len(pub.msgs), st)
			}
			if st.Received != 1 {
				t.Errorf("received %d, want 1", st.Received)
			}
		})
	}
}

func TestMonitorReplay(t *testing.T) {
	key := []byte("k")
	m, pub, clk := newTestMonitor(t, func(c *MonitorConfig) { c.Keys = Keyring{"k1": key} })
	p := Probe{Cmd: CmdStatus, ReplyTo: "sweeper", Topic: DefaultReplyTopic, ID: 3}
	Sign(&p, "k1", key, clk.Now())
	b := probeBytes(t, p)
	if err := m.Handle(pub, b, lanSweeper, 2); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Second)
	if got := dropReason(m.Handle(pub, b, lanSweeper, 2)); got != DropReplay {
		t.Errorf("same datagram again: %q, want %s", got, DropReplay)
	}
	// A retransmission is signed afresh, and is answered again since it
	// does not list us as heard.
	Sign(&p, "k1", key, clk.Now())
	if err := m.Handle(pub, probeBytes(t, p), lanSweeper, 2); err != nil {
		t.Errorf("fresh retransmission: %v", err)
	}
	if st := m.Stats(); st.Published != 2 || st.Republished != 1 || st.Dropped[DropReplay] != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestMonitorReplayAfterRestart: a restarted monitor has forgotten the
// nonces it saw, so it refuses signed probes stamped before it started.
func TestMonitorReplayAfterRestart(t *testing.T) {
	key := []byte("k")
	m, pub, clk := newTestMonitor(t, func(c *MonitorConfig) { c.Keys = Keyring{"k1": key} })
	p := Probe{Cmd: CmdStatus, ReplyTo: "sweeper", Topic: DefaultReplyTopic, ID: 3}
	Sign(&p, "k1", key, clk.Now())
	captured := probeBytes(t, p)
	if err := m.Handle(pub, captured, lanSweeper, 2); err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Second)
	restarted, pub2, _ := newTestMonitor(t, func(c *MonitorConfig) {
		c.Keys = Keyring{"k1": key}
		c.Clock = clk
		c.NotBefore = clk.Now()
	})
	if got := dropReason(restarted.Handle(pub2, captured, lanSweeper, 2)); got != DropReplay {
		t.Errorf("a probe captured before the restart: %q, want %s", got, DropReplay)
	}
	clk.add(time.Millisecond)
	Sign(&p, "k1", key, clk.Now())
	if err := restarted.Handle(pub2, probeBytes(t, p), lanSweeper, 2); err != nil {
		t.Errorf("a fresh probe after the restart: %v", err)
	}
}

// The known-answer rules: answer a probe id once, stay silent when
// heard, answer again when a retransmission shows our answer was lost.
func TestMonitorDedup(t *testing.T) {
	type step struct {
		after   time.Duration
		probe   Probe
		src     string
		ifIndex int
		want    string // "" = published
	}
	heardUs := []string{ourShortID}
	tests := []struct {
		name            string
		steps           []step
		wantRepublished uint64
	}{
		{"retransmission that heard us", []step{
			{0, Probe{ID: 5}, "192.168.1.7", 2, ""},
			{20 * time.Millisecond, Probe{ID: 5, Heard: heardUs}, "192.168.1.7", 2, DropHeard},
		}, 0},
		{"retransmission that did not hear us", []step{
			{0, Probe{ID: 5}, "192.168.1.7", 2, ""},
			{20 * time.Millisecond, Probe{ID: 5, Heard: []string{"0a1b2c3d"}}, "192.168.1.7", 2, ""},
			{20 * time.Millisecond, Probe{ID: 5, Heard: []string{"0a1b2c3d", ourShortID}}, "192.168.1.7", 2, DropHeard},
		}, 1},
		{"same transmission on a second interface", []step{
			{0, Probe{ID: 5}, "192.168.1.7", 2, ""},
			{100 * time.Microsecond, Probe{ID: 5}, "172.16.0.1", 3, DropDuplicate},
		}, 0},
		{"heard on the first probe (monitor restarted)", []step{
			{0, Probe{ID: 5, Heard: heardUs}, "192.168.1.7", 2, DropHeard},
		}, 0},
		{"new id is a new sweep", []step{
			{0, Probe{ID: 5}, "192.168.1.7", 2, ""},
			{time.Second, Probe{ID: 6}, "192.168.1.7", 2, ""},
		}, 0},
		{"same id from another sweeper", []step{
			{0, Probe{ID: 5, ReplyTo: "laptop"}, "192.168.1.7", 2, ""},
			{time.Millisecond, Probe{ID: 5, ReplyTo: "pibot02"}, "192.168.1.8", 2, ""},
		}, 0},
		{"forgotten after the cache expires", []step{
			{0, Probe{ID: 5}, "192.168.1.7", 2, ""},
			{time.Hour, Probe{ID: 5}, "192.168.1.7", 2, ""},
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, pub, clk := newTestMonitor(t, nil)
			for i, s := range tt.steps {
				clk.add(s.after)
				err := m.Handle(pub, probeBytes(t, s.probe), netip.MustParseAddr(s.src), s.ifIndex)
				if got := dropReason(err); got != s.want {
					t.Errorf("step %d: %v, want %q", i, err, s.want)
				}
			}
			if st := m.Stats(); st.Republished != tt.wantRepublished {
				t.Errorf("republished %d, want %d", st.Republished, tt.wantRepublished)
			}
		})
	}
}

func TestMonitorAnsweredCacheBounded(t *testing.T) {
	m, pub, clk := newTestMonitor(t, func(c *MonitorConfig) { c.RatePerSource, c.GlobalRate = 1e9, 1e9 })
	for i := range 3 * maxAnswered {
		clk.add(time.Millisecond)
		m.Handle(pub, probeBytes(t, Probe{ID: int64(i)}), lanSweeper, 2)
	}
	if n := m.answered.len(); n > maxAnswered {
		t.Errorf("answered cache holds %d, cap %d", n, maxAnswered)
	}
	if len(m.answered.order) > 2*maxAnswered {
		t.Errorf("answered order holds %d", len(m.answered.order))
	}
}

func TestMonitorRateLimit(t *testing.T) {
	m, pub, clk := newTestMonitor(t, func(c *MonitorConfig) {
		c.RatePerSource, c.Burst = 2, 3
		c.GlobalRate, c.GlobalBurst = 4, 5
	})
	a, b := netip.MustParseAddr("192.168.1.7"), netip.MustParseAddr("192.168.1.8")
	id := int64(0)
	send := func(src netip.Addr) string {
		id++
		return dropReason(m.Handle(pub, probeBytes(t, Probe{ID: id}), src, 2))
	}
	for i := range 3 {
		if r := send(a); r != "" {
			t.Fatalf("probe %d within burst: %s", i, r)
		}
	}
	if r := send(a); r != DropRateLimited {
		t.Errorf("4th probe from a: %q, want %s", r, DropRateLimited)
	}
	// b has its own bucket, but only two global tokens are left.
	if r := send(b); r != "" {
		t.Errorf("b: %q", r)
	}
	if r := send(b); r != "" {
		t.Errorf("b: %q", r)
	}
	if r := send(b); r != DropRateLimited {
		t.Errorf("b over the global burst: %q, want %s", r, DropRateLimited)
	}
	clk.add(500 * time.Millisecond) // a regains one token, global two
	if r := send(a); r != "" {
		t.Errorf("a after refill: %q", r)
	}
	if r := send(a); r != DropRateLimited {
		t.Errorf("a again: %q, want %s", r, DropRateLimited)
	}
}

func TestMonitorJitter(t *testing.T) {
	m, pub, _ := newTestMonitor(t, nil)
	type timer struct {
		d time.Duration
		f func()
	}
	var timers []timer
	m.after = func(d time.Duration, f func()) func() bool {
		timers = append(timers, timer{d, f})
		return func() bool { return true }
	}
	if err := m.Handle(pub, probeBytes(t, Probe{ID: 1, JitterMS: 5000}), lanSweeper, 2); err != nil {
		t.Fatal(err)
	}
	if len(timers) != 1 || len(pub.msgs) != 0 {
		t.Fatalf("%d timers, %d publishes; want the publish deferred", len(timers), len(pub.msgs))
	}
	if d := timers[0].d; d < 0 || d >= MaxJitterMS*time.Millisecond {
		t.Errorf("jitter %v outside [0, %dms)", d, MaxJitterMS)
	}
	// A retransmission while our answer waits must not queue another.
	if r := dropReason(m.Handle(pub, probeBytes(t, Probe{ID: 1, JitterMS: 5000}), lanSweeper, 2)); r != DropDuplicate {
		t.Errorf("retransmission while pending: %q, want %s", r, DropDuplicate)
	}
	timers[0].f()
	if len(pub.msgs) != 1 {
		t.Errorf("%d publishes after the jitter, want 1", len(pub.msgs))
	}
}

func TestMonitorCancelsPendingOnStop(t *testing.T) {
	m, pub, _ := newTestMonitor(t, nil)
	var fire func()
	stopped := false
	m.after = func(d time.Duration, f func()) func() bool {
		fire = f
		return func() bool { stopped = true; return true }
	}
	m.Handle(pub, probeBytes(t, Probe{ID: 1, JitterMS: 100}), lanSweeper, 2)
	m.cancelPending()
	fire() // the timer raced the stop; the publish must still not happen
	if !stopped || len(pub.msgs) != 0 {
		t.Errorf("stopped %v, %d publishes; want the pending publish cancelled", stopped, len(pub.msgs))
	}
}

func TestMonitorPublishError(t *testing.T) {
	m, pub, _ := newTestMonitor(t, nil)
	pub.err = errors.New("broker gone")
	if r := dropReason(m.Handle(pub, probeBytes(t, Probe{ID: 1}), lanSweeper, 2)); r != DropPublish {
		t.Errorf("got %q, want %s", r, DropPublish)
	}
}

func TestMonitorWarningsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	m, pub, clk := newTestMonitor(t, func(c *MonitorConfig) { c.Logger = log })
	off := netip.MustParseAddr("8.8.8.8")
	for range 50 {
		m.Handle(pub, probeBytes(t, Probe{ID: 1}), off, 2)
	}
	clk.add(warnEvery)
	m.Handle(pub, probeBytes(t, Probe{ID: 1}), off, 2)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "suppressed=49") {
		t.Errorf("log:\n%s\nwant two warnings, the second counting 49 suppressed", buf.String())
	}
}

func TestNewMonitorRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  MonitorConfig
	}{
		{"no hostname", MonitorConfig{Machine: machineA}},
		{"hostname with slash", MonitorConfig{Hostname: "a/b", Machine: machineA}},
		{"no machine", MonitorConfig{Hostname: "a"}},
		{"wildcard report topic", MonitorConfig{Hostname: "a", Machine: machineA, ReportTopic: "/udp/#"}},
		{"reserved report topic", MonitorConfig{Hostname: "a", Machine: machineA, ReportTopic: "pi1/get"}},
		{"report topic per host reserved", MonitorConfig{Hostname: "get", Machine: machineA, ReportTopic: "pi1", ReportPerHost: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewMonitor(tt.cfg); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// A probe sent by a Broadcaster on lo reaches a real monitor socket, and
// the report names the loopback address.
func TestBroadcastToMonitorOnLoopback(t *testing.T) {
	for _, keyed := range []bool{false, true} {
		name := "unsigned"
		if keyed {
			name = "signed"
		}
		t.Run(name, func(t *testing.T) {
			key := []byte("loopback key")
			cfg := MonitorConfig{Addr: "0.0.0.0:0", Hostname: "pibot01", Machine: machineA}
			bcfg := BroadcastConfig{Interfaces: []string{"lo"}}
			if keyed {
				cfg.Keys = Keyring{"k1": key}
				bcfg.Key, bcfg.KeyID = key, "k1"
			}
			m, err := ListenMonitor(cfg)
			if err != nil {
				t.Fatal(err)
			}
			bcfg.Port = m.LocalAddr().(*net.UDPAddr).Port
			b, err := NewBroadcaster(bcfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })

			ctx, cancel := context.WithCancel(context.Background())
			pub := &fakePublisher{ch: make(chan message, 4)}
			done := make(chan error, 1)
			go func() { done <- m.Serve(ctx, pub) }()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Serve: %v", err)
				}
			})

			if err := b.Send(Probe{Cmd: CmdStatus, ReplyTo: "sweeper", Topic: DefaultReplyTopic, ID: 77}); err != nil {
				t.Fatal(err)
			}
			select {
			case msg := <-pub.ch:
				r, err := ParseReport(msg.payload)
				if err != nil {
					t.Fatal(err)
				}
				if r.ID != 77 || r.IPAddr != "127.0.0.1" || r.Hostname != "pibot01" {
					t.Errorf("report %+v", r)
				}
			case <-time.After(10 * time.Second): // a failure bound, not a wait
				t.Fatalf("no report; monitor stats %+v", m.Stats())
			}
		})
	}
}

// Several agents on one machine share the port; a broadcast on lo
// reaches each of them.
func TestTwoMonitorsShareThePort(t *testing.T) {
	pub := &fakePublisher{ch: make(chan message, 4)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	port := 0
	for _, host := range []string{"agent1", "agent2"} {
		m, err := ListenMonitor(MonitorConfig{Addr: fmt.Sprintf("0.0.0.0:%d", port), Hostname: host, Machine: "machine-" + host})
		if err != nil {
			t.Fatal(err)
		}
		port = m.LocalAddr().(*net.UDPAddr).Port
		wg.Add(1)
		go func() { defer wg.Done(); m.Serve(ctx, pub) }()
	}
	b, err := NewBroadcaster(BroadcastConfig{Port: port, Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Send(Probe{Cmd: CmdStatus, ReplyTo: "sweeper", Topic: DefaultReplyTopic, ID: 1}); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case msg := <-pub.ch:
			r, err := ParseReport(msg.payload)
			if err != nil {
				t.Fatal(err)
			}
			got[r.Hostname] = true
		case <-time.After(10 * time.Second): // a failure bound, not a wait
			t.Fatalf("reports from %v only", got)
		}
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	m, err := ListenMonitor(MonitorConfig{Addr: "127.0.0.1:0", Hostname: "h", Machine: machineA})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, &fakePublisher{}) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel = %v, want nil", err)
	}
}

func BenchmarkMonitorHandle(b *testing.B) {
	clk := &fakeTime{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	m, err := NewMonitor(MonitorConfig{
		Hostname: "pibot01", Machine: machineA, Clock: clk, InterfaceAddrs: testLookup,
		RatePerSource: 1e12, Burst: 1 << 30, GlobalRate: 1e12, GlobalBurst: 1 << 30,
	})
	if err != nil {
		b.Fatal(err)
	}
	pub := discard{}
	// Distinct ids, so every datagram goes the whole way to a publish.
	msgs := make([][]byte, 1024)
	for i := range msgs {
		msgs[i] = probeBytes(b, Probe{ID: int64(i), V: 1, Heard: []string{"0a1b2c3d", "11223344"}})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		clk.add(time.Minute) // let the answered cache forget
		if err := m.Handle(pub, msgs[i%len(msgs)], lanSweeper, 2); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

type discard struct{}

func (discard) Publish(string, byte, bool, []byte) error { return nil }
