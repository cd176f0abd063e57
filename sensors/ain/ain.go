package ain

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// A Converter converts one input of one ADC at a time. The converters of
// this package are safe for concurrent use: they serialize conversions.
type Converter interface {
	Convert(ch Channel) (Sample, error)
	Close() error // releases what the converter opened (a bus it opened itself included)
}

// Channel says what to convert.
type Channel struct {
	Input int     // chip input: 0–7 MCP3008, 0–3 ADS1x15/PCF8591; IIO: N of in_voltageN_raw
	Diff  bool    // differential: Input is the positive side, Neg the negative
	Neg   int     // negative input of a differential pair
	Range float64 // full-scale range in volts where the chip has a PGA (ADS1x15); 0: default
	Rate  int     // samples per second where the chip has a data rate (ADS1x15); 0: default
}

// Sample is one conversion: the chip's code and the voltage at the input.
// Raw is signed where the chip's code is (ADS1x15 always, PCF8591 in
// differential mode); Volts is Raw scaled by the chip's reference or range.
type Sample struct {
	Raw   int64
	Volts float64
}

// Chip says what one kind of ADC can do, so that a setup is checked
// completely before anything is opened.
type Chip struct {
	Name   string    // "mcp3008", "ads1115", "ads1015", "pcf8591", "iio", "sim"
	Bus    string    // "spi", "i2c", "iio", "sim"
	Inputs int       // 0: decided by the device (iio), checked when converting
	Pairs  [][2]int  // differential (positive, negative) pairs it converts
	Ranges []float64 // selectable full-scale ranges, volts
	Rates  []int     // selectable data rates, SPS
	Bits   int       // resolution of the code; 0: decided by the device (iio)
	Addrs  []uint16  // I2C addresses the chip can be strapped to

	// DefaultRange and DefaultRate are what a Channel's zero Range and
	// Rate select, so a service can report the range it really uses.
	DefaultRange float64
	DefaultRate  int
}

// Chip names, as Options.Chip and Chip.Name spell them.
const (
	ChipMCP3008 = "mcp3008"
	ChipADS1115 = "ads1115"
	ChipADS1015 = "ads1015"
	ChipPCF8591 = "pcf8591"
	ChipIIO     = "iio"
	ChipSim     = "sim"
)

// ADS1x15 PGA settings, config register bits 11:9 = index (datasheet
// SBAS444, Config Register field table, PGA[2:0]; codes 110 and 111
// repeat ±0.256 V).
var adsRanges = []float64{6.144, 4.096, 2.048, 1.024, 0.512, 0.256}

// ADS1x15 differential pairs, MUX[2:0] = index (same table, MUX[2:0];
// 100–111 are AIN0–AIN3 against GND).
var adsPairs = [][2]int{{0, 1}, {0, 3}, {1, 3}, {2, 3}}

// Data rates, DR[2:0] = index: ADS1115 (SBAS444, Config Register) and
// ADS1015 (SBAS473, Config Register, where 111 repeats 3300).
var (
	ads1115Rates = []int{8, 16, 32, 64, 128, 250, 475, 860}
	ads1015Rates = []int{128, 250, 490, 920, 1600, 2400, 3300}
)

func chipTable() []Chip {
	mcpPairs := [][2]int{{0, 1}, {1, 0}, {2, 3}, {3, 2}, {4, 5}, {5, 4}, {6, 7}, {7, 6}}
	var simPairs [][2]int
	for p := range 8 {
		for n := range 8 {
			if p != n {
				simPairs = append(simPairs, [2]int{p, n})
			}
		}
	}
	return []Chip{
		{Name: ChipMCP3008, Bus: "spi", Inputs: 8, Pairs: mcpPairs, Bits: 10},
		{
			Name: ChipADS1115, Bus: "i2c", Inputs: 4, Pairs: slices.Clone(adsPairs),
			Ranges: slices.Clone(adsRanges), Rates: slices.Clone(ads1115Rates), Bits: 16,
			Addrs:        []uint16{0x48, 0x49, 0x4A, 0x4B},
			DefaultRange: 4.096, DefaultRate: 128,
		},
		{
			Name: ChipADS1015, Bus: "i2c", Inputs: 4, Pairs: slices.Clone(adsPairs),
			Ranges: slices.Clone(adsRanges), Rates: slices.Clone(ads1015Rates), Bits: 12,
			Addrs:        []uint16{0x48, 0x49, 0x4A, 0x4B},
			DefaultRange: 4.096, DefaultRate: 1600,
		},
		{
			Name: ChipPCF8591, Bus: "i2c", Inputs: 4, Pairs: slices.Clone(adsPairs), Bits: 8,
			Addrs: []uint16{0x48, 0x49, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F},
		},
		{Name: ChipIIO, Bus: "iio"},
		{Name: ChipSim, Bus: "sim", Inputs: 8, Pairs: simPairs, Bits: simBits},
	}
}

// Chips returns every chip this package drives. The slices are the
// caller's own.
func Chips() []Chip { return chipTable() }

// LookupChip returns the chip called name, in any letter case.
func LookupChip(name string) (Chip, bool) {
	name = strings.ToLower(name)
	for _, c := range chipTable() {
		if c.Name == name {
			return c, true
		}
	}
	return Chip{}, false
}

// A FieldError is a Channel the chip cannot convert. Field is the
// Channel field at fault, spelt as in a setup: "input", "neg", "range" or
// "rate"; a service puts it in its error result.
type FieldError struct {
	Chip  string // "ads1115", or "iio:device0 (mcp3008)"
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Chip + ": " + e.Field + ": " + e.Msg }

// Check returns nil or a *FieldError naming the bad field of ch ("input",
// "neg", "range", "rate"). A chip whose Inputs is 0 (iio) accepts any
// input and pair; the device itself says no when converting.
func (c Chip) Check(ch Channel) error {
	bad := func(field, format string, a ...any) error {
		return &FieldError{Chip: c.Name, Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	switch {
	case ch.Input < 0:
		return bad("input", "input %d is negative", ch.Input)
	case c.Inputs > 0 && ch.Input >= c.Inputs:
		return bad("input", "input %d out of range: the %s has inputs 0–%d", ch.Input, c.Name, c.Inputs-1)
	}
	if ch.Diff {
		switch {
		case ch.Neg < 0 || ch.Neg == ch.Input:
			return bad("neg", "neg %d cannot pair with input %d", ch.Neg, ch.Input)
		case c.Inputs == 0:
		case len(c.Pairs) == 0:
			return bad("neg", "the %s has no differential inputs", c.Name)
		case !slices.Contains(c.Pairs, [2]int{ch.Input, ch.Neg}):
			return bad("neg", "%d-%d is not a differential pair of the %s (pairs: %s)", ch.Input, ch.Neg, c.Name, pairList(c.Pairs))
		}
	} else if ch.Neg != 0 {
		return bad("neg", "neg %d set on a single-ended input (set diff to pair it)", ch.Neg)
	}
	if ch.Range != 0 {
		switch {
		case c.Name == ChipIIO:
			return bad("range", "the kernel driver sets the range (dtoverlay=ads1115 cha_gain); leave range at 0")
		case len(c.Ranges) == 0:
			return bad("range", "the %s has no programmable gain; leave range at 0", c.Name)
		case c.rangeIndex(ch.Range) < 0:
			return bad("range", "%s V is not one of %s V", fmtFloat(ch.Range), floatList(c.Ranges))
		}
	}
	if ch.Rate != 0 {
		switch {
		case c.Name == ChipIIO:
			return bad("rate", "the kernel driver sets the data rate (dtoverlay=ads1115 cha_datarate); leave rate at 0")
		case len(c.Rates) == 0:
			return bad("rate", "the %s has no selectable data rate; leave rate at 0", c.Name)
		case !slices.Contains(c.Rates, ch.Rate):
			return bad("rate", "%d SPS is not one of %s SPS", ch.Rate, intList(c.Rates))
		}
	}
	return nil
}

// WithDefaults returns ch with a zero Range and Rate replaced by the
// chip's defaults, the values a converter really uses.
func (c Chip) WithDefaults(ch Channel) Channel {
	if ch.Range == 0 {
		ch.Range = c.DefaultRange
	}
	if ch.Rate == 0 {
		ch.Rate = c.DefaultRate
	}
	return ch
}

// rangeIndex finds r among c.Ranges, forgiving float noise from a config
// file ("4.096" parsed vs. computed).
func (c Chip) rangeIndex(r float64) int {
	for i, v := range c.Ranges {
		if math.Abs(v-r) < 1e-6 {
			return i
		}
	}
	return -1
}

// hasAddr reports whether the chip can be strapped to addr.
func (c Chip) hasAddr(addr uint16) bool { return slices.Contains(c.Addrs, addr) }

func pairList(pairs [][2]int) string {
	s := make([]string, len(pairs))
	for i, p := range pairs {
		s[i] = fmt.Sprintf("%d-%d", p[0], p[1])
	}
	return strings.Join(s, ", ")
}

func floatList(v []float64) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = fmtFloat(f)
	}
	return strings.Join(s, ", ")
}

func intList(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

func addrList(v []uint16) string {
	s := make([]string, len(v))
	for i, a := range v {
		s[i] = fmt.Sprintf("%#x", a)
	}
	return strings.Join(s, ", ")
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// errClosed is returned by Convert after Close.
var errClosed = errors.New("converter closed")

// session serializes one converter's conversions, since a conversion is
// several bus transactions, and remembers what Close must release.
type session struct {
	mu     sync.Mutex
	closed bool
	owned  io.Closer // the bus Open opened for this converter, or nil
}

// lock takes the converter for one conversion; the caller unlocks s.mu.
func (s *session) lock() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	return nil
}

// close marks the converter closed and closes the bus it owns, once.
func (s *session) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.owned == nil {
		return nil
	}
	return s.owned.Close()
}
