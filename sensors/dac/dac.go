package dac

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// An Output drives one DAC channel.
type Output interface {
	// Write sets the output to a raw code, 0 .. 2^Bits-1; codes outside
	// that range are refused with ErrRange, never truncated.
	Write(raw int) error
	// Close releases what the output opened (the I2C bus, when Open
	// opened it); the output keeps the last value written, so a process
	// that restarts does not glitch what the DAC drives.
	Close() error
}

// ErrRange is wrapped by every error about a value outside what the chip
// or the reference can produce, so a service can answer "bad value"
// rather than "hardware failure".
var ErrRange = errors.New("value out of range")

var errClosed = errors.New("output closed")

// Chip says what one kind of DAC can do, so a setup is checked before
// anything is opened.
type Chip struct {
	Name    string   // "mcp4725", "pcf8591", "iio", "sim"
	Bus     string   // "i2c", "iio", "sim"
	Bits    int      // 12 for the MCP4725, 8 for the PCF8591
	Outputs int      // channels, numbered from 0
	Addrs   []uint16 // I2C addresses the chip can be strapped to; the first is the default
	// Ref names the pin whose voltage is full scale, since that is what
	// a user must measure to set volts: "VDD" on the MCP4725, "VREF" on
	// the PCF8591.
	Ref string
}

// HasAddr reports whether the chip can answer at addr.
func (c Chip) HasAddr(addr uint16) bool { return slices.Contains(c.Addrs, addr) }

func addrRange(first, last uint16) []uint16 {
	var a []uint16
	for i := first; i <= last; i++ {
		a = append(a, i)
	}
	return a
}

var chips = []Chip{
	// DS22039D §6.0: device code 1100, A2 and A1 set at the factory
	// (parts MCP4725A0..A3), A0 from the pin.
	{Name: "mcp4725", Bus: "i2c", Bits: 12, Outputs: 1, Addrs: addrRange(0x60, 0x67), Ref: "VDD"},
	// PCF8591 Rev. 7 Table 5: 1001 A2 A1 A0.
	{Name: "pcf8591", Bus: "i2c", Bits: 8, Outputs: 1, Addrs: addrRange(0x48, 0x4f), Ref: "VREF"},
	// The kernel's mcp4725 driver (also the MCP4726): 12-bit codes.
	{Name: "iio", Bus: "iio", Bits: 12, Outputs: 1, Ref: "VDD"},
	// Stands in for MCP4725s in the demo and in tests: eight outputs, so
	// that one simulated chip serves every output of a demo's setup.
	{Name: "sim", Bus: "sim", Bits: 12, Outputs: 8, Ref: "VDD"},
}

// Chips returns every chip this package drives.
func Chips() []Chip {
	out := make([]Chip, len(chips))
	for i, c := range chips {
		c.Addrs = slices.Clone(c.Addrs)
		out[i] = c
	}
	return out
}

// LookupChip returns the chip called name.
func LookupChip(name string) (Chip, bool) {
	for _, c := range chips {
		if c.Name == name {
			c.Addrs = slices.Clone(c.Addrs)
			return c, true
		}
	}
	return Chip{}, false
}

func chipNames() []string {
	names := make([]string, len(chips))
	for i, c := range chips {
		names[i] = c.Name
	}
	return names
}

// Volts is the output voltage for a raw code: vref × raw / 2^bits, the
// transfer function of both datasheets (MCP4725 DS22039D: VOUT =
// VDD × Dn / 4096; PCF8591 Rev. 7 §8.3 with AGND at 0 V). The top code
// is one LSB short of vref.
func Volts(raw, bits int, vref float64) float64 {
	return vref * float64(raw) / math.Exp2(float64(bits))
}

// Raw is the code closest to volts, the inverse of Volts, rounded half
// away from zero. volts must lie in 0..vref: vref itself, and anything
// within the last half LSB, gives the top code, since the chip cannot
// reach vref. The error wraps ErrRange for a voltage outside 0..vref.
func Raw(volts float64, bits int, vref float64) (int, error) {
	if bits < 1 || bits > 30 {
		return 0, fmt.Errorf("dac: %d bits: not a DAC resolution (1..30)", bits)
	}
	if !(vref > 0) || math.IsInf(vref, 0) {
		return 0, fmt.Errorf("dac: reference %v V: must be a positive voltage", vref)
	}
	if !(volts >= 0 && volts <= vref) { // also catches NaN
		return 0, fmt.Errorf("dac: %v V outside 0..%v V: %w", volts, vref, ErrRange)
	}
	top := 1<<bits - 1
	return min(int(math.Round(volts/vref*float64(top+1))), top), nil
}

// checkRaw refuses codes the chip cannot take. Masking them instead
// would turn 4096 into 0 V on a 12-bit part.
func checkRaw(who fmt.Stringer, raw, bits int) error {
	if raw < 0 || raw >= 1<<bits {
		return fmt.Errorf("%v: raw %d outside 0..%d: %w", who, raw, 1<<bits-1, ErrRange)
	}
	return nil
}
