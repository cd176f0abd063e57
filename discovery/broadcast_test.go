package discovery

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDirectedBroadcast(t *testing.T) {
	tests := []struct {
		name, prefix, want string // want "" = no broadcast address
	}{
		{"/24", "192.168.1.50/24", "192.168.1.255"},
		{"/16", "10.77.0.3/16", "10.77.255.255"},
		{"loopback /8", "127.0.0.1/8", "127.255.255.255"},
		{"/30", "10.0.0.1/30", "10.0.0.3"},
		{"/31 point-to-point", "10.0.0.1/31", ""},
		{"/32", "10.0.0.1/32", ""},
		{"IPv6", "fe80::1/64", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := directedBroadcast(netip.MustParsePrefix(tt.prefix))
			if tt.want == "" {
				if ok {
					t.Errorf("got %s, want none", got)
				}
				return
			}
			if !ok || got.String() != tt.want {
				t.Errorf("got %s, %v; want %s", got, ok, tt.want)
			}
		})
	}
}

func TestNewBroadcaster(t *testing.T) {
	tests := []struct {
		name    string
		cfg     BroadcastConfig
		want    []string // destinations; nil = an error is expected
		wantErr bool
	}{
		{"loopback", BroadcastConfig{Interfaces: []string{"lo"}}, []string{"127.255.255.255:4747"}, false},
		{"loopback, own port", BroadcastConfig{Port: 5000, Interfaces: []string{"lo"}}, []string{"127.255.255.255:5000"}, false},
		{"targets", BroadcastConfig{Interfaces: []string{"lo"}, Targets: []string{"10.0.0.9", "10.0.0.255:4800"}},
			[]string{"127.255.255.255:4747", "10.0.0.9:4747", "10.0.0.255:4800"}, false},
		{"unknown interface", BroadcastConfig{Interfaces: []string{"nosuch0"}}, nil, true},
		{"bad target", BroadcastConfig{Interfaces: []string{"lo"}, Targets: []string{"pibot01"}}, nil, true},
		{"IPv6 target", BroadcastConfig{Interfaces: []string{"lo"}, Targets: []string{"[::1]:4747"}}, nil, true},
		{"port out of range", BroadcastConfig{Port: 70000, Interfaces: []string{"lo"}}, nil, true},
		{"key without id", BroadcastConfig{Interfaces: []string{"lo"}, Key: []byte("k")}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBroadcaster(tt.cfg)
			if tt.wantErr {
				if err == nil {
					b.Close()
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			var got []string
			for _, d := range b.Destinations() {
				got = append(got, d.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("destinations %q, want %q", got, tt.want)
			}
		})
	}
}

// Without named interfaces the broadcaster picks every up, broadcast
// capable interface, never loopback.
func TestNewBroadcasterDefaultInterfaces(t *testing.T) {
	b, err := NewBroadcaster(BroadcastConfig{Targets: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, d := range b.Destinations() {
		if d.Addr().IsLoopback() && d.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("loopback broadcast %s chosen by default", d)
		}
	}
}

// Every host of a large cluster acknowledges a probe at once: the
// broadcaster's socket holds a thousand acknowledgements that arrive
// before the sweep reads any.
func TestBroadcasterHoldsAckBurst(t *testing.T) {
	const hosts = 1000
	raw, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip("no /proc/sys/net/core/rmem_max:", err)
	}
	if max, _ := strconv.Atoi(strings.TrimSpace(string(raw))); max < 1<<20 {
		t.Skipf("net.core.rmem_max is %d: the kernel caps the buffer below what %d acknowledgements need", max, hosts)
	}
	b, err := NewBroadcaster(BroadcastConfig{Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	to := b.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	to = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), to.Port())
	src, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for i := range hosts {
		ak, err := Ack{ID: 1241, Token: "9f86d081", Host: fmt.Sprintf("pi%04d", i), Machine: "3f0c0a1b", Version: 12}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.WriteToUDPAddrPort(ak, to); err != nil {
			t.Fatal(err)
		}
	}
	b.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, MaxDatagram)
	got := 0
	for {
		if _, _, err := b.conn.ReadFrom(buf); err != nil {
			break // the deadline: nothing more queued
		}
		got++
	}
	if got != hosts {
		t.Errorf("read %d acknowledgements of %d sent before the first read", got, hosts)
	}
}
