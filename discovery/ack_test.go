package discovery

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// sentAck is an acknowledgement a test monitor sent.
type sentAck struct {
	b  []byte
	to netip.AddrPort
}

func ackMonitor(t *testing.T, edit func(*MonitorConfig)) (*Monitor, *fakePublisher, *[]sentAck) {
	t.Helper()
	m, pub, _ := newTestMonitor(t, func(c *MonitorConfig) {
		c.Version = func() uint64 { return 42 }
		if edit != nil {
			edit(c)
		}
	})
	var sent []sentAck
	m.sendAck = func(b []byte, to netip.AddrPort, _ int) error {
		sent = append(sent, sentAck{append([]byte(nil), b...), to})
		return nil
	}
	return m, pub, &sent
}

func TestMonitorAcks(t *testing.T) {
	from := netip.AddrPortFrom(lanSweeper, 40000)
	padded := func(p Probe) []byte {
		b := probeBytes(t, p)
		p.Pad = strings.Repeat("0", ackProbeSize-len(b))
		return probeBytes(t, p)
	}

	m, pub, sent := ackMonitor(t, nil)
	if err := m.HandleFrom(pub, padded(Probe{ID: 7, Ack: "0123abcd"}), from, 2); err != nil {
		t.Fatal(err)
	}
	if len(*sent) != AckCopies || (*sent)[0].to != from || string((*sent)[1].b) != string((*sent)[0].b) {
		t.Fatalf("acks %+v, want %d copies of one to %s", *sent, AckCopies, from)
	}
	a, err := ParseAck((*sent)[0].b)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != 7 || a.Token != "0123abcd" || a.Host != "pibot01" || a.Machine != ShortID(machineA) || a.Version != 42 || a.MAC != "" {
		t.Errorf("ack %+v", a)
	}
	if len(pub.msgs) != 1 {
		t.Error("the MQTT report must go out as well")
	}

	// A probe too small for two copies gets one; smaller than one, none:
	// no amplification.
	m, pub, sent = ackMonitor(t, nil)
	one := Probe{ID: 13, Ack: "0123abcd"} // unpadded: room for one
	if err := m.HandleFrom(pub, probeBytes(t, one), from, 2); err != nil {
		t.Fatal(err)
	}
	if len(*sent) != 1 {
		t.Errorf("%d acks for a probe of %d bytes with an ack of %d, want one", len(*sent), len(probeBytes(t, one)), len((*sent)[0].b))
	}

	m, pub, sent = ackMonitor(t, func(c *MonitorConfig) { c.Hostname = strings.Repeat("h", 64) })
	if err := m.HandleFrom(pub, probeBytes(t, Probe{ID: 8, Ack: "0123abcd"}), from, 2); err != nil {
		t.Fatal(err)
	}
	if len(*sent) != 0 || m.Stats().Dropped[AckTooLarge] != 1 {
		t.Errorf("a small probe was acknowledged: %+v", *sent)
	}

	// No ack without a token, a port or a version.
	m, pub, sent = ackMonitor(t, nil)
	m.HandleFrom(pub, padded(Probe{ID: 9}), from, 2)
	m.Handle(pub, padded(Probe{ID: 10, Ack: "0123abcd"}), lanSweeper, 2)
	if len(*sent) != 0 {
		t.Errorf("acks %+v, want none", *sent)
	}

	// Dropped probes are not acknowledged.
	m, pub, sent = ackMonitor(t, nil)
	m.HandleFrom(pub, padded(Probe{ID: 11, Ack: "0123abcd", Topic: "otherpi/description"}), from, 2)
	m.HandleFrom(pub, padded(Probe{ID: 12, Ack: "0123abcd", Heard: []string{ourShortID}}), from, 2)
	if len(*sent) != 0 {
		t.Errorf("a dropped probe was acknowledged: %+v", *sent)
	}
}

func TestMonitorSignedAck(t *testing.T) {
	key := []byte("0123456789abcdef")
	m, pub, sent := ackMonitor(t, func(c *MonitorConfig) { c.Keys = Keyring{"k1": key} })
	p := Probe{Cmd: CmdStatus, ReplyTo: "sweeper", Topic: DefaultReplyTopic, ID: 3, Ack: "feedc0de"}
	Sign(&p, "k1", key, m.cfg.Clock.Now())
	b := probeBytes(t, p)
	p.Pad = strings.Repeat("0", ackProbeSize)
	b = probeBytes(t, p)
	if err := m.HandleFrom(pub, b, netip.AddrPortFrom(lanSweeper, 40000), 2); err != nil {
		t.Fatal(err)
	}
	if len(*sent) != AckCopies {
		t.Fatalf("%d acks, want %d", len(*sent), AckCopies)
	}
	a, _ := ParseAck((*sent)[0].b)
	if !VerifyAck(a, key) {
		t.Error("the ack does not verify under the probe's key")
	}
	if VerifyAck(a, []byte("another key, 16+")) {
		t.Error("the ack verifies under another key")
	}
	a.Version++
	if VerifyAck(a, key) {
		t.Error("a tampered ack verifies")
	}
	// The token is signed: a probe whose ack token was changed in flight
	// fails its MAC.
	p2 := p
	p2.Ack = "00000000"
	if err := (Keyring{"k1": key}).Verify(p2, m.cfg.Clock.Now(), 0); err == nil {
		t.Error("a changed ack token kept the probe's MAC valid")
	}
}

func TestParseAckRejects(t *testing.T) {
	for _, tc := range []struct{ name, in, field string }{
		{"negative id", `{"ack":-1,"t":"0123abcd","host":"a","m":"0123abcd","ver":1}`, "ack"},
		{"short token", `{"ack":1,"t":"01","host":"a","m":"0123abcd","ver":1}`, "t"},
		{"bad machine", `{"ack":1,"t":"0123abcd","host":"a","m":"XYZ","ver":1}`, "m"},
		{"bad host", `{"ack":1,"t":"0123abcd","host":"a/b","m":"0123abcd","ver":1}`, "host"},
		{"bad mac", `{"ack":1,"t":"0123abcd","host":"a","m":"0123abcd","ver":1,"mac":"zz"}`, "mac"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAck([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.field+":") {
				t.Errorf("err %v, want one about %s", err, tc.field)
			}
		})
	}
}

func TestAggregatorAcksAndSummaries(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	a := NewAggregator(SweepConfig{ReplyTo: "sweeper", ID: 5, AckToken: "0123abcd", Expected: []string{"pi1", "pi2"}, ExpectLater: true})
	p := a.Start(t0)
	if p.Ack != "0123abcd" {
		t.Fatalf("probe %+v does not ask for acks", p)
	}
	gpio := ServiceInfo{Function: "gpio", Control: "pi1/gpio/control"}
	display := ServiceInfo{Function: "display", External: true}
	sum := func(host, machine string, v uint64, svcs ...ServiceInfo) Summary {
		return Summary{Host: host, Machine: machine, Version: v, Services: svcs}
	}
	ack := func(host, machine string, v uint64) AckFrom {
		return AckFrom{Ack: Ack{ID: 5, Token: "0123abcd", Host: host, Machine: ShortID(machine), Version: v}, From: netip.MustParseAddr("10.0.0.1")}
	}
	m1, m2 := "aaaaaaaa11111111", "bbbbbbbb22222222"

	a.AddSummary(sum("pi1", m1, 3, gpio), t0)
	a.AddAck(ack("pi1", m1, 3), t0.Add(time.Millisecond))
	if len(a.Heard()) != 1 {
		t.Fatalf("pi1 acked at the summary's version is not complete: heard %v", a.Heard())
	}
	// A stale summary: pi2 acknowledges version 8, the sweep has 7.
	a.AddSummary(sum("pi2", m2, 7, gpio, display), t0)
	a.AddAck(ack("pi2", m2, 8), t0.Add(2*time.Millisecond))
	if len(a.Heard()) != 1 {
		t.Fatal("a host complete from a summary older than its ack")
	}
	a.AddSummary(sum("pi2", m2, 8, gpio, display), t0.Add(3*time.Millisecond))
	// Its external display service must answer for itself.
	if len(a.Heard()) != 1 {
		t.Fatal("a host complete before its external service replied")
	}
	a.Add(Reply{Report: Report{Hostname: "pi2", Machine: m2, ID: 5, ReplyTo: "sweeper"}, ServiceInfo: display, HostServices: []string{"gpio", "display"}}, t0.Add(4*time.Millisecond))
	if len(a.Heard()) != 2 {
		t.Fatalf("heard %v after the external reply", a.Heard())
	}
	if a.Done(t0.Add(time.Second)) {
		t.Fatal("done before the expected hosts were known")
	}
	a.Expect(nil, t0.Add(5*time.Millisecond))
	if !a.Done(t0.Add(5 * time.Millisecond)) {
		t.Fatal("not done with every expected host complete")
	}
	inv := a.Inventory(t0.Add(5 * time.Millisecond))
	if !inv.Complete || len(inv.Hosts) != 2 || inv.Hosts[0].IPAddr != "10.0.0.1" || len(inv.Hosts[1].Services) != 2 {
		t.Errorf("inventory %+v", inv)
	}
	// Acks of another sweep, or with another token, are ignored.
	b := NewAggregator(SweepConfig{ReplyTo: "sweeper", ID: 6, AckToken: "0123abcd"})
	b.Start(t0)
	b.AddSummary(sum("pi1", m1, 3, gpio), t0)
	b.AddAck(ack("pi1", m1, 3), t0)
	if len(b.Heard()) != 0 {
		t.Error("an ack for sweep 5 counted in sweep 6")
	}
}

// TestMonitorAcksWhilePending: with a jitter, a host's report waits; a
// retransmission in the meantime queues no second report, but is
// acknowledged again, since the first acknowledgement may have been lost
// and is all the sweeper waits for.
func TestMonitorAcksWhilePending(t *testing.T) {
	from := netip.AddrPortFrom(lanSweeper, 40000)
	m, pub, clk := newTestMonitor(t, func(c *MonitorConfig) { c.Version = func() uint64 { return 42 } })
	var acks int
	m.sendAck = func([]byte, netip.AddrPort, int) error { acks++; return nil }
	var timers []func()
	m.after = func(_ time.Duration, f func()) func() bool {
		timers = append(timers, f)
		return func() bool { return true }
	}
	probe := Probe{ID: 21, Ack: "0123abcd", JitterMS: 500}
	b := probeBytes(t, probe)
	probe.Pad = strings.Repeat("0", ackProbeSize-len(b))
	b = probeBytes(t, probe)

	tests := []struct {
		name   string
		after  time.Duration // since the previous transmission
		acks   int           // acknowledgements sent so far
		timers int           // reports queued so far
	}{
		{name: "first transmission", acks: AckCopies, timers: 1},
		{name: "same transmission on a second interface", after: time.Millisecond, acks: AckCopies, timers: 1},
		{name: "retransmission while the report waits", after: 20 * time.Millisecond, acks: 2 * AckCopies, timers: 1},
		{name: "another one", after: 20 * time.Millisecond, acks: 3 * AckCopies, timers: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.add(tt.after)
			m.HandleFrom(pub, b, from, 2)
			if acks != tt.acks || len(timers) != tt.timers {
				t.Errorf("%d acks, %d reports queued; want %d, %d", acks, len(timers), tt.acks, tt.timers)
			}
		})
	}
	timers[0]()
	if len(pub.msgs) != 1 {
		t.Errorf("%d reports published, want 1", len(pub.msgs))
	}
}

// blockingPublisher is a session whose publishes hang, as paho's do for
// up to its write timeout while the connection is stalled.
type blockingPublisher struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingPublisher) Publish(string, byte, bool, []byte) error {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
	return nil
}

// TestMonitorAcksWhilePublishBlocks: a monitor whose MQTT session is
// stalled goes on acknowledging probes. On a lossy link the session is
// what stalls, and the acknowledgement is what gets through.
func TestMonitorAcksWhilePublishBlocks(t *testing.T) {
	m, err := ListenMonitor(MonitorConfig{Addr: "127.0.0.1:0", Hostname: "pibot01", Machine: machineA, Version: func() uint64 { return 3 }})
	if err != nil {
		t.Fatal(err)
	}
	pub := &blockingPublisher{entered: make(chan struct{}, 1), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, pub) }()
	t.Cleanup(func() {
		close(pub.release)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	sweeper, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sweeper.Close()
	for _, id := range []int64{31, 32} {
		p := Probe{ID: id, Ack: "0123abcd"}
		b := probeBytes(t, p)
		p.Pad = strings.Repeat("0", ackProbeSize-len(b))
		if _, err := sweeper.WriteTo(probeBytes(t, p), m.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if id == 31 {
			// The first report's publish is now stuck.
			select {
			case <-pub.entered:
			case <-time.After(10 * time.Second): // a failure bound, not a wait
				t.Fatal("the first report was never published")
			}
		}
		// Its acknowledgement, past the copies of the previous one's.
		sweeper.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, MaxDatagram)
		for {
			n, _, err := sweeper.ReadFrom(buf)
			if err != nil {
				t.Fatalf("probe %d: no acknowledgement while the session is stalled: %v", id, err)
			}
			a, err := ParseAck(buf[:n])
			if err != nil {
				t.Fatalf("probe %d: %v", id, err)
			}
			if a.ID == id {
				break
			}
		}
	}
}
