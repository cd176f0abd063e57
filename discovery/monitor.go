package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rollcall/rollcall/services"
	"golang.org/x/net/ipv4"
)

// A Publisher publishes one MQTT message. The agent's session satisfies it.
type Publisher interface {
	Publish(topic string, qos byte, retained bool, payload []byte) error
}

// MonitorConfig configures a Monitor. Zero values mean the defaults given.
type MonitorConfig struct {
	// Addr is the UDP address to listen on, ":4747" by default. The socket
	// is bound with SO_REUSEADDR, so several agents on one machine all
	// receive broadcasts (a unicast probe reaches only one of them).
	Addr string
	// Hostname and Machine (the full machine id) say who this host is;
	// ExtAddr is its external address, "" when it has none configured.
	Hostname, Machine, ExtAddr string
	// ReportTopic is where reports go, DefaultReportTopic by default.
	// With ReportPerHost they go one level below it, on
	// <ReportTopic>/<Hostname> (see Config.ReportPerHost).
	ReportTopic   string
	ReportPerHost bool
	// ReplyPrefixes are the topics a probe may ask answers on (see
	// CheckReplyTopic); DefaultReplyPrefix by default.
	ReplyPrefixes []string
	// TopicPrefix is the prefix of the host's topics (mqtt.topic_prefix):
	// a probe may not name one of them as its reply topic (see
	// CheckReplyTopicUnder), and reports carry it, so that a sweep tells
	// the hosts under its prefix from the others answering on the same
	// reply topic. The report and reply topics themselves are not under
	// it.
	TopicPrefix services.Prefix
	// OnReport, when set, is given every report before it is published:
	// the agent answers for its own services in process, from the value.
	OnReport func(Report)
	// Version, when set, gives the version of this host's description
	// for acknowledgements (see Ack); without it the monitor sends none.
	Version func() uint64

	// Keys, when not empty, makes the monitor drop every probe not signed
	// by one of them. ReplayWindow is the allowed clock skew and how long
	// nonces are remembered, DefaultReplayWindow by default.
	Keys         Keyring
	ReplayWindow time.Duration
	// NotBefore refuses signed probes stamped earlier, as replays: the
	// nonces a monitor remembers die with it, so a restarted monitor
	// (NotBefore its start) cannot tell a probe it answered before from
	// a new one. The zero time refuses nothing.
	NotBefore time.Time

	// RatePerSource and Burst size the token bucket of each source
	// address (20/s, burst 20 by default); GlobalRate and GlobalBurst the
	// one all sources share (100/s, burst 100).
	RatePerSource float64
	Burst         int
	GlobalRate    float64
	GlobalBurst   int

	// Logger gets one line per dropped probe, rate-limited where a sender
	// could make it noisy. Nil discards.
	Logger *slog.Logger
	// Clock is the monitor's time, the real clock by default.
	Clock services.Clock
	// InterfaceAddrs returns the addresses, with prefix lengths, of the
	// interface with index ifIndex, or of every interface when ifIndex is
	// 0. Nil asks the operating system. Tests inject a multi-homed host.
	InterfaceAddrs func(ifIndex int) ([]netip.Prefix, error)
}

// Reasons a monitor drops a datagram, as counted in MonitorStats.Dropped.
const (
	DropTooLarge    = "too_large"
	DropMalformed   = "malformed"
	DropInvalid     = "invalid"
	DropUnsigned    = "unsigned"
	DropUnknownKey  = "unknown_key"
	DropBadMAC      = "bad_mac"
	DropStale       = "stale"
	DropReplay      = "replay"
	DropOffSubnet   = "off_subnet"
	DropReplyTopic  = "reply_topic"
	DropRateLimited = "rate_limited"
	DropHeard       = "heard"
	DropDuplicate   = "duplicate"
	DropPublish     = "publish_failed"
	// Not drops: the probe was answered, only its acknowledgement was
	// not sent, and why.
	AckTooLarge = "ack_too_large"
	AckFailed   = "ack_failed"
)

// A DropError is what Handle returns for a datagram it did not answer.
type DropError struct {
	Reason string // one of the Drop constants
	Err    error

	// ack: a duplicate that must still be acknowledged (see admit).
	ack bool
}

func (e *DropError) Error() string { return "probe dropped (" + e.Reason + "): " + e.Err.Error() }
func (e *DropError) Unwrap() error { return e.Err }

// MonitorStats counts what a monitor did with the datagrams it received.
type MonitorStats struct {
	Received  uint64 `json:"received"`
	Published uint64 `json:"published"`
	// Republished counts reports published again because a retransmitted
	// probe did not list this host as heard; they are in Published too.
	Republished uint64 `json:"republished"`
	// Acked counts acknowledgements sent.
	Acked   uint64            `json:"acked"`
	Dropped map[string]uint64 `json:"dropped"`
}

const (
	// republishHoldoff keeps a host on two subnets of the sweeper from
	// reporting twice for one transmission: both copies arrive within
	// microseconds, while retransmissions are at least 20ms apart.
	republishHoldoff = 5 * time.Millisecond
	// answeredTTL is how long a monitor remembers a probe it answered,
	// longer than any sweep.
	answeredTTL = 30 * time.Second
	maxAnswered = 1024
	maxNonces   = 4096
	// ifaddrTTL is how long interface addresses are cached, so a flood of
	// datagrams does not turn into a flood of netlink requests.
	ifaddrTTL = 2 * time.Second
	// warnEvery limits warnings about dropped probes to one per reason.
	warnEvery = 10 * time.Second
)

// probeKey names one sweep: a sweeper and its probe id.
type probeKey struct {
	replyTo string
	id      int64
}

type answer struct {
	last    time.Time // last publish, or when one was scheduled
	pending bool      // a jittered publish has not happened yet
}

type ifaddrs struct {
	prefixes []netip.Prefix
	at       time.Time
}

type warnState struct {
	last       time.Time
	suppressed int
}

// A Monitor listens for probes and publishes a report for each one it
// accepts. It never sends anything back to a probe's source.
type Monitor struct {
	cfg   MonitorConfig
	log   *slog.Logger
	short string
	// topic is where this monitor publishes its reports.
	topic  string
	lookup func(int) ([]netip.Prefix, error)
	// after runs f after d; tests replace it to run jittered publishes
	// on their own schedule.
	after func(d time.Duration, f func()) (stop func() bool)
	// sendAck sends an acknowledgement datagram; set by ListenMonitor,
	// or by tests.
	sendAck func(b []byte, to netip.AddrPort, ifIndex int) error

	conn net.PacketConn
	pc   *ipv4.PacketConn

	mu       sync.Mutex
	limiter  *limiter
	nonces   *expiring[string, struct{}]
	answered *expiring[probeKey, answer]
	ifcache  map[int]ifaddrs
	warned   map[string]*warnState
	timers   map[int]func() bool
	nextT    int
	stats    MonitorStats
	// jobs, while Serve runs, queues the publishes for its publisher
	// goroutine: see Serve.
	jobs chan func()
}

// publishQueue is how many reports may wait for the MQTT session while
// Serve goes on reading probes: more than a sweep's retransmissions for
// the few sweepers of a cluster. A report that does not fit is dropped,
// as a lost one is; the sweep's retransmission brings it again.
const publishQueue = 64

// NewMonitor builds a monitor without a socket: feed it with Handle. Use
// ListenMonitor for one that reads its own socket.
func NewMonitor(cfg MonitorConfig) (*Monitor, error) {
	if cfg.Addr == "" {
		cfg.Addr = fmt.Sprintf(":%d", DefaultPort)
	}
	if cfg.ReportTopic == "" {
		cfg.ReportTopic = DefaultReportTopic
	}
	if len(cfg.ReplyPrefixes) == 0 {
		cfg.ReplyPrefixes = []string{DefaultReplyPrefix}
	}
	if cfg.ReplayWindow <= 0 {
		cfg.ReplayWindow = DefaultReplayWindow
	}
	if cfg.RatePerSource <= 0 {
		cfg.RatePerSource = 20
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 20
	}
	if cfg.GlobalRate <= 0 {
		cfg.GlobalRate = 100
	}
	if cfg.GlobalBurst <= 0 {
		cfg.GlobalBurst = 100
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = services.RealClock{}
	}
	if cfg.InterfaceAddrs == nil {
		cfg.InterfaceAddrs = systemPrefixes
	}
	if err := checkName("hostname", cfg.Hostname); err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	if cfg.Machine == "" {
		return nil, fmt.Errorf("monitor: %w", &FieldError{"machine", "missing"})
	}
	if err := checkTopic("report topic", cfg.ReportTopic); err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	dc := Config{ReportTopic: cfg.ReportTopic, ReportPerHost: cfg.ReportPerHost}
	if why := dc.CheckReportTopicUnder(cfg.TopicPrefix, cfg.Hostname); why != "" {
		return nil, fmt.Errorf("monitor: %w", &FieldError{"report topic", why})
	}
	if !printable(cfg.ExtAddr) {
		return nil, fmt.Errorf("monitor: %w", &FieldError{"extaddr", "not printable"})
	}
	return &Monitor{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "discovery-monitor"),
		short:  ShortID(cfg.Machine),
		topic:  dc.ReportTopicFor(cfg.Hostname),
		lookup: cfg.InterfaceAddrs,
		after: func(d time.Duration, f func()) func() bool {
			return cfg.Clock.AfterFunc(d, f).Stop
		},
		limiter:  newLimiter(cfg.RatePerSource, cfg.Burst, cfg.GlobalRate, cfg.GlobalBurst),
		nonces:   newExpiring[string, struct{}](maxNonces, 2*cfg.ReplayWindow),
		answered: newExpiring[probeKey, answer](maxAnswered, answeredTTL),
		ifcache:  make(map[int]ifaddrs),
		warned:   make(map[string]*warnState),
		timers:   make(map[int]func() bool),
		stats:    MonitorStats{Dropped: make(map[string]uint64)},
	}, nil
}

// ListenMonitor builds a monitor and binds its UDP socket on cfg.Addr
// (IPv4 only) with SO_REUSEADDR and SO_BROADCAST. Serve starts reading.
func ListenMonitor(cfg MonitorConfig) (*Monitor, error) {
	m, err := NewMonitor(cfg)
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{Control: reuseBroadcast}
	c, err := lc.ListenPacket(context.Background(), "udp4", m.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("monitor: listen %s: %w", m.cfg.Addr, err)
	}
	pc := ipv4.NewPacketConn(c)
	// Without the interface index we fall back to every interface's
	// addresses, which still does the on-link test, only less exactly.
	if err := pc.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true); err != nil {
		m.log.Warn("no interface index on received probes", "err", err)
	}
	m.conn, m.pc = c, pc
	m.sendAck = func(b []byte, to netip.AddrPort, ifIndex int) error {
		var cm *ipv4.ControlMessage
		if ifIndex != 0 {
			cm = &ipv4.ControlMessage{IfIndex: ifIndex}
		}
		_, err := pc.WriteTo(b, cm, net.UDPAddrFromAddrPort(to))
		return err
	}
	return m, nil
}

// LocalAddr is the address the monitor's socket is bound to.
func (m *Monitor) LocalAddr() net.Addr {
	if m.conn == nil {
		return nil
	}
	return m.conn.LocalAddr()
}

// ReportTopic is the topic the monitor publishes its reports on.
func (m *Monitor) ReportTopic() string { return m.topic }

// Close closes the socket, which ends Serve.
func (m *Monitor) Close() error {
	if m.conn == nil {
		return nil
	}
	return m.conn.Close()
}

// Serve reads probes until ctx ends or the monitor is closed, publishing
// reports with pub. Both ends are clean and return nil. pub must be safe
// for concurrent use: reports delayed by a probe's jitter are published
// from timer goroutines.
func (m *Monitor) Serve(ctx context.Context, pub Publisher) error {
	if m.pc == nil {
		return errors.New("monitor: serve: not listening (use ListenMonitor)")
	}
	stop := context.AfterFunc(ctx, func() { m.conn.Close() })
	defer stop()
	defer m.cancelPending()

	// Reports are published, and the host's services answer them, on a
	// goroutine of their own: publishing can block (paho waits up to its
	// write timeout when the connection is stalled, as a lossy link's
	// TCP retransmissions leave it for seconds), and the read loop must
	// go on acknowledging probes meanwhile: on such a link the UDP
	// acknowledgement is the one answer that gets through.
	jobs := make(chan func(), publishQueue)
	var stopped atomic.Bool
	go func() {
		for job := range jobs {
			if !stopped.Load() {
				job()
			}
		}
	}()
	m.mu.Lock()
	m.jobs = jobs
	m.mu.Unlock()
	defer func() {
		// Queued reports are dropped: once Serve returns, the monitor
		// says nothing more.
		stopped.Store(true)
		m.mu.Lock()
		m.jobs = nil
		close(jobs)
		m.mu.Unlock()
	}()

	// One byte more than allowed, so an oversized datagram shows as such
	// instead of being silently truncated into something parseable.
	buf := make([]byte, MaxDatagram+1)
	failures := 0
	for {
		n, cm, from, err := m.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			// UDP read errors are transient (an ICMP error queued on the
			// socket); only a socket that keeps failing ends the monitor.
			if failures++; failures > 100 {
				return fmt.Errorf("monitor: read: %w", err)
			}
			m.log.Warn("read probe", "err", err)
			continue
		}
		failures = 0
		var src netip.Addr
		if ua, ok := from.(*net.UDPAddr); ok {
			src, _ = netip.AddrFromSlice(ua.IP)
		}
		ifIndex := 0
		if cm != nil {
			ifIndex = cm.IfIndex
		}
		var port uint16
		if ua, ok := from.(*net.UDPAddr); ok {
			port = uint16(ua.Port)
		}
		m.HandleFrom(pub, buf[:n], netip.AddrPortFrom(src, port), ifIndex) // drops are logged and counted inside
	}
}

// Handle processes one datagram b from src, received on the interface
// with index ifIndex (0 if unknown). It publishes a report with pub, now
// or after the probe's jitter, and returns nil; or it returns a
// *DropError saying why it did not. Handle does not keep b.
func (m *Monitor) Handle(pub Publisher, b []byte, src netip.Addr, ifIndex int) error {
	return m.HandleFrom(pub, b, netip.AddrPortFrom(src, 0), ifIndex)
}

// HandleFrom is Handle for a datagram from a known port, where a probe
// that asks for an acknowledgement gets one.
func (m *Monitor) HandleFrom(pub Publisher, b []byte, from netip.AddrPort, ifIndex int) error {
	src := from.Addr().Unmap()
	m.mu.Lock()
	m.stats.Received++
	rep, jitter, republish, p, derr := m.admit(b, src, ifIndex)
	if derr != nil {
		if derr.ack && p.Ack != "" && from.Port() != 0 {
			m.ack(p, len(b), netip.AddrPortFrom(src, from.Port()), ifIndex)
		}
		m.drop(derr, src)
		m.mu.Unlock()
		return derr
	}
	if p.Ack != "" && from.Port() != 0 {
		m.ack(p, len(b), netip.AddrPortFrom(src, from.Port()), ifIndex)
	}
	payload, err := rep.Marshal()
	if err != nil { // cannot happen with validated fields; do not panic on it
		derr = &DropError{Reason: DropInvalid, Err: err}
		m.drop(derr, src)
		m.mu.Unlock()
		return derr
	}
	key := probeKey{rep.ReplyTo, rep.ID}
	if jitter <= 0 {
		if m.jobs != nil {
			derr := m.queue(func() { m.publish(pub, key, rep, payload, republish) })
			m.mu.Unlock()
			return derr
		}
		m.mu.Unlock()
		return m.publish(pub, key, rep, payload, republish)
	}
	// Spread the reports of many hosts over the sweep's jitter window,
	// so the broker sees a trickle rather than a burst.
	m.nextT++
	t := m.nextT
	m.timers[t] = m.after(jitter, func() {
		m.mu.Lock()
		_, live := m.timers[t]
		delete(m.timers, t)
		if live && m.jobs != nil {
			m.queue(func() { m.publish(pub, key, rep, payload, republish) })
			live = false
		}
		m.mu.Unlock()
		if live {
			m.publish(pub, key, rep, payload, republish)
		}
	})
	m.mu.Unlock()
	return nil
}

// admit runs every check on a datagram, cheapest and least trusting
// first, and records the probe as answered. m.mu is held.
func (m *Monitor) admit(b []byte, src netip.Addr, ifIndex int) (rep Report, jitter time.Duration, republish bool, p Probe, derr *DropError) {
	if len(b) > MaxDatagram {
		return rep, 0, false, p, &DropError{Reason: DropTooLarge, Err: fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))}
	}
	now := m.cfg.Clock.Now()
	local, err := m.localAddr(src, ifIndex, now)
	if err != nil {
		return rep, 0, false, p, &DropError{Reason: DropOffSubnet, Err: err}
	}
	if !m.limiter.allow(src, now) {
		return rep, 0, false, p, &DropError{Reason: DropRateLimited, Err: errors.New("over rate limit")}
	}
	p, err = ParseProbe(b)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return rep, 0, false, p, &DropError{Reason: DropInvalid, Err: err}
		}
		return rep, 0, false, p, &DropError{Reason: DropMalformed, Err: err}
	}
	if len(m.cfg.Keys) > 0 {
		if err := m.cfg.Keys.Verify(p, now, m.cfg.ReplayWindow); err != nil {
			return rep, 0, false, p, &DropError{Reason: authReason(err), Err: err}
		}
		if !m.cfg.NotBefore.IsZero() && time.UnixMilli(p.TS).Before(m.cfg.NotBefore) {
			return rep, 0, false, p, &DropError{Reason: DropReplay, Err: fmt.Errorf("%w: stamped %s, before this monitor started", ErrReplay, time.UnixMilli(p.TS).UTC().Format(time.RFC3339Nano))}
		}
		if m.nonces.get(p.Nonce, now) != nil {
			return rep, 0, false, p, &DropError{Reason: DropReplay, Err: fmt.Errorf("%w %s", ErrReplay, p.Nonce)}
		}
		m.nonces.put(p.Nonce, struct{}{}, now)
	}
	if why := CheckReplyTopicUnder(m.cfg.TopicPrefix, p.Topic, m.cfg.ReportTopic, m.cfg.ReplyPrefixes); why != "" {
		return rep, 0, false, p, &DropError{Reason: DropReplyTopic, Err: errors.New(why)}
	}
	if slices.Contains(p.Heard, m.short) {
		return rep, 0, false, p, &DropError{Reason: DropHeard, Err: errors.New("sweep already heard this host")}
	}
	key := probeKey{p.ReplyTo, p.ID}
	if a := m.answered.get(key, now); a != nil {
		// Answered before, yet the sweep has not heard us: our report or
		// the services' replies were lost, so answer again. Unless the
		// answer is still on its way, or this is the same transmission
		// arriving on a second interface.
		if a.pending || now.Sub(a.last) < republishHoldoff {
			// A retransmission while our report waits out its jitter
			// queues no second report, but it is acknowledged again:
			// its first acknowledgement may have been lost, and it is
			// all the sweeper waits for. The same transmission arriving
			// on a second interface (within the holdoff) is not.
			return rep, 0, false, p, &DropError{Reason: DropDuplicate, Err: errors.New("already answering this probe"),
				ack: now.Sub(a.last) >= republishHoldoff}
		}
		republish = true
	}
	if p.JitterMS > 0 {
		jitter = rand.N(time.Duration(min(p.JitterMS, MaxJitterMS)) * time.Millisecond)
	}
	if a := m.answered.get(key, now); a != nil {
		*a = answer{last: now, pending: jitter > 0}
	} else {
		m.answered.put(key, answer{last: now, pending: jitter > 0}, now)
	}
	return Report{
		Hostname: m.cfg.Hostname,
		ReplyTo:  p.ReplyTo,
		Cmd:      CmdGetStatus,
		IPAddr:   local.String(),
		Topic:    p.Topic,
		ExtAddr:  m.cfg.ExtAddr,
		ID:       p.ID,
		Machine:  m.cfg.Machine,
		V:        Version,
		Prefix:   m.cfg.TopicPrefix,
	}, jitter, republish, p, nil
}

// ack sends p's acknowledgement to from, if it is no larger than the
// probe. m.mu is held.
func (m *Monitor) ack(p Probe, probeLen int, to netip.AddrPort, ifIndex int) {
	if m.cfg.Version == nil || m.sendAck == nil {
		return
	}
	a := Ack{ID: p.ID, Token: p.Ack, Host: m.cfg.Hostname, Machine: m.short, Version: m.cfg.Version()}
	if len(m.cfg.Keys) > 0 {
		SignAck(&a, m.cfg.Keys[p.KID])
	}
	b, err := a.Marshal()
	if err != nil {
		return
	}
	if len(b) > probeLen {
		m.stats.Dropped[AckTooLarge]++
		m.log.Debug("no ack: it would be larger than the probe", "ack", len(b), "probe", probeLen)
		return
	}
	// AckCopies of it, as long as together they are no larger than the
	// probe.
	copies := max(min(AckCopies, probeLen/len(b)), 1)
	for range copies {
		if err := m.sendAck(b, to, ifIndex); err != nil {
			m.stats.Dropped[AckFailed]++
			m.log.Debug("ack not sent", "to", to, "err", err)
			return
		}
	}
	m.stats.Acked++
}

// AckCopies is how many copies of an acknowledgement a monitor sends. A
// probe and its acknowledgement cross the link once each: with 20% of
// frames lost each way, 36% of the pairs fail, and of 50 hosts one needs
// a seventh probe (340 ms into the sweep) in 4% of sweeps. With two
// copies 23% fail, and a sweep needing a seventh probe is rare (0.2% in
// simulation). The sweeper keeps the first copy it gets.
const AckCopies = 2

// queue hands a publish to Serve's publisher goroutine, or drops it when
// too many wait. m.mu is held.
func (m *Monitor) queue(job func()) *DropError {
	select {
	case m.jobs <- job:
		return nil
	default:
		derr := &DropError{Reason: DropPublish, Err: errors.New("too many reports waiting for the MQTT session")}
		m.drop(derr, netip.Addr{})
		return derr
	}
}

// publish sends one report at QoS 0, not retained: a report is only
// useful to the sweep running now, and a lost one is recovered by the
// sweep's retransmission.
func (m *Monitor) publish(pub Publisher, key probeKey, rep Report, payload []byte, republish bool) error {
	if m.cfg.OnReport != nil {
		m.cfg.OnReport(rep)
	}
	err := pub.Publish(m.topic, 0, false, payload)
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.answered.get(key, m.cfg.Clock.Now()); a != nil {
		a.pending = false
		a.last = m.cfg.Clock.Now()
	}
	if err != nil {
		derr := &DropError{Reason: DropPublish, Err: err}
		m.drop(derr, netip.Addr{})
		return derr
	}
	m.stats.Published++
	if republish {
		m.stats.Republished++
	}
	return nil
}

// cancelPending stops jittered publishes that have not happened: once
// Serve returns, the monitor says nothing more.
func (m *Monitor) cancelPending() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for t, stop := range m.timers {
		stop()
		delete(m.timers, t)
	}
}

// localAddr returns our address on the receiving interface in the subnet
// of src, or an error when src is not on that interface's subnets (RFC
// 6762 §11). The control message's destination is no help here: it is
// the broadcast address the probe was sent to, not ours.
func (m *Monitor) localAddr(src netip.Addr, ifIndex int, now time.Time) (netip.Addr, error) {
	if !src.IsValid() {
		return netip.Addr{}, errors.New("no source address")
	}
	c, ok := m.ifcache[ifIndex]
	if !ok || now.Sub(c.at) >= ifaddrTTL || now.Before(c.at) {
		ps, err := m.lookup(ifIndex)
		if err != nil {
			return netip.Addr{}, err
		}
		if len(m.ifcache) > 64 { // interfaces come and go; keep it small
			clear(m.ifcache)
		}
		c = ifaddrs{ps, now}
		m.ifcache[ifIndex] = c
	}
	if a, ok := localAddrFor(c.prefixes, src); ok {
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("source %s not on a subnet of interface %d", src, ifIndex)
}

// drop counts a dropped datagram and logs it. Drops that are part of the
// protocol's normal run are debug lines; the rest are warnings, one per
// reason per warnEvery, since whoever sends them controls how many.
func (m *Monitor) drop(derr *DropError, src netip.Addr) {
	m.stats.Dropped[derr.Reason]++
	if derr.Reason == DropHeard || derr.Reason == DropDuplicate {
		m.log.Debug("probe dropped", "reason", derr.Reason, "src", src, "err", derr.Err)
		return
	}
	now := m.cfg.Clock.Now()
	w := m.warned[derr.Reason]
	if w == nil {
		w = &warnState{}
		m.warned[derr.Reason] = w
	}
	if !w.last.IsZero() && now.Sub(w.last) < warnEvery {
		w.suppressed++
		m.log.Debug("probe dropped", "reason", derr.Reason, "src", src, "err", derr.Err)
		return
	}
	m.log.Warn("probe dropped", "reason", derr.Reason, "src", src, "err", derr.Err, "suppressed", w.suppressed)
	w.last, w.suppressed = now, 0
}

// Stats returns a copy of the monitor's counters.
func (m *Monitor) Stats() MonitorStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Dropped = make(map[string]uint64, len(m.stats.Dropped))
	for k, v := range m.stats.Dropped {
		s.Dropped[k] = v
	}
	return s
}

func authReason(err error) string {
	switch {
	case errors.Is(err, ErrUnknownKey):
		return DropUnknownKey
	case errors.Is(err, ErrBadMAC):
		return DropBadMAC
	case errors.Is(err, ErrStale):
		return DropStale
	}
	return DropUnsigned
}
