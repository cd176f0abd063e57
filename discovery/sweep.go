package discovery

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/rollcall/rollcall/services"
)

// Defaults of a sweep.
const (
	DefaultTimeout       = 3 * time.Second
	DefaultQuiet         = 0
	DefaultFirstInterval = 20 * time.Millisecond
	DefaultMaxProbes     = 8
	// openQuiet is the least quiet period of a sweep that expects no
	// one in particular: with nothing to count against, silence is the
	// only sign that everyone has answered.
	openQuiet = 300 * time.Millisecond
	// maxHeard caps the heard list so a probe stays well under
	// MaxDatagram; a host left off only answers once more.
	maxHeard = 320
)

// SweepConfig configures a sweep. Zero values mean the defaults given.
type SweepConfig struct {
	// ReplyTo is the sweeper's hostname; Topic is where services answer,
	// DefaultReplyTopic by default; ID tells this sweep's replies from
	// those of others.
	ReplyTo, Topic string
	ID             int64
	// Expected names the hosts that should answer, from the retained
	// inventory and --hosts.
	Expected []string
	// ExpectCount asks for at least this many distinct hosts (machines).
	ExpectCount int
	// Timeout ends the sweep whatever happened, DefaultTimeout by default.
	Timeout time.Duration
	// Quiet is how long the sweep waits for stragglers once the expected
	// hosts are complete: none by default, since the expected hosts are
	// every host online. When nothing is expected it waits at least
	// 300ms after the last reply.
	Quiet time.Duration
	// FirstInterval is the first retransmission interval,
	// DefaultFirstInterval by default. Three retransmissions go out at
	// this interval, then the interval doubles each time.
	FirstInterval time.Duration
	// MaxProbes caps the transmissions of the probe, the first included,
	// DefaultMaxProbes by default.
	MaxProbes int
	// JitterMS asks monitors to spread their reports over this many
	// milliseconds (at most MaxJitterMS). Scale it with the cluster size.
	JitterMS int
	// AckToken, when set, asks monitors for UDP acknowledgements (see
	// Ack) carrying it.
	AckToken string
	// ExpectLater means the expected hosts are still being read (from
	// the retained topics): the sweep cannot settle until Expect is
	// called.
	ExpectLater bool
	// TopicPrefix is the topic prefix of the hosts swept: replies from
	// hosts under another prefix (their report's prefix, which replies
	// copy) answer on the same reply topic but are not counted.
	TopicPrefix services.Prefix
	// Clock is the sweep's time; nil is the real clock.
	Clock services.Clock
}

func (c SweepConfig) withDefaults() SweepConfig {
	if c.Topic == "" {
		c.Topic = DefaultReplyTopic
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Quiet < 0 {
		c.Quiet = DefaultQuiet
	}
	if c.FirstInterval <= 0 {
		c.FirstInterval = DefaultFirstInterval
	}
	if c.MaxProbes <= 0 {
		c.MaxProbes = DefaultMaxProbes
	}
	if c.Clock == nil {
		c.Clock = services.RealClock{}
	}
	return c
}

// SweepIO is what a sweep talks to: Send sends a probe; the channels bring
// what comes back. Any channel may be nil.
type SweepIO struct {
	Send    func(Probe) error
	Replies <-chan Reply
	// Acks are the monitors' UDP acknowledgements, already checked against
	// the sweep's id, token and key.
	Acks <-chan AckFrom
	// Summaries are hosts' retained summaries, read at the start and live.
	Summaries <-chan Summary
	// Expected brings the hosts the retained topics list as online, once,
	// when SweepConfig.ExpectLater is set.
	Expected <-chan []string
}

// An AckFrom is an acknowledgement and the address it came from.
type AckFrom struct {
	Ack
	From netip.Addr
}

// Sweep runs one sweep: it sends the probe, retransmits it under the same
// id with the hosts heard so far, and aggregates replies, acknowledgements
// and summaries until every expected host is complete (and a quiet period
// passed, when one is set), or until the timeout. Subscribe to the reply
// topic before calling Sweep, or the fastest hosts are missed.
//
// Sweep fails only if the first probe cannot be sent, or ctx ends; it
// still returns what it gathered. A failed retransmission is treated like
// a lost one.
func Sweep(ctx context.Context, cfg SweepConfig, io SweepIO) (Inventory, error) {
	if err := checkName("replyto", cfg.ReplyTo); err != nil {
		return Inventory{}, fmt.Errorf("sweep: %w", err)
	}
	if cfg.Topic != "" {
		if err := checkTopic("topic", cfg.Topic); err != nil {
			return Inventory{}, fmt.Errorf("sweep: %w", err)
		}
	}
	a := NewAggregator(cfg)
	clk := a.cfg.Clock
	if err := io.Send(a.Start(clk.Now())); err != nil {
		return a.Inventory(clk.Now()), fmt.Errorf("sweep: first probe: %w", err)
	}
	replies, acks, summaries, expected := io.Replies, io.Acks, io.Summaries, io.Expected
	for {
		now := clk.Now()
		if a.Done(now) {
			return a.Inventory(now), nil
		}
		wake, stop := services.After(clk, a.Next().Sub(now))
		select {
		case <-ctx.Done():
			stop()
			return a.Inventory(clk.Now()), fmt.Errorf("sweep: %w", ctx.Err())
		case r, ok := <-replies:
			stop()
			if !ok { // the subscription is gone; nothing more will come
				return a.Inventory(clk.Now()), nil
			}
			a.Add(r, clk.Now())
		case ak, ok := <-acks:
			stop()
			if !ok {
				acks = nil
				continue
			}
			a.AddAck(ak, clk.Now())
		case sm, ok := <-summaries:
			stop()
			if !ok {
				summaries = nil
				continue
			}
			a.AddSummary(sm, clk.Now())
		case names, ok := <-expected:
			stop()
			expected = nil
			if ok {
				a.Expect(names, clk.Now())
			}
		case <-wake:
			if p, ok := a.Retransmit(clk.Now()); ok {
				_ = io.Send(p) // a failed retransmission is a lost one
			}
		}
	}
}

// An Aggregator is the logic of a sweep without its I/O: it decides when
// to retransmit and when to stop, and builds the inventory from replies.
// It is told the time rather than reading a clock. It is not safe for
// concurrent use.
type Aggregator struct {
	cfg       SweepConfig
	expected  []string           // sorted, unique
	waiting   bool               // for the expected hosts (SweepConfig.ExpectLater)
	acks      map[string]AckFrom // by short machine id
	summaries map[string]Summary // by host name
	started   time.Time
	probes    int
	lastProbe time.Time
	lastReply time.Time
	settled   bool
	settledAt time.Time
	machines  map[string]*machineState
}

// machineState is what one machine told the sweep.
type machineState struct {
	id, hostname, ipaddr, extaddr string
	version                       uint64
	services                      map[string]ServiceInfo
	wants                         map[string]bool // union of host_services
	external                      map[string]bool // services the summary marks external
}

// complete reports whether every service the machine listed has replied.
func (m *machineState) complete() bool {
	for fn := range m.wants {
		if _, ok := m.services[fn]; !ok {
			return false
		}
	}
	return len(m.services) > 0
}

// NewAggregator returns an aggregator for one sweep; cfg's Clock is not
// used by the aggregator itself.
func NewAggregator(cfg SweepConfig) *Aggregator {
	cfg = cfg.withDefaults()
	exp := slices.Clone(cfg.Expected)
	slices.Sort(exp)
	return &Aggregator{
		cfg:       cfg,
		expected:  slices.Compact(exp),
		waiting:   cfg.ExpectLater,
		acks:      make(map[string]AckFrom),
		summaries: make(map[string]Summary),
		machines:  make(map[string]*machineState),
	}
}

// Start marks the sweep as started at now and returns the first probe.
func (a *Aggregator) Start(now time.Time) Probe {
	a.started, a.lastProbe, a.probes = now, now, 1
	return a.probe()
}

func (a *Aggregator) probe() Probe {
	return Probe{
		Cmd:      CmdStatus,
		ReplyTo:  a.cfg.ReplyTo,
		Topic:    a.cfg.Topic,
		ID:       a.cfg.ID,
		V:        Version,
		Heard:    a.Heard(),
		JitterMS: a.cfg.JitterMS,
		Ack:      a.cfg.AckToken,
	}
}

// expecting reports whether the sweep knows whom to wait for.
func (a *Aggregator) expecting() bool {
	return len(a.expected) > 0 || a.cfg.ExpectCount > 0
}

// Expect adds the hosts the sweep learned it must wait for once it had
// started (those the retained topics list as online), and lets it settle.
func (a *Aggregator) Expect(names []string, now time.Time) {
	exp := append(a.expected, names...)
	slices.Sort(exp)
	a.expected = slices.Compact(exp)
	a.waiting = false
	a.resettle(now)
}

// AddAck takes one acknowledgement received at now. A host that
// acknowledged the probe and whose summary the sweep holds at that
// version or later is complete but for its external services, which must
// reply themselves.
func (a *Aggregator) AddAck(ak AckFrom, now time.Time) {
	if ak.ID != a.cfg.ID || ak.Token != a.cfg.AckToken {
		return
	}
	if old, ok := a.acks[ak.Machine]; ok && old.Version >= ak.Version {
		return
	}
	a.acks[ak.Machine] = ak
	a.fromSummary(ak.Host, now)
}

// AddSummary takes a host's summary, from the retained read or live.
func (a *Aggregator) AddSummary(s Summary, now time.Time) {
	if old, ok := a.summaries[s.Host]; ok && old.Version > s.Version && old.Machine == s.Machine {
		return
	}
	a.summaries[s.Host] = s
	a.fromSummary(s.Host, now)
}

// fromSummary completes host from its summary where its acknowledgement
// allows.
func (a *Aggregator) fromSummary(host string, now time.Time) {
	s, ok := a.summaries[host]
	if !ok {
		return
	}
	ak, ok := a.acks[ShortID(s.Machine)]
	if !ok || ak.Host != host || s.Version < ak.Version {
		return
	}
	ip := ""
	if ak.From.IsValid() {
		ip = ak.From.Unmap().String()
	}
	m := a.machine(s.Machine, host, ip, s.ExtAddr)
	m.version = s.Version
	changed := false
	for _, si := range s.Services {
		m.wants[si.Function] = true
		if si.External {
			m.external[si.Function] = true
			if r, ok := m.services[si.Function]; ok && !r.External {
				r.External = true // its reply came first, without the mark
				m.services[si.Function] = r
			}
			continue // it answers for itself
		}
		if _, dup := m.services[si.Function]; !dup {
			m.services[si.Function] = withLists(si)
			changed = true
		}
	}
	if changed {
		a.lastReply = now
		a.resettle(now)
	}
}

func (a *Aggregator) machine(id, host, ipaddr, extaddr string) *machineState {
	m, ok := a.machines[id]
	if !ok {
		m = &machineState{
			id:       id,
			hostname: host,
			ipaddr:   ipaddr,
			extaddr:  extaddr,
			services: make(map[string]ServiceInfo),
			wants:    make(map[string]bool),
			external: make(map[string]bool),
		}
		a.machines[id] = m
	}
	return m
}

// resettle works out whether the sweep is settled after a change at now.
func (a *Aggregator) resettle(now time.Time) {
	was := a.settled
	a.settled = a.isSettled()
	// The sweep completes with the answer that completes the expected
	// set. With no one expected, every host heard is expected, so each new
	// answer completes it anew.
	if a.settled && (!was || !a.expecting()) {
		a.settledAt = now
	}
}

func withLists(si ServiceInfo) ServiceInfo {
	// Clients outside rollcall may leave the lists out; the inventory
	// still shows them as lists.
	if si.Inputs == nil {
		si.Inputs = []services.Interface{}
	}
	if si.Outputs == nil {
		si.Outputs = []services.Interface{}
	}
	return si
}

// gap is the interval after the n-th transmission: three at the first
// interval, then doubling, as RFC 6762 does, so that a dead host in the
// expected set costs a few probes rather than a flood.
func (a *Aggregator) gap(n int) time.Duration {
	if n <= 3 {
		return a.cfg.FirstInterval
	}
	shift := min(n-3, 20)
	return min(a.cfg.FirstInterval<<shift, a.cfg.Timeout)
}

// retransmitting reports whether more probes may go out: not once the
// probe budget is spent, nor once every expected host is complete. With
// no one expected, the sweep keeps probing for hosts whose probe was
// lost, and the heard list keeps that cheap.
func (a *Aggregator) retransmitting() bool {
	return a.probes < a.cfg.MaxProbes && !(a.expecting() && a.settled)
}

func (a *Aggregator) quiet() time.Duration {
	if a.expecting() {
		return a.cfg.Quiet
	}
	return max(a.cfg.Quiet, openQuiet)
}

// Retransmit returns the next retransmission if one is due at now.
func (a *Aggregator) Retransmit(now time.Time) (Probe, bool) {
	if !a.retransmitting() || now.Before(a.lastProbe.Add(a.gap(a.probes))) {
		return Probe{}, false
	}
	a.probes++
	a.lastProbe = now
	return a.probe(), true
}

// Next is when the aggregator next has something to do: a
// retransmission, the end of the quiet period, or the timeout.
func (a *Aggregator) Next() time.Time {
	next := a.started.Add(a.cfg.Timeout)
	if a.settled {
		next = minTime(next, a.lastReply.Add(a.quiet()))
	}
	if a.retransmitting() {
		next = minTime(next, a.lastProbe.Add(a.gap(a.probes)))
	}
	return next
}

// Done reports whether the sweep is over at now.
func (a *Aggregator) Done(now time.Time) bool {
	if !now.Before(a.started.Add(a.cfg.Timeout)) {
		return true
	}
	return a.settled && !now.Before(a.lastReply.Add(a.quiet()))
}

// Add takes one reply received at now. It reports whether the reply was
// new: replies to other probes and repeats of a (machine, function) are
// ignored.
func (a *Aggregator) Add(r Reply, now time.Time) bool {
	if r.ID != a.cfg.ID || r.Machine == "" || r.Function == "" || r.Hostname == "" {
		return false
	}
	if r.ReplyTo != "" && r.ReplyTo != a.cfg.ReplyTo {
		return false // another sweeper that happened to pick our id
	}
	if r.Prefix != a.cfg.TopicPrefix {
		return false // a host of another cluster sharing the broker
	}
	m := a.machine(r.Machine, r.Hostname, r.IPAddr, r.ExtAddr)
	if m.ipaddr == "" {
		m.ipaddr = r.IPAddr
	}
	for _, s := range r.HostServices {
		m.wants[s] = true
	}
	if _, dup := m.services[r.Function]; dup {
		return false
	}
	si := withLists(r.ServiceInfo)
	si.External = si.External || m.external[r.Function]
	m.services[r.Function] = si
	a.lastReply = now
	a.resettle(now)
	return true
}

// isSettled reports whether everyone the sweep waits for is complete:
// every machine heard has answered with all its services, every expected
// hostname has a machine, and there are at least ExpectCount machines.
func (a *Aggregator) isSettled() bool {
	if a.waiting || len(a.machines) == 0 || len(a.machines) < a.cfg.ExpectCount {
		return false
	}
	hosts := make(map[string]bool, len(a.machines))
	for _, m := range a.machines {
		if !m.complete() {
			return false
		}
		hosts[m.hostname] = true
	}
	for _, h := range a.expected {
		if !hosts[h] {
			return false
		}
	}
	return true
}

// Heard returns the short ids of the machines that answered with all
// their services, for the next retransmission: those stay silent, the
// rest answer (again).
func (a *Aggregator) Heard() []string {
	var ids []string
	for _, m := range a.machines {
		if m.complete() {
			ids = append(ids, ShortID(m.id))
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > maxHeard {
		ids = ids[:maxHeard]
	}
	return ids
}

// Inventory is the sweep's result as of now.
func (a *Aggregator) Inventory(now time.Time) Inventory {
	inv := Inventory{
		ID:        a.cfg.ID,
		ReplyTo:   a.cfg.ReplyTo,
		Topic:     a.cfg.Topic,
		Started:   a.started,
		ElapsedMS: ms(now.Sub(a.started)),
		Probes:    a.probes,
		Hosts:     []Host{},
		Missing:   []string{},
		Conflicts: []Conflict{},
		Complete:  a.settled,
	}
	if a.settled {
		inv.CompleteMS = ms(a.settledAt.Sub(a.started))
	}
	byName := make(map[string][]*machineState)
	for _, m := range a.machines {
		byName[m.hostname] = append(byName[m.hostname], m)
	}
	for _, m := range a.machines {
		if s, ok := a.summaries[m.hostname]; ok && s.Machine == m.id && m.version == 0 {
			// Answered over MQTT: its summary, read along, says which
			// description it answered from.
			m.version = s.Version
		}
		h := Host{
			Hostname: m.hostname,
			Machine:  m.id,
			IPAddr:   m.ipaddr,
			ExtAddr:  m.extaddr,
			Status:   StatusOnline,
			Conflict: len(byName[m.hostname]) > 1,
			Version:  m.version,
			Services: make([]ServiceInfo, 0, len(m.services)),
		}
		for _, s := range m.services {
			h.Services = append(h.Services, s)
		}
		slices.SortFunc(h.Services, func(x, y ServiceInfo) int { return cmp.Compare(x.Function, y.Function) })
		for fn := range m.wants {
			if _, ok := m.services[fn]; !ok {
				h.MissingServices = append(h.MissingServices, fn)
			}
		}
		slices.Sort(h.MissingServices)
		inv.Hosts = append(inv.Hosts, h)
	}
	for _, name := range a.expected {
		if len(byName[name]) == 0 {
			inv.Missing = append(inv.Missing, name)
			inv.Hosts = append(inv.Hosts, Host{Hostname: name, Status: StatusMissing, Services: []ServiceInfo{}})
		}
	}
	slices.SortFunc(inv.Hosts, func(x, y Host) int {
		return cmp.Or(cmp.Compare(x.Hostname, y.Hostname), cmp.Compare(x.Machine, y.Machine))
	})
	for name, ms := range byName {
		if len(ms) < 2 {
			continue
		}
		slices.SortFunc(ms, func(x, y *machineState) int { return cmp.Compare(x.id, y.id) })
		c := Conflict{Hostname: name}
		for _, m := range ms {
			c.Machines = append(c.Machines, m.id)
			c.IPAddrs = append(c.IPAddrs, m.ipaddr)
		}
		inv.Conflicts = append(inv.Conflicts, c)
	}
	slices.SortFunc(inv.Conflicts, func(x, y Conflict) int { return cmp.Compare(x.Hostname, y.Hostname) })
	return inv
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
