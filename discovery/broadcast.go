package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/ipv4"
)

// BroadcastConfig configures a Broadcaster.
type BroadcastConfig struct {
	// Port is the monitors' port, DefaultPort by default.
	Port int
	// Interfaces names the interfaces to sweep. Empty means every
	// interface that is up, broadcast-capable and not loopback. Naming
	// "lo" sends to 127.255.255.255, which reaches every agent on this
	// machine.
	Interfaces []string
	// Targets are extra addresses, "ip" or "ip:port", unicast or
	// broadcast, for hosts a broadcast does not reach.
	Targets []string
	// Key, when set, signs every probe with key id KeyID.
	Key   []byte
	KeyID string
	// Now is the clock for signatures, time.Now by default.
	Now func() time.Time
}

type destination struct {
	addr    netip.AddrPort
	ifIndex int // 0: let the routing table choose
}

// A Broadcaster sends probes to the directed broadcast address of every
// IPv4 subnet of the chosen interfaces, and to extra targets.
type Broadcaster struct {
	cfg   BroadcastConfig
	conn  net.PacketConn
	pc    *ipv4.PacketConn
	dests []destination
}

// NewBroadcaster works out the destinations and opens the sending socket.
// It fails when there is nowhere to send.
func NewBroadcaster(cfg BroadcastConfig) (*Broadcaster, error) {
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("broadcaster: port %d out of range", cfg.Port)
	}
	if cfg.Key != nil && !isToken(cfg.KeyID) {
		return nil, fmt.Errorf("broadcaster: key id %q: not 1-64 of [A-Za-z0-9._-]", cfg.KeyID)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dests, err := interfaceDestinations(cfg.Interfaces, uint16(cfg.Port))
	if err != nil {
		return nil, fmt.Errorf("broadcaster: %w", err)
	}
	for _, t := range cfg.Targets {
		ap, err := parseTarget(t, uint16(cfg.Port))
		if err != nil {
			return nil, fmt.Errorf("broadcaster: target %q: %w", t, err)
		}
		dests = append(dests, destination{addr: ap})
	}
	if len(dests) == 0 {
		return nil, errors.New("broadcaster: no destination: no up, broadcast-capable IPv4 interface and no targets")
	}
	lc := net.ListenConfig{Control: reuseBroadcast}
	c, err := lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:0")
	if err != nil {
		return nil, fmt.Errorf("broadcaster: listen: %w", err)
	}
	// Every host acknowledges a probe at once. The default receive buffer
	// (net.core.rmem_default, 208 KiB) holds about 250 acknowledgements;
	// the kernel drops the rest of a larger cluster's burst before the
	// sweep can read them. The kernel caps the size at net.core.rmem_max.
	if uc, ok := c.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(ackReadBuffer) // a smaller buffer only costs retransmissions
	}
	return &Broadcaster{cfg: cfg, conn: c, pc: ipv4.NewPacketConn(c), dests: dests}, nil
}

// interfaceDestinations returns the directed broadcast address of every
// IPv4 prefix of the named interfaces, or of all suitable ones. A
// directed broadcast names its subnet, so it leaves by the right
// interface even without a default route, where 255.255.255.255 fails.
func interfaceDestinations(names []string, port uint16) ([]destination, error) {
	var ifs []net.Interface
	if len(names) == 0 {
		all, err := net.Interfaces()
		if err != nil {
			return nil, fmt.Errorf("interfaces: %w", err)
		}
		for _, ifi := range all {
			if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagBroadcast != 0 && ifi.Flags&net.FlagLoopback == 0 {
				ifs = append(ifs, ifi)
			}
		}
	}
	for _, name := range names {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("interface %q: %w", name, err)
		}
		ifs = append(ifs, *ifi)
	}
	var dests []destination
	for _, ifi := range ifs {
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("interface %q addresses: %w", ifi.Name, err)
		}
		n := len(dests)
		for _, p := range toPrefixes(addrs) {
			if bc, ok := directedBroadcast(p); ok {
				dests = append(dests, destination{netip.AddrPortFrom(bc, port), ifi.Index})
			}
		}
		if n == len(dests) && len(names) > 0 {
			return nil, fmt.Errorf("interface %q: no IPv4 subnet to broadcast to", ifi.Name)
		}
	}
	return dests, nil
}

func parseTarget(s string, port uint16) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if !ap.Addr().Unmap().Is4() {
			return netip.AddrPort{}, errors.New("not an IPv4 address")
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, errors.New("not an IPv4 address or address:port")
	}
	if !a.Unmap().Is4() {
		return netip.AddrPort{}, errors.New("not an IPv4 address")
	}
	return netip.AddrPortFrom(a.Unmap(), port), nil
}

// Destinations lists where Send sends, in order.
func (b *Broadcaster) Destinations() []netip.AddrPort {
	out := make([]netip.AddrPort, len(b.dests))
	for i, d := range b.dests {
		out[i] = d.addr
	}
	return out
}

// Send sends p to every destination, signed with a fresh ts and nonce
// when the broadcaster has a key. It fails only when every destination
// failed: one unplugged interface must not stop a sweep.
func (b *Broadcaster) Send(p Probe) error {
	if b.cfg.Key != nil {
		if err := Sign(&p, b.cfg.KeyID, b.cfg.Key, b.cfg.Now()); err != nil {
			return fmt.Errorf("send probe: %w", err)
		}
	}
	payload, err := p.Marshal()
	if err != nil {
		return fmt.Errorf("send probe: %w", err)
	}
	if p.Ack != "" && len(payload) < ackProbeSize {
		// A monitor answers with no more bytes than it received: make room
		// for the largest acknowledgement.
		p.Pad = strings.Repeat("0", max(ackProbeSize-len(payload)-len(`,"pad":""`), 1))
		if payload, err = p.Marshal(); err != nil {
			return fmt.Errorf("send probe: %w", err)
		}
	}
	if len(payload) > MaxDatagram {
		return fmt.Errorf("send probe: %w: %d bytes", ErrTooLarge, len(payload))
	}
	var errs []error
	for _, d := range b.dests {
		var cm *ipv4.ControlMessage
		if d.ifIndex != 0 {
			cm = &ipv4.ControlMessage{IfIndex: d.ifIndex}
		}
		if _, err := b.pc.WriteTo(payload, cm, net.UDPAddrFromAddrPort(d.addr)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.addr, err))
		}
	}
	if len(errs) == len(b.dests) {
		return fmt.Errorf("send probe: %w", errors.Join(errs...))
	}
	return nil
}

// ackReadBuffer is the receive buffer a broadcaster asks for: room for the
// acknowledgements of a few thousand hosts.
const ackReadBuffer = 4 << 20

// ackProbeSize is the size a probe asking for an acknowledgement is padded
// to: the largest acknowledgement (a 64-byte host name, the longest
// token, ids and version at their longest, a mac) fits in it.
const ackProbeSize = 240

// ReadAcks reads the acknowledgements of the probe with id and token from
// the broadcaster's socket and sends them on out, until ctx ends or the
// broadcaster is closed. With a key, only acknowledgements signed with it
// are taken. Anything else arriving on the socket is dropped.
func (b *Broadcaster) ReadAcks(ctx context.Context, id int64, token string, out chan<- AckFrom) {
	stop := context.AfterFunc(ctx, func() { b.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, MaxDatagram+1)
	for {
		n, from, err := b.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			continue // an ICMP error queued on the socket
		}
		a, err := ParseAck(buf[:n])
		if err != nil || a.ID != id || a.Token != token {
			continue
		}
		if b.cfg.Key != nil && !VerifyAck(a, b.cfg.Key) {
			continue
		}
		var src netip.Addr
		if ua, ok := from.(*net.UDPAddr); ok {
			src, _ = netip.AddrFromSlice(ua.IP)
		}
		select {
		case out <- AckFrom{Ack: a, From: src.Unmap()}:
		case <-ctx.Done():
			return
		}
	}
}

// Close closes the sending socket.
func (b *Broadcaster) Close() error { return b.conn.Close() }
