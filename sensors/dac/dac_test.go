package dac

import (
	"errors"
	"math"
	"testing"
)

func TestRaw(t *testing.T) {
	tests := []struct {
		name  string
		volts float64
		bits  int
		vref  float64
		want  int
		err   error // ErrRange, or errOther for a bad bits or vref
	}{
		{name: "zero", volts: 0, bits: 12, vref: 3.3, want: 0},
		{name: "half of 3.3 V", volts: 1.65, bits: 12, vref: 3.3, want: 2048},
		{name: "top code", volts: 3.3 * 4095 / 4096, bits: 12, vref: 3.3, want: 4095},
		{name: "vref itself is the top code", volts: 3.3, bits: 12, vref: 3.3, want: 4095},
		{name: "pcf8591 half of 5 V", volts: 2.5, bits: 8, vref: 5, want: 128},
		{name: "pcf8591 one LSB", volts: 5.0 / 256, bits: 8, vref: 5, want: 1},
		// With vref 1 V and 8 bits an LSB is 1/256 V, exact in binary, so
		// these land exactly on halves.
		{name: "half an LSB rounds up", volts: 0.5 / 256, bits: 8, vref: 1, want: 1},
		{name: "just under half an LSB rounds down", volts: 0.4999 / 256, bits: 8, vref: 1, want: 0},
		{name: "halves round away from zero, not to even", volts: 2.5 / 256, bits: 8, vref: 1, want: 3},
		{name: "last half LSB gives the top code", volts: 255.5 / 256, bits: 8, vref: 1, want: 255},
		{name: "millivolt steps", volts: 1.0006, bits: 12, vref: 4.096, want: 1001},
		{name: "negative", volts: -0.001, bits: 12, vref: 3.3, err: ErrRange},
		{name: "above vref", volts: 3.3001, bits: 12, vref: 3.3, err: ErrRange},
		{name: "NaN", volts: math.NaN(), bits: 12, vref: 3.3, err: ErrRange},
		{name: "infinite", volts: math.Inf(1), bits: 12, vref: 3.3, err: ErrRange},
		{name: "zero bits", volts: 1, bits: 0, vref: 3.3, err: errOther},
		{name: "too many bits", volts: 1, bits: 31, vref: 3.3, err: errOther},
		{name: "zero vref", volts: 0, bits: 12, vref: 0, err: errOther},
		{name: "NaN vref", volts: 0, bits: 12, vref: math.NaN(), err: errOther},
		{name: "infinite vref", volts: 0, bits: 12, vref: math.Inf(1), err: errOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Raw(tc.volts, tc.bits, tc.vref)
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("Raw(%v, %d, %v) = %v", tc.volts, tc.bits, tc.vref, err)
			case tc.err == ErrRange && !errors.Is(err, ErrRange):
				t.Fatalf("Raw(%v, %d, %v) = %d, %v; want ErrRange", tc.volts, tc.bits, tc.vref, got, err)
			case tc.err == errOther && (err == nil || errors.Is(err, ErrRange)):
				// A bad resolution or reference is the setup's fault,
				// not the requested value's.
				t.Fatalf("Raw(%v, %d, %v) = %d, %v; want an error other than ErrRange", tc.volts, tc.bits, tc.vref, got, err)
			case tc.err == nil && got != tc.want:
				t.Errorf("Raw(%v, %d, %v) = %d, want %d", tc.volts, tc.bits, tc.vref, got, tc.want)
			}
		})
	}
}

var errOther = errors.New("any error but ErrRange")

func TestVolts(t *testing.T) {
	tests := []struct {
		name string
		raw  int
		bits int
		vref float64
		want float64
	}{
		{name: "zero", raw: 0, bits: 12, vref: 3.3, want: 0},
		{name: "mid scale", raw: 2048, bits: 12, vref: 3.3, want: 1.65},
		{name: "top code is one LSB short", raw: 4095, bits: 12, vref: 4.096, want: 4.095},
		{name: "pcf8591 top code", raw: 255, bits: 8, vref: 5, want: 4.98046875},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Volts(tc.raw, tc.bits, tc.vref); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("Volts(%d, %d, %v) = %v, want %v", tc.raw, tc.bits, tc.vref, got, tc.want)
			}
		})
	}
}

// Every code survives a trip through volts, for both chips' widths.
func TestRawVoltsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		bits int
		vref float64
	}{
		{"mcp4725 at 3.3 V", 12, 3.3},
		{"mcp4725 at 5 V", 12, 5},
		{"pcf8591 at 3.3 V", 8, 3.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for raw := range 1 << tc.bits {
				got, err := Raw(Volts(raw, tc.bits, tc.vref), tc.bits, tc.vref)
				if err != nil || got != raw {
					t.Fatalf("Raw(Volts(%d)) = %d, %v", raw, got, err)
				}
			}
		})
	}
}

func TestChips(t *testing.T) {
	tests := []struct {
		name          string
		bits, outputs int
		first, last   uint16
		addrs         int
		ref           string
	}{
		{name: "mcp4725", bits: 12, outputs: 1, first: 0x60, last: 0x67, addrs: 8, ref: "VDD"},
		{name: "pcf8591", bits: 8, outputs: 1, first: 0x48, last: 0x4f, addrs: 8, ref: "VREF"},
		{name: "iio", bits: 12, outputs: 1, ref: "VDD"},
		{name: "sim", bits: 12, outputs: 8, ref: "VDD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := LookupChip(tc.name)
			if !ok {
				t.Fatalf("LookupChip(%q) not found", tc.name)
			}
			if c.Bits != tc.bits || c.Outputs != tc.outputs || len(c.Addrs) != tc.addrs || c.Ref != tc.ref {
				t.Errorf("LookupChip(%q) = %+v", tc.name, c)
			}
			if tc.addrs > 0 && (c.Addrs[0] != tc.first || c.Addrs[len(c.Addrs)-1] != tc.last || !c.HasAddr(tc.first+1) || c.HasAddr(tc.last+1)) {
				t.Errorf("addresses %#x", c.Addrs)
			}
		})
	}
	if _, ok := LookupChip("mcp4728"); ok {
		t.Error("LookupChip found a chip this package does not drive")
	}
	if len(Chips()) != len(tests) {
		t.Errorf("Chips() has %d chips, want %d", len(Chips()), len(tests))
	}
	// Callers get copies: editing one cannot change the table.
	cs := Chips()
	cs[0].Addrs[0] = 0x10
	if c, _ := LookupChip(cs[0].Name); c.Addrs[0] == 0x10 {
		t.Error("Chips() shares its address slices with the table")
	}
}
