package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
)

var sweepStart = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a services.Clock the test moves. Every AfterFunc call is
// announced on armed, so a test knows the sweep is waiting before it moves
// time.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*fakeWaiter
	armed   chan time.Duration
}

type fakeWaiter struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func (w *fakeWaiter) Stop() bool {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	was := !w.stopped
	w.stopped = true
	return was
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: sweepStart, armed: make(chan time.Duration)}
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) AfterFunc(d time.Duration, f func()) services.Timer {
	c.mu.Lock()
	w := &fakeWaiter{c: c, at: c.now.Add(d), f: f}
	due := d <= 0
	if !due {
		c.waiters = append(c.waiters, w)
	}
	c.mu.Unlock()
	if due {
		f()
	}
	c.armed <- d
	return w
}

// set moves the clock to t and fires the waiters that are due.
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	kept := c.waiters[:0]
	var due []*fakeWaiter
	for _, w := range c.waiters {
		switch {
		case w.stopped:
		case w.at.After(t):
			kept = append(kept, w)
		default:
			w.stopped = true
			due = append(due, w)
		}
	}
	c.waiters = kept
	c.mu.Unlock()
	for _, w := range due {
		w.f()
	}
}

type sentProbe struct {
	at    time.Duration
	probe Probe
}

type sweepResult struct {
	inv Inventory
	err error
}

// sweepRun drives Sweep step by step on a fake clock: each step moves
// time or delivers a reply, then waits until the sweep waits again.
type sweepRun struct {
	t       *testing.T
	clk     *fakeClock
	replies chan Reply
	done    chan sweepResult
	cancel  context.CancelFunc
	wake    time.Time // when the sweep's current timer fires
	ended   *sweepResult

	mu   sync.Mutex
	sent []sentProbe
}

func startSweep(t *testing.T, cfg SweepConfig, sendErr error) *sweepRun {
	t.Helper()
	r := &sweepRun{t: t, clk: newFakeClock(), replies: make(chan Reply), done: make(chan sweepResult, 1)}
	cfg.Clock = r.clk
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	t.Cleanup(cancel)
	send := func(p Probe) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.sent = append(r.sent, sentProbe{r.clk.Now().Sub(sweepStart), p})
		return sendErr
	}
	go func() {
		inv, err := Sweep(ctx, cfg, SweepIO{Send: send, Replies: r.replies})
		r.done <- sweepResult{inv, err}
	}()
	r.wait()
	return r
}

// wait blocks until the sweep arms its next timer or returns.
func (r *sweepRun) wait() {
	r.t.Helper()
	select {
	case d := <-r.clk.armed:
		r.wake = r.clk.Now().Add(d)
	case res := <-r.done:
		r.ended = &res
	}
}

// fire moves time to the sweep's timer.
func (r *sweepRun) fire() {
	r.t.Helper()
	r.clk.set(r.wake)
	r.wait()
}

// reply delivers rep at the given time since the start, firing the
// sweep's timers on the way.
func (r *sweepRun) reply(at time.Duration, rep Reply) {
	r.t.Helper()
	for r.ended == nil && !r.wake.After(sweepStart.Add(at)) {
		r.fire()
	}
	if r.ended != nil {
		r.t.Fatalf("sweep ended before the reply at %v", at)
	}
	r.clk.set(sweepStart.Add(at))
	r.replies <- rep
	r.wait()
}

// finish runs the sweep's timers until it returns.
func (r *sweepRun) finish() (Inventory, error) {
	r.t.Helper()
	for r.ended == nil {
		r.fire()
	}
	return r.ended.inv, r.ended.err
}

func (r *sweepRun) probes() []sentProbe {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sent)
}

func reply(host, machine, fn string, hostServices ...string) Reply {
	return Reply{
		Report:       Report{Hostname: host, ReplyTo: "sweeper", Cmd: CmdGetStatus, IPAddr: testIPs[machine], Topic: DefaultReplyTopic, ID: 42, Machine: machine, V: 1},
		ServiceInfo:  ServiceInfo{Function: fn, Control: host + "/" + fn + "/control", Health: "ok"},
		HostServices: hostServices,
	}
}

const (
	machA = "aaaaaaaa00000000"
	machB = "bbbbbbbb00000000"
	machC = "cccccccc00000000"
)

var testIPs = map[string]string{machA: "10.0.0.1", machB: "10.0.0.2", machC: "10.0.0.3"}

func ms2d(ms ...int) []time.Duration {
	ds := make([]time.Duration, len(ms))
	for i, m := range ms {
		ds[i] = time.Duration(m) * time.Millisecond
	}
	return ds
}

func TestSweep(t *testing.T) {
	type delivery struct {
		at time.Duration
		r  Reply
	}
	tests := []struct {
		name       string
		cfg        SweepConfig
		replies    []delivery
		wantAt     []time.Duration // when probes went out
		wantHeard  [][]string      // heard list of each probe
		wantDone   time.Duration
		wantMS     float64 // complete_ms
		complete   bool
		missing    []string
		hostsCount int
	}{
		{
			name: "expected hosts complete early",
			cfg:  SweepConfig{Expected: []string{"a", "b"}},
			replies: []delivery{
				{3 * time.Millisecond, reply("a", machA, "gpio", "gpio")},
				{5 * time.Millisecond, reply("b", machB, "gpio", "ain", "gpio")},
				{7 * time.Millisecond, reply("b", machB, "ain", "ain", "gpio")},
			},
			wantAt: ms2d(0), wantHeard: [][]string{nil},
			wantDone: 7 * time.Millisecond, wantMS: 7, complete: true, missing: []string{}, hostsCount: 2,
		},
		{
			name:    "missing host: retransmit on the schedule, then time out",
			cfg:     SweepConfig{Expected: []string{"a", "b"}},
			replies: []delivery{{3 * time.Millisecond, reply("a", machA, "gpio", "gpio")}},
			wantAt:  ms2d(0, 20, 40, 60, 100, 180, 340, 660),
			wantHeard: [][]string{nil, {"aaaaaaaa"}, {"aaaaaaaa"}, {"aaaaaaaa"}, {"aaaaaaaa"},
				{"aaaaaaaa"}, {"aaaaaaaa"}, {"aaaaaaaa"}},
			wantDone: DefaultTimeout, complete: false, missing: []string{"b"}, hostsCount: 2,
		},
		{
			name: "lost reply recovered by a retransmission",
			cfg:  SweepConfig{Expected: []string{"a"}},
			replies: []delivery{
				{3 * time.Millisecond, reply("a", machA, "gpio", "ain", "gpio")},
				// ain's reply was lost; a is incomplete, so not heard,
				// and the retransmission at 20ms makes it answer again.
				{25 * time.Millisecond, reply("a", machA, "gpio", "ain", "gpio")},
				{26 * time.Millisecond, reply("a", machA, "ain", "ain", "gpio")},
			},
			wantAt: ms2d(0, 20), wantHeard: [][]string{nil, nil},
			wantDone: 26 * time.Millisecond, wantMS: 26, complete: true, missing: []string{}, hostsCount: 1,
		},
		{
			name: "nothing expected: 300ms quiet after the last reply",
			cfg:  SweepConfig{},
			replies: []delivery{
				{4 * time.Millisecond, reply("a", machA, "gpio", "gpio")},
				{90 * time.Millisecond, reply("c", machC, "gpio")}, // an external client: no host_services
			},
			wantAt:    ms2d(0, 20, 40, 60, 100, 180, 340),
			wantHeard: [][]string{nil, {"aaaaaaaa"}, {"aaaaaaaa"}, {"aaaaaaaa"}, {"aaaaaaaa", "cccccccc"}, {"aaaaaaaa", "cccccccc"}, {"aaaaaaaa", "cccccccc"}},
			wantDone:  390 * time.Millisecond, wantMS: 90, complete: true, missing: []string{}, hostsCount: 2,
		},
		{
			name:     "nothing expected, nobody answers",
			cfg:      SweepConfig{Timeout: time.Second},
			wantAt:   ms2d(0, 20, 40, 60, 100, 180, 340, 660),
			wantDone: time.Second, complete: false, missing: []string{}, wantHeard: make([][]string, 8),
		},
		{
			name: "expect count",
			cfg:  SweepConfig{ExpectCount: 2, Quiet: 10 * time.Millisecond},
			replies: []delivery{
				{3 * time.Millisecond, reply("a", machA, "gpio", "gpio")},
				{30 * time.Millisecond, reply("b", machB, "gpio", "gpio")},
			},
			wantAt: ms2d(0, 20), wantHeard: [][]string{nil, {"aaaaaaaa"}},
			wantDone: 40 * time.Millisecond, wantMS: 30, complete: true, missing: []string{}, hostsCount: 2,
		},
		{
			name: "duplicates and other sweeps do not extend the quiet period",
			cfg:  SweepConfig{Expected: []string{"a"}, Quiet: 25 * time.Millisecond},
			replies: []delivery{
				{3 * time.Millisecond, reply("a", machA, "gpio", "gpio")},
				{10 * time.Millisecond, reply("a", machA, "gpio", "gpio")},
				{20 * time.Millisecond, func() Reply { r := reply("x", machB, "gpio"); r.ID = 41; return r }()},
			},
			wantAt: ms2d(0), wantHeard: [][]string{nil},
			wantDone: 28 * time.Millisecond, wantMS: 3, complete: true, missing: []string{}, hostsCount: 1,
		},
		{
			name:   "probe budget",
			cfg:    SweepConfig{Expected: []string{"a"}, MaxProbes: 3, FirstInterval: 10 * time.Millisecond, Timeout: 500 * time.Millisecond},
			wantAt: ms2d(0, 10, 20), wantHeard: make([][]string, 3),
			wantDone: 500 * time.Millisecond, complete: false, missing: []string{"a"}, hostsCount: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.ReplyTo, tt.cfg.ID, tt.cfg.JitterMS = "sweeper", 42, 15
			run := startSweep(t, tt.cfg, nil)
			for _, d := range tt.replies {
				run.reply(d.at, d.r)
			}
			inv, err := run.finish()
			if err != nil {
				t.Fatal(err)
			}
			sent := run.probes()
			var at []time.Duration
			var heard [][]string
			for _, s := range sent {
				at = append(at, s.at)
				heard = append(heard, s.probe.Heard)
				if s.probe.ID != 42 || s.probe.ReplyTo != "sweeper" || s.probe.Topic != DefaultReplyTopic || s.probe.JitterMS != 15 || s.probe.V != 1 {
					t.Errorf("probe %+v", s.probe)
				}
			}
			if !slices.Equal(at, tt.wantAt) {
				t.Errorf("probes at %v, want %v", at, tt.wantAt)
			}
			if !reflect.DeepEqual(heard, tt.wantHeard) {
				t.Errorf("heard lists %q, want %q", heard, tt.wantHeard)
			}
			if got := time.Duration(inv.ElapsedMS * float64(time.Millisecond)); got != tt.wantDone {
				t.Errorf("ended at %v, want %v", got, tt.wantDone)
			}
			if inv.CompleteMS != tt.wantMS || inv.Complete != tt.complete {
				t.Errorf("complete %v at %vms, want %v at %vms", inv.Complete, inv.CompleteMS, tt.complete, tt.wantMS)
			}
			if inv.Probes != len(tt.wantAt) {
				t.Errorf("inventory counts %d probes, sent %d", inv.Probes, len(sent))
			}
			if !slices.Equal(inv.Missing, tt.missing) || inv.Missing == nil {
				t.Errorf("missing %q, want %q", inv.Missing, tt.missing)
			}
			if len(inv.Hosts) != tt.hostsCount {
				t.Errorf("%d hosts, want %d: %+v", len(inv.Hosts), tt.hostsCount, inv.Hosts)
			}
			if !inv.Started.Equal(sweepStart) || inv.ID != 42 || inv.ReplyTo != "sweeper" {
				t.Errorf("inventory header %+v", inv)
			}
		})
	}
}

func TestSweepEndsEarly(t *testing.T) {
	t.Run("context cancelled", func(t *testing.T) {
		run := startSweep(t, SweepConfig{ReplyTo: "sweeper", ID: 42, Expected: []string{"a"}}, nil)
		run.reply(time.Millisecond, reply("b", machB, "gpio"))
		run.cancel()
		run.wait()
		if run.ended == nil || !errors.Is(run.ended.err, context.Canceled) {
			t.Fatalf("ended %+v, want context.Canceled", run.ended)
		}
		if len(run.ended.inv.Hosts) != 2 {
			t.Errorf("partial inventory lost: %+v", run.ended.inv)
		}
	})
	t.Run("replies closed", func(t *testing.T) {
		run := startSweep(t, SweepConfig{ReplyTo: "s", ID: 42}, nil)
		close(run.replies)
		run.wait()
		if run.ended == nil || run.ended.err != nil {
			t.Fatalf("ended %+v, want a clean end", run.ended)
		}
	})
	t.Run("first probe fails", func(t *testing.T) {
		_, err := Sweep(context.Background(), SweepConfig{ReplyTo: "s", Clock: newFakeClock()}, SweepIO{Send: func(Probe) error { return errors.New("network down") }, Replies: nil})
		if err == nil || !strings.Contains(err.Error(), "network down") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("bad replyto", func(t *testing.T) {
		_, err := Sweep(context.Background(), SweepConfig{ReplyTo: "a/b"}, SweepIO{Send: func(Probe) error { return nil }, Replies: nil})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "replyto" {
			t.Errorf("err = %v", err)
		}
	})
}

func TestAggregatorSchedule(t *testing.T) {
	a := NewAggregator(SweepConfig{ReplyTo: "s", MaxProbes: 12, Timeout: time.Hour})
	var gaps []time.Duration
	for n := 1; n < 10; n++ {
		gaps = append(gaps, a.gap(n))
	}
	if want := ms2d(20, 20, 20, 40, 80, 160, 320, 640, 1280); !slices.Equal(gaps, want) {
		t.Errorf("gaps %v, want %v", gaps, want)
	}
	a = NewAggregator(SweepConfig{ReplyTo: "s", Timeout: time.Second, MaxProbes: 100})
	if g := a.gap(60); g != time.Second {
		t.Errorf("gap(60) = %v, want capped at the timeout", g)
	}
}

func TestAggregatorAdd(t *testing.T) {
	other := reply("a", machA, "gpio")
	other.ReplyTo = "another-sweeper"
	tests := []struct {
		name string
		r    Reply
		want bool
	}{
		{"first", reply("a", machA, "gpio"), true},
		{"duplicate", reply("a", machA, "gpio"), false},
		{"other function", reply("a", machA, "ain"), true},
		{"other probe id", func() Reply { r := reply("a", machA, "dac"); r.ID = 7; return r }(), false},
		{"other sweeper, same id", other, false},
		{"no machine", reply("a", "", "dac"), false},
		{"external client without replyto", func() Reply { r := reply("a", machA, "cam"); r.ReplyTo = ""; return r }(), true},
	}
	a := NewAggregator(SweepConfig{ReplyTo: "sweeper", ID: 42})
	a.Start(sweepStart)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.Add(tt.r, sweepStart); got != tt.want {
				t.Errorf("Add = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAggregatorConflict(t *testing.T) {
	a := NewAggregator(SweepConfig{ReplyTo: "sweeper", ID: 42, Expected: []string{"pibot01", "pibot02"}})
	a.Start(sweepStart)
	a.Add(reply("pibot01", machB, "gpio", "gpio"), sweepStart.Add(time.Millisecond))
	a.Add(reply("pibot01", machA, "gpio", "gpio"), sweepStart.Add(2*time.Millisecond))
	a.Add(reply("pibot01", machA, "ain", "gpio"), sweepStart.Add(2*time.Millisecond)) // extra service: counted, not waited for
	inv := a.Inventory(sweepStart.Add(time.Second))

	want := []Conflict{{Hostname: "pibot01", Machines: []string{machA, machB}, IPAddrs: []string{"10.0.0.1", "10.0.0.2"}}}
	if !reflect.DeepEqual(inv.Conflicts, want) {
		t.Errorf("conflicts %+v, want %+v", inv.Conflicts, want)
	}
	var got []string
	for _, h := range inv.Hosts {
		got = append(got, h.Hostname+"/"+h.Machine+"/"+h.Status)
		if h.Hostname == "pibot01" && !h.Conflict {
			t.Errorf("host %s not marked as conflicting", h.Machine)
		}
	}
	// Never merged: one entry per machine, sorted by hostname then machine.
	if want := []string{"pibot01/" + machA + "/online", "pibot01/" + machB + "/online", "pibot02//missing"}; !slices.Equal(got, want) {
		t.Errorf("hosts %q, want %q", got, want)
	}
	if len(inv.Hosts[0].Services) != 2 || len(inv.Hosts[1].Services) != 1 {
		t.Errorf("services merged across machines: %+v", inv.Hosts)
	}
}

func TestAggregatorHeardOnlyComplete(t *testing.T) {
	a := NewAggregator(SweepConfig{ReplyTo: "sweeper", ID: 42})
	a.Start(sweepStart)
	a.Add(reply("a", machA, "gpio", "ain", "gpio"), sweepStart)
	a.Add(reply("b", machB, "gpio", "gpio"), sweepStart)
	if got := a.Heard(); !slices.Equal(got, []string{"bbbbbbbb"}) {
		t.Errorf("heard %q; a is waiting for ain and must answer again", got)
	}
}

// An empty inventory marshals lists as [], never null: scripts iterate
// over them.
func TestInventoryJSON(t *testing.T) {
	a := NewAggregator(SweepConfig{ReplyTo: "sweeper", ID: 42})
	a.Start(sweepStart)
	b, err := json.Marshal(a.Inventory(sweepStart.Add(3 * time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "inventory_empty", b)
	if bytes.Contains(b, []byte("null")) {
		t.Errorf("null in %s", b)
	}
}

func TestInventoryTable(t *testing.T) {
	a := NewAggregator(SweepConfig{ReplyTo: "sweeper", ID: 42, Expected: []string{"pibot01", "pibot02", "pibot03"}})
	a.Start(sweepStart)
	for _, r := range []Reply{
		reply("pibot01", machA, "gpio", "ain", "dht22", "gpio"),
		reply("pibot01", machA, "ain", "ain", "dht22", "gpio"),
		reply("pibot03", machB, "gpio", "gpio"),
		reply("pibot03", machC, "gpio", "gpio"),
	} {
		a.Add(r, sweepStart.Add(4*time.Millisecond))
	}
	sick := reply("pibot01", machA, "dht22", "ain", "dht22", "gpio")
	sick.Health = "error"
	a.Add(sick, sweepStart.Add(5*time.Millisecond))
	inv := a.Inventory(sweepStart.Add(3 * time.Second))

	var buf bytes.Buffer
	inv.Table(&buf)
	golden(t, "table", buf.Bytes())
	b, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "inventory", b)
}

// A host that answered over MQTT is shown at the version of the summary
// read along with the sweep; another machine's summary under its name is
// not its version.
func TestAggregatorVersionFromSummary(t *testing.T) {
	a := NewAggregator(SweepConfig{ReplyTo: "sweeper", ID: 42})
	a.Start(sweepStart)
	a.AddSummary(Summary{Host: "a", Machine: machA, Version: 7}, sweepStart)
	a.AddSummary(Summary{Host: "b", Machine: machA, Version: 9}, sweepStart)
	a.Add(reply("a", machA, "gpio", "gpio"), sweepStart)
	a.Add(reply("b", machB, "gpio", "gpio"), sweepStart)
	inv := a.Inventory(sweepStart.Add(time.Second))
	got := map[string]uint64{}
	for _, h := range inv.Hosts {
		got[h.Hostname] = h.Version
	}
	if want := map[string]uint64{"a": 7, "b": 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("versions %v, want %v", got, want)
	}
}

// TestAggregatorPrefix: hosts of clusters under different topic prefixes
// answer on the same reply topic; a sweep counts only its own, and a reply
// carries its report's prefix through the wire.
func TestAggregatorPrefix(t *testing.T) {
	under := func(p services.Prefix, host, machine string) Reply {
		r := reply(host, machine, "gpio")
		r.Prefix = p
		return r
	}
	tests := []struct {
		name   string
		prefix services.Prefix
		r      Reply
		want   bool
	}{
		{"no prefix, a host with none", "", under("", "a", machA), true},
		{"no prefix, a host under site1", "", under("site1", "b", machB), false},
		{"site1, a host under site1", "site1", under("site1", "b", machB), true},
		{"site1, a host with none", "site1", under("", "a", machA), false},
		{"site1, a host under site2", "site1", under("site2", "c", machC), false},
		{"farm/north, its own", "farm/north", under("farm/north", "c", machC), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.r.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if tt.r.Prefix == "" && strings.Contains(string(b), `"prefix"`) {
				t.Errorf("a reply with no prefix names one: %s", b)
			}
			r, err := ParseReply(b)
			if err != nil {
				t.Fatal(err)
			}
			a := NewAggregator(SweepConfig{ReplyTo: "sweeper", ID: 42, TopicPrefix: tt.prefix})
			a.Start(sweepStart)
			if got := a.Add(r, sweepStart); got != tt.want {
				t.Errorf("Add = %v, want %v", got, tt.want)
			}
		})
	}
	bad := under("site1/", "a", machA)
	b, _ := bad.Marshal()
	if _, err := ParseReply(b); err == nil || !strings.Contains(err.Error(), "prefix") {
		t.Errorf("a reply with prefix %q parsed: %v", bad.Prefix, err)
	}
}
