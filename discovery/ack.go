package discovery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Ack is a monitor's acknowledgement of a probe that asked for one, sent
// over UDP straight back to the probe's source: this host heard the sweep,
// and this is the version of its description. A sweeper that already
// holds that version of the host's retained summary counts the host as
// answered without waiting for the MQTT replies, which a lossy link can
// hold back for whole TCP retransmission timeouts.
//
//	{"ack":1241,"t":"9f86d081","host":"pibot01","m":"3f0c0a1b","ver":12}
//
//	ack   the probe's id.
//	t     the probe's ack token, echoed: only whoever saw the probe can
//	      acknowledge it.
//	host  this host's name.
//	m     this host's short machine id (ShortID).
//	ver   the version of this host's description now.
//	mac   with a key: 32 hex digits, HMAC-SHA256 (first 16 bytes) under
//	      the key that signed the probe, of
//	      "rollcall-ack-v1\n<ack>\n<t>\n<host>\n<m>\n<ver>".
//
// A monitor acknowledges only probes that passed every check (on-link
// source, rate limits, signature), once per transmission in AckCopies
// copies, and never with more bytes in all than the probe held: an
// acknowledgement cannot amplify a spoofed probe. The MQTT report and replies go out as well, for
// every other listener.
type Ack struct {
	ID      int64  `json:"ack"`
	Token   string `json:"t"`
	Host    string `json:"host"`
	Machine string `json:"m"`
	Version uint64 `json:"ver"`
	MAC     string `json:"mac,omitempty"`
}

const ackTag = "rollcall-ack-v1"

// Marshal encodes the acknowledgement.
func (a Ack) Marshal() ([]byte, error) { return json.Marshal(a) }

// ParseAck decodes and checks an acknowledgement.
func ParseAck(b []byte) (Ack, error) {
	if len(b) > MaxDatagram {
		return Ack{}, fmt.Errorf("ack: %w: %d bytes", ErrTooLarge, len(b))
	}
	var a Ack
	if err := unmarshal(b, &a); err != nil {
		return Ack{}, fmt.Errorf("ack: %w", err)
	}
	switch {
	case a.ID < 0:
		return Ack{}, fmt.Errorf("ack: %w", &FieldError{"ack", "negative"})
	case len(a.Token) < 8 || len(a.Token) > 32 || !isHex(a.Token):
		return Ack{}, fmt.Errorf("ack: %w", &FieldError{"t", "not 8-32 hex digits"})
	case !isShortID(a.Machine):
		return Ack{}, fmt.Errorf("ack: %w", &FieldError{"m", "not 8 lowercase hex digits"})
	case a.MAC != "" && (len(a.MAC) != 2*macLen || !isHex(a.MAC)):
		return Ack{}, fmt.Errorf("ack: %w", &FieldError{"mac", fmt.Sprintf("not %d hex digits", 2*macLen)})
	}
	if err := checkName("host", a.Host); err != nil {
		return Ack{}, fmt.Errorf("ack: %w", err)
	}
	return a, nil
}

func ackMAC(key []byte, a Ack) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(strings.Join([]string{ackTag, strconv.FormatInt(a.ID, 10), a.Token, a.Host, a.Machine, strconv.FormatUint(a.Version, 10)}, "\n")))
	return h.Sum(nil)[:macLen]
}

// SignAck sets a's mac under key.
func SignAck(a *Ack, key []byte) { a.MAC = hex.EncodeToString(ackMAC(key, *a)) }

// VerifyAck reports whether a is signed under key.
func VerifyAck(a Ack, key []byte) bool {
	got, err := hex.DecodeString(a.MAC)
	return err == nil && len(key) > 0 && hmac.Equal(got, ackMAC(key, a))
}
