package services

import (
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What the Checks of several services' setups have in common: the names
// of a list's items, the unit of a value and its scale from volts, and
// the long strings a message quotes.

// Truncate shortens s to n bytes and an ellipsis, for a message quoting
// what a payload carried, which may be long.
func Truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Names checks the names of a list's items one item at a time, as a
// configuration's Check goes through the list in order, so that each
// problem stands where the item's others do: every name must be valid as
// a topic level (ValidTopicName) and unique in the list, a second use
// being reported at its own field. Make one with NewNames for each list.
type Names struct {
	kind  string
	first map[string]string // name -> field of the item that took it
}

// NewNames checks the names of a list of items called kind: "" for items
// whose names are the last level of their topics (inputs, outputs), or
// what the items are ("chip") for items that other items name and that a
// description shows beside topics.
func NewNames(kind string) *Names { return &Names{kind: kind, first: map[string]string{}} }

// Check returns the problem with name, the name of the item at field
// ("outputs[2]"), reported at field+".name"; nil when there is none.
func (n *Names) Check(field, name string) Errors {
	prev, dup := n.first[name]
	switch {
	case !ValidTopicName(name) && n.kind == "":
		return Errors{Errorf(CodeInvalid, field+".name", "name %q cannot stand as a topic level (1–64 bytes, no / + # control characters or leading $)", Truncate(name, 70))}
	case !ValidTopicName(name):
		return Errors{Errorf(CodeInvalid, field+".name", "name %q: 1–64 bytes, no / + # control characters or leading $", Truncate(name, 70))}
	case dup && n.kind == "":
		return Errors{Errorf(CodeConflict, field+".name", "duplicate name %q (also %s)", name, prev)}
	case dup:
		return Errors{Errorf(CodeConflict, field+".name", "duplicate %s name %q (also %s)", n.kind, name, prev)}
	}
	n.first[name] = field
	return nil
}

// MaxUnit is the longest unit, in bytes, a value may be given in.
const MaxUnit = 16

// CheckUnit returns why unit cannot be the unit of a value, or "": it is
// written into readings as a JSON string and shown beside the value, so
// it is short and plain.
func CheckUnit(unit string) string {
	switch {
	case len(unit) > MaxUnit:
		return fmt.Sprintf("%q: at most %d bytes", Truncate(unit, 20), MaxUnit)
	case !utf8.ValidString(unit) || strings.ContainsFunc(unit, func(r rune) bool { return unicode.IsControl(r) || r == '"' || r == '\\' }):
		return fmt.Sprintf("%q: no control characters, quotes or backslashes", Truncate(unit, 20))
	case unit != strings.TrimSpace(unit):
		return fmt.Sprintf("%q: no leading or trailing spaces", unit)
	}
	return ""
}

// MaxScale bounds a scale and an offset, either way (see CheckScale).
const MaxScale = 1e9

// CheckScale checks how the item at field turns a chip's volts into its
// value, value = volts × scale + offset (a scale of 0 being 1), and the
// value's unit: "" is volts, so a scale or offset that makes the value
// something else must name its unit.
func CheckScale(field string, scale, offset float64, unit string) Errors {
	var errs Errors
	if math.Abs(scale) > MaxScale {
		errs = append(errs, Errorf(CodeInvalid, field+".scale", "%g: at most %g either way", scale, MaxScale))
	}
	if math.Abs(offset) > MaxScale {
		errs = append(errs, Errorf(CodeInvalid, field+".offset", "%g: at most %g either way", offset, MaxScale))
	}
	if msg := CheckUnit(unit); msg != "" {
		errs = append(errs, Errorf(CodeInvalid, field+".unit", "%s", msg))
	} else if unit == "" && (scale != 0 && scale != 1 || offset != 0) {
		errs = append(errs, Errorf(CodeInvalid, field+".unit", "scale and offset change what the value means: say its unit (\"V\" if it is still volts)"))
	}
	return errs
}
