package discovery

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/rollcall/rollcall/services"
)

// Defaults of the wire protocol.
const (
	// DefaultPort is the UDP port monitors listen on and sweeps send to.
	DefaultPort = 4747
	// MaxDatagram is the largest probe a monitor reads; larger datagrams
	// are dropped unread.
	MaxDatagram = 4096
	// DefaultReportTopic is where monitors publish their reports.
	DefaultReportTopic = "/udp/report"
	// DefaultReplyTopic is where services answer unless a probe names
	// another topic.
	DefaultReplyTopic = "/stat/data"
	// Version is the protocol version this package speaks, carried as "v".
	Version = 1
	// MaxJitterMS caps the jitter a probe may ask of a monitor; a larger
	// jitter_ms is accepted but a monitor waits at most this long.
	MaxJitterMS = 1000
)

// Commands of the protocol. A probe's "status" becomes "getstatus" in the
// report, as the original rollcall scripts had it.
const (
	CmdStatus    = "status"
	CmdGetStatus = "getstatus"
)

// Errors of Parse functions. A bad field is reported as a *FieldError.
var (
	// ErrTooLarge means the datagram is over MaxDatagram bytes.
	ErrTooLarge = errors.New("datagram too large")
	// ErrMalformed means the payload is not a JSON object of the right shape.
	ErrMalformed = errors.New("malformed json")
)

// A FieldError says which field of a message was rejected and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Probe is the datagram a sweep broadcasts. See the package documentation
// for the meaning of each field.
type Probe struct {
	Cmd      string   `json:"cmd"`
	ReplyTo  string   `json:"replyto"`
	Topic    string   `json:"topic"`
	ID       int64    `json:"id"`
	V        int      `json:"v,omitempty"`
	Heard    []string `json:"heard,omitempty"`
	JitterMS int      `json:"jitter_ms,omitempty"`
	TS       int64    `json:"ts,omitempty"`
	Nonce    string   `json:"nonce,omitempty"`
	KID      string   `json:"kid,omitempty"`
	MAC      string   `json:"mac,omitempty"`
	// Ack asks each monitor for a UDP acknowledgement (see Ack), to be
	// echoed in it: a random token of 8–32 hex digits the sweep chose.
	Ack string `json:"ack,omitempty"`
	// Pad is ignored: it makes the probe as large as the acknowledgement
	// it asks for, since a monitor never answers with more bytes than it
	// received.
	Pad string `json:"pad,omitempty"`
}

// ParseProbe decodes and validates one probe datagram. Unknown fields are
// ignored; a known field with a bad value is rejected with a *FieldError.
func ParseProbe(b []byte) (Probe, error) {
	if len(b) > MaxDatagram {
		return Probe{}, fmt.Errorf("probe: %w: %d bytes", ErrTooLarge, len(b))
	}
	// The outer ID shadows Probe.ID so that a missing id can be told from 0.
	var w struct {
		Probe
		ID *int64 `json:"id"`
	}
	if err := unmarshal(b, &w); err != nil {
		return Probe{}, fmt.Errorf("probe: %w", err)
	}
	p := w.Probe
	if w.ID == nil {
		return Probe{}, fmt.Errorf("probe: %w", &FieldError{"id", "missing"})
	}
	p.ID = *w.ID
	if len(p.Heard) == 0 {
		p.Heard = nil // "heard":[] and no heard mean the same; keep one form
	}
	p.Pad = "" // only its length counted, and that is the datagram's
	if err := p.validate(); err != nil {
		return Probe{}, fmt.Errorf("probe: %w", err)
	}
	return p, nil
}

// Marshal encodes the probe. It does not validate: a sweep may marshal a
// probe that monitors will reject, and find out from their silence.
func (p Probe) Marshal() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	return b, nil
}

func (p Probe) validate() error {
	switch {
	case p.Cmd == "":
		return &FieldError{"cmd", "missing"}
	case p.Cmd != CmdStatus:
		return &FieldError{"cmd", fmt.Sprintf("unknown command %q", p.Cmd)}
	}
	if err := checkName("replyto", p.ReplyTo); err != nil {
		return err
	}
	if err := checkTopic("topic", p.Topic); err != nil {
		return err
	}
	if p.ID < 0 {
		return &FieldError{"id", "negative"}
	}
	if p.V < 0 || p.V > Version {
		return &FieldError{"v", fmt.Sprintf("unsupported version %d", p.V)}
	}
	for i, h := range p.Heard {
		if !isShortID(h) {
			return &FieldError{fmt.Sprintf("heard[%d]", i), "not 8 lowercase hex digits"}
		}
	}
	if p.JitterMS < 0 {
		return &FieldError{"jitter_ms", "negative"}
	}
	if p.TS < 0 {
		return &FieldError{"ts", "negative"}
	}
	if p.Nonce != "" && (len(p.Nonce) > 64 || !isHex(p.Nonce)) {
		return &FieldError{"nonce", "not at most 64 hex digits"}
	}
	if p.KID != "" && !isToken(p.KID) {
		return &FieldError{"kid", "not 1-64 of [A-Za-z0-9._-]"}
	}
	if p.MAC != "" && (len(p.MAC) != 2*macLen || !isHex(p.MAC)) {
		return &FieldError{"mac", fmt.Sprintf("not %d hex digits", 2*macLen)}
	}
	if p.Ack != "" && (len(p.Ack) < 8 || len(p.Ack) > 32 || !isHex(p.Ack)) {
		return &FieldError{"ack", "not 8-32 hex digits"}
	}
	return nil
}

// ShortID is the short form of a machine id carried in a probe's heard
// list: its first 8 hex digits, lowercased, ignoring dashes (so a UUID
// works too). A machine id that does not start with 8 hex digits is
// hashed instead, so every machine has a short id of the same shape.
func ShortID(machine string) string {
	s := strings.ToLower(strings.ReplaceAll(machine, "-", ""))
	if len(s) >= 8 && isHex(s[:8]) {
		return s[:8]
	}
	sum := sha256.Sum256([]byte(machine))
	return hex.EncodeToString(sum[:4])
}

// unmarshal decodes a JSON object and turns the decoder's type errors into
// field errors, so a client learns which field was wrong.
func unmarshal(b []byte, v any) error {
	err := json.Unmarshal(b, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return &FieldError{jsonField(te.Field), "not " + jsonKind(te.Type.Kind().String())}
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

// jsonField drops the Go names of embedded structs from a decoder's field
// path ("Reply.ServiceInfo.inputs"), leaving the names on the wire.
func jsonField(path string) string {
	parts := strings.Split(path, ".")
	for len(parts) > 1 && parts[0] != "" && 'A' <= parts[0][0] && parts[0][0] <= 'Z' {
		parts = parts[1:]
	}
	return strings.Join(parts, ".")
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"):
		return "an integer"
	case goKind == "slice":
		return "a list"
	case goKind == "struct", goKind == "map", goKind == "ptr":
		return "an object"
	}
	return "a " + goKind
}

// checkName checks a topic level such as a hostname. Beyond
// services.ValidTopicName it refuses control characters, because those
// fields are joined by newlines in the signed canonical form.
func checkName(field, s string) error {
	if s == "" {
		return &FieldError{field, "missing"}
	}
	if !services.ValidTopicName(s) || !printable(s) {
		return &FieldError{field, fmt.Sprintf("not a valid topic name: %q", s)}
	}
	return nil
}

// checkTopic checks a topic one publishes to, like checkName does a level.
func checkTopic(field, s string) error {
	if s == "" {
		return &FieldError{field, "missing"}
	}
	if !services.ValidTopic(s) || !printable(s) {
		return &FieldError{field, fmt.Sprintf("not a valid topic: %q", s)}
	}
	return nil
}

// printable reports whether s is valid UTF-8 without ASCII control
// characters.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return utf8.ValidString(s)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isShortID(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isToken reports whether s is a key id: 1 to 64 of [A-Za-z0-9._-].
func isToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
