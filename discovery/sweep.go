package discovery

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rollcall/rollcall/services"
)

// Defaults of a sweep.
const (
	DefaultTimeout       = 3 * time.Second
	DefaultQuiet         = 25 * time.Millisecond
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
	// hosts are complete, DefaultQuiet by default. When nothing is
	// expected it waits at least 300ms after the last reply.
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
	if c.Quiet <= 0 {
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

// Sweep runs one sweep: it sends the probe with send, retransmits it under
// the same id with the hosts heard so far, and aggregates replies until
// every expected host is complete and a quiet period passed, or until the
// timeout. Subscribe to the reply topic before calling Sweep, or the
// fastest hosts are missed.
//
// Sweep fails only if the first probe cannot be sent, or ctx ends; it
// still returns what it gathered. A failed retransmission is treated like
// a lost one.
func Sweep(ctx context.Context, cfg SweepConfig, send func(Probe) error, replies <-chan Reply) (Inventory, error) {
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
	if err := send(a.Start(clk.Now())); err != nil {
		return a.Inventory(clk.Now()), fmt.Errorf("sweep: first probe: %w", err)
	}
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
		case <-wake:
			if p, ok := a.Retransmit(clk.Now()); ok {
				_ = send(p) // a failed retransmission is a lost one
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
	expected  []string // sorted, unique
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
	services                      map[string]ServiceInfo
	wants                         map[string]bool // union of host_services
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
		cfg:      cfg,
		expected: slices.Compact(exp),
		machines: make(map[string]*machineState),
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
	}
}

// expecting reports whether the sweep knows whom to wait for.
func (a *Aggregator) expecting() bool {
	return len(a.expected) > 0 || a.cfg.ExpectCount > 0
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
	m, ok := a.machines[r.Machine]
	if !ok {
		m = &machineState{
			id:       r.Machine,
			hostname: r.Hostname,
			ipaddr:   r.IPAddr,
			extaddr:  r.ExtAddr,
			services: make(map[string]ServiceInfo),
			wants:    make(map[string]bool),
		}
		a.machines[r.Machine] = m
	}
	for _, s := range r.HostServices {
		m.wants[s] = true
	}
	if _, dup := m.services[r.Function]; dup {
		return false
	}
	si := r.ServiceInfo
	// Clients outside rollcall may leave the lists out; the inventory
	// still shows them as lists.
	if si.Inputs == nil {
		si.Inputs = []services.Interface{}
	}
	if si.Outputs == nil {
		si.Outputs = []services.Interface{}
	}
	m.services[r.Function] = si
	a.lastReply = now
	was := a.settled
	a.settled = a.isSettled()
	// The sweep completes with the reply that completes the expected set.
	// With no one expected, every host heard is expected, so each new
	// reply completes it anew.
	if a.settled && (!was || !a.expecting()) {
		a.settledAt = now
	}
	return true
}

// isSettled reports whether everyone the sweep waits for is complete:
// every machine heard has answered with all its services, every expected
// hostname has a machine, and there are at least ExpectCount machines.
func (a *Aggregator) isSettled() bool {
	if len(a.machines) == 0 || len(a.machines) < a.cfg.ExpectCount {
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
		h := Host{
			Hostname: m.hostname,
			Machine:  m.id,
			IPAddr:   m.ipaddr,
			ExtAddr:  m.extaddr,
			Status:   StatusOnline,
			Conflict: len(byName[m.hostname]) > 1,
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
