package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/rollcall/rollcall/agent/broker"
	"github.com/rollcall/rollcall/agent/session"
	"github.com/rollcall/rollcall/discovery"
)

// TestSweepJitter checks the spread a sweep asks of the hosts: with
// acknowledgements, replies are off the critical path and are spread by
// default; without, they are what the sweep waits for and are not.
func TestSweepJitter(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	b, err := broker.Start("127.0.0.1:0", log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The probes go to the loopback's broadcast, where this socket reads
	// them.
	pc, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port

	tests := []struct {
		name string
		opts SweepOptions
		want int
	}{
		{name: "acknowledgements, default", want: AckJitterMS},
		{name: "acknowledgements, asked for", opts: SweepOptions{JitterMS: 7}, want: 7},
		{name: "acknowledgements, none asked", opts: SweepOptions{JitterMS: -1}, want: 0},
		{name: "no acknowledgements", opts: SweepOptions{NoAck: true}, want: 0},
		{name: "no acknowledgements, asked for", opts: SweepOptions{NoAck: true, JitterMS: 30}, want: 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{
				Name: "sweeper",
				MQTT: session.Config{Broker: b.URL(), Keepalive: 5 * time.Second},
				Discovery: discovery.Config{
					Port:           port,
					Interfaces:     []string{"lo"},
					ReplyTopic:     discovery.DefaultReplyTopic,
					InventoryTopic: discovery.DefaultInventoryTopic,
				},
			}
			opts := tt.opts
			opts.Timeout, opts.MaxProbes, opts.NoRetained = 50*time.Millisecond, 1, true
			if _, err := Sweep(context.Background(), cfg, opts, log); err != nil {
				t.Fatal(err)
			}
			p, err := readProbe(pc)
			if err != nil {
				t.Fatal(err)
			}
			if p.JitterMS != tt.want {
				t.Errorf("probe asks for jitter_ms %d, want %d", p.JitterMS, tt.want)
			}
			if (p.Ack != "") == tt.opts.NoAck {
				t.Errorf("probe ack token %q with NoAck %v", p.Ack, tt.opts.NoAck)
			}
		})
	}
}

// readProbe reads the one probe a sweep sent.
func readProbe(pc net.PacketConn) (discovery.Probe, error) {
	if err := pc.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return discovery.Probe{}, err
	}
	buf := make([]byte, discovery.MaxDatagram+1)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		return discovery.Probe{}, fmt.Errorf("no probe: %w", err)
	}
	return discovery.ParseProbe(buf[:n])
}
