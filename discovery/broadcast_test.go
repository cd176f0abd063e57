package discovery

import (
	"net/netip"
	"slices"
	"testing"
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
