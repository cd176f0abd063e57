package discovery

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	oldKey, newKey := []byte("old shared key"), []byte("new shared key")
	base := Probe{Cmd: CmdStatus, ReplyTo: "pibot01", Topic: "/stat/data", ID: 7, V: 1, Heard: []string{"0a1b2c3d"}, JitterMS: 10}
	signed := func(kid string, key []byte, at time.Time) Probe {
		p := base
		if err := Sign(&p, kid, key, at); err != nil {
			t.Fatal(err)
		}
		return p
	}

	tests := []struct {
		name   string
		probe  Probe
		ring   Keyring
		now    time.Time
		window time.Duration
		want   error
	}{
		{"good", signed("k1", oldKey, t0), Keyring{"k1": oldKey}, t0, 0, nil},
		{"rotation: old key still accepted", signed("k1", oldKey, t0), Keyring{"k1": oldKey, "k2": newKey}, t0, 0, nil},
		{"rotation: new key accepted", signed("k2", newKey, t0), Keyring{"k1": oldKey, "k2": newKey}, t0, 0, nil},
		{"rotation: old key removed", signed("k1", oldKey, t0), Keyring{"k2": newKey}, t0, 0, ErrUnknownKey},
		{"wrong key under known id", signed("k1", newKey, t0), Keyring{"k1": oldKey}, t0, 0, ErrBadMAC},
		{"unsigned", base, Keyring{"k1": oldKey}, t0, 0, ErrUnsigned},
		{"mac without nonce", func() Probe { p := signed("k1", oldKey, t0); p.Nonce = ""; return p }(), Keyring{"k1": oldKey}, t0, 0, ErrUnsigned},
		{"stale, default window", signed("k1", oldKey, t0), Keyring{"k1": oldKey}, t0.Add(31 * time.Second), 0, ErrStale},
		{"from the future", signed("k1", oldKey, t0.Add(31*time.Second)), Keyring{"k1": oldKey}, t0, 0, ErrStale},
		{"inside window", signed("k1", oldKey, t0), Keyring{"k1": oldKey}, t0.Add(29 * time.Second), 0, nil},
		{"custom window", signed("k1", oldKey, t0), Keyring{"k1": oldKey}, t0.Add(6 * time.Second), 5 * time.Second, ErrStale},
		{"topic changed", func() Probe { p := signed("k1", oldKey, t0); p.Topic = "/evil"; return p }(), Keyring{"k1": oldKey}, t0, 0, ErrBadMAC},
		{"heard changed", func() Probe { p := signed("k1", oldKey, t0); p.Heard = nil; return p }(), Keyring{"k1": oldKey}, t0, 0, ErrBadMAC},
		{"jitter changed", func() Probe { p := signed("k1", oldKey, t0); p.JitterMS = 999; return p }(), Keyring{"k1": oldKey}, t0, 0, ErrBadMAC},
		{"ts changed", func() Probe { p := signed("k1", oldKey, t0); p.TS++; return p }(), Keyring{"k1": oldKey}, t0, 0, ErrBadMAC},
		{"kid swapped to another key", func() Probe { p := signed("k1", oldKey, t0); p.KID = "k2"; return p }(), Keyring{"k1": oldKey, "k2": newKey}, t0, 0, ErrBadMAC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ring.Verify(tt.probe, tt.now, tt.window)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignedProbeSurvivesTheWire(t *testing.T) {
	now := time.Unix(1700000000, 0)
	p := Probe{Cmd: CmdStatus, ReplyTo: "pibot01", Topic: "/stat/data", ID: 9}
	if err := Sign(&p, "k", []byte("key"), now); err != nil {
		t.Fatal(err)
	}
	b, _ := p.Marshal()
	got, err := ParseProbe(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := (Keyring{"k": []byte("key")}).Verify(got, now, 0); err != nil {
		t.Errorf("verify after the wire: %v", err)
	}
	q := Probe{Cmd: CmdStatus, ReplyTo: "pibot01", Topic: "/stat/data", ID: 9}
	Sign(&q, "k", []byte("key"), now)
	if q.Nonce == p.Nonce {
		t.Error("two signatures share a nonce")
	}
}

func TestSignRejects(t *testing.T) {
	p := Probe{Cmd: CmdStatus, ReplyTo: "a", Topic: "/t"}
	if err := Sign(&p, "k", nil, time.Now()); err == nil {
		t.Error("signed with an empty key")
	}
	if err := Sign(&p, "bad kid", []byte("key"), time.Now()); err == nil {
		t.Error("signed with a key id that does not parse")
	}
}

// The canonical form is documented byte for byte in doc.go; other
// implementations depend on it.
func TestCanonical(t *testing.T) {
	p := Probe{Cmd: "status", ReplyTo: "pibot01", Topic: "/stat/data", ID: 1241, TS: 1700000000000,
		Nonce: "00ff", KID: "k1", Heard: []string{"0a1b2c3d", "4f1c2d3e"}, JitterMS: 20}
	want := strings.Join([]string{"rollcall-probe-v1", "status", "pibot01", "/stat/data", "1241",
		"1700000000000", "00ff", "k1", "0a1b2c3d,4f1c2d3e", "20"}, "\n")
	if got := canonical(p); got != want {
		t.Errorf("canonical =\n%s\nwant\n%s", got, want)
	}
	// A known answer, computed with Python's hmac module, so that other
	// implementations can check theirs against ours.
	if got := hex.EncodeToString(mac([]byte("secret"), p)); got != "8c902801d3d41defd98014c355ced998" {
		t.Errorf("mac = %s, want 8c902801d3d41defd98014c355ced998", got)
	}
}
