package discovery

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultReplayWindow is how far a signed probe's ts may be from a
// monitor's clock, and how long its nonce is remembered.
const DefaultReplayWindow = 30 * time.Second

// macLen is how many bytes of the HMAC-SHA256 a probe carries.
const macLen = 16

// canonicalTag starts the signed form, so a MAC over a probe can never be
// mistaken for a MAC over anything else signed with the same key.
const canonicalTag = "rollcall-probe-v1"

// Errors of Keyring.Verify, and ErrReplay from a monitor.
var (
	ErrUnsigned   = errors.New("probe not signed")
	ErrUnknownKey = errors.New("unknown key id")
	ErrBadMAC     = errors.New("bad mac")
	ErrStale      = errors.New("stale timestamp")
	ErrReplay     = errors.New("replayed nonce")
)

// A Keyring holds the shared keys a monitor accepts, by key id. Holding
// the old and the new key during a rotation lets sweeps switch over one
// at a time.
type Keyring map[string][]byte

// Sign stamps p with now, a fresh random nonce and kid, and sets its mac.
// Sign every transmission: a monitor drops a nonce it has seen before.
func Sign(p *Probe, kid string, key []byte, now time.Time) error {
	if len(key) == 0 {
		return errors.New("sign probe: empty key")
	}
	if !isToken(kid) {
		return fmt.Errorf("sign probe: key id %q: not 1-64 of [A-Za-z0-9._-]", kid)
	}
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return fmt.Errorf("sign probe: nonce: %w", err)
	}
	p.TS = now.UnixMilli()
	p.Nonce = hex.EncodeToString(nonce[:])
	p.KID = kid
	p.MAC = hex.EncodeToString(mac(key, *p))
	return nil
}

// Verify checks that p is signed by a key of k and that its ts is within
// window of now (DefaultReplayWindow when window <= 0). It cannot see
// replays: a monitor remembers nonces for that.
func (k Keyring) Verify(p Probe, now time.Time, window time.Duration) error {
	if window <= 0 {
		window = DefaultReplayWindow
	}
	if p.MAC == "" {
		return ErrUnsigned
	}
	if p.Nonce == "" {
		return fmt.Errorf("%w: no nonce", ErrUnsigned)
	}
	key, ok := k[p.KID]
	if !ok || len(key) == 0 {
		return fmt.Errorf("%w %q", ErrUnknownKey, p.KID)
	}
	got, err := hex.DecodeString(p.MAC)
	if err != nil || !hmac.Equal(got, mac(key, p)) {
		return ErrBadMAC
	}
	// Checked after the MAC so that only key holders learn our clock.
	skew := now.Sub(time.UnixMilli(p.TS))
	if skew > window || skew < -window {
		return fmt.Errorf("%w: %s off", ErrStale, skew.Round(time.Millisecond))
	}
	return nil
}

// mac is the truncated HMAC-SHA256 of p's canonical form.
func mac(key []byte, p Probe) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(canonical(p)))
	return h.Sum(nil)[:macLen]
}

// canonical is the signed form of a probe: its fields joined by newlines.
// Parsing refuses control characters in every string field, so no field
// can smuggle a newline and shift the others.
func canonical(p Probe) string {
	parts := []string{
		canonicalTag,
		p.Cmd,
		p.ReplyTo,
		p.Topic,
		strconv.FormatInt(p.ID, 10),
		strconv.FormatInt(p.TS, 10),
		p.Nonce,
		p.KID,
		strings.Join(p.Heard, ","),
		strconv.Itoa(p.JitterMS),
	}
	if p.Ack != "" {
		// Only when present, so that probes without it sign as before.
		parts = append(parts, "ack="+p.Ack)
	}
	return strings.Join(parts, "\n")
}
