package ain

import (
	"errors"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

// The transactions below follow the PCF8591 datasheet (Rev. 6): a write
// of the control byte alone (Figure 15, write mode; §8.2 and Figure 4 for
// the byte: bit 6 analog output enable, bits 5:4 input programming,
// bits 1:0 channel), then, after a repeated start in the same
// transaction, a two-byte read (Figure 16, read mode) whose first byte is
// the previous conversion (§8.4; 0x80 after power-on).
func TestPCF8591(t *testing.T) {
	const a = 0x48
	convert := func(control byte, r ...byte) i2ctest.IO { return i2ctest.IO{Addr: a, W: []byte{control}, R: r} }

	tests := []struct {
		name   string
		addr   uint16
		vref   float64
		aout   bool
		ch     Channel
		ops    []i2ctest.IO
		failAt int
		left   int
		raw    int64
		volts  float64
		err    string
		field  string
	}{
		{
			name: "AIN2 single-ended, power-on byte dropped",
			ch:   Channel{Input: 2},
			// Four single-ended inputs (00), channel 2.
			ops:    []i2ctest.IO{convert(0x02, 0x80, 0xC8)},
			failAt: -1,
			raw:    200, volts: 200 * 3.3 / 256,
		},
		{
			name: "the stale first byte never shows",
			ch:   Channel{Input: 0},
			ops:  []i2ctest.IO{convert(0x00, 0xFF, 0x10)},
			// 0xFF was input 3's last conversion.
			failAt: -1,
			raw:    16, volts: 16 * 3.3 / 256,
		},
		{
			name: "AIN3 with the analog output kept on, 5 V reference",
			vref: 5, aout: true,
			ch:     Channel{Input: 3},
			ops:    []i2ctest.IO{convert(0x43, 0x00, 0xFF)},
			failAt: -1,
			raw:    255, volts: 255 * 5.0 / 256,
		},
		{
			name: "pair 0-1, negative: two differential inputs, channel 0",
			ch:   Channel{Input: 0, Diff: true, Neg: 1},
			// Input programming 11; two's complement 0xF6 = -10.
			ops:    []i2ctest.IO{convert(0x30, 0x00, 0xF6)},
			failAt: -1,
			raw:    -10, volts: -10 * 3.3 / 256,
		},
		{
			name: "pair 1-3: three differential inputs, channel 1",
			ch:   Channel{Input: 1, Diff: true, Neg: 3},
			// Input programming 01.
			ops:    []i2ctest.IO{convert(0x11, 0x00, 0x7F)},
			failAt: -1,
			raw:    127, volts: 127 * 3.3 / 256,
		},
		{
			name:   "pair 2-3 at 0x4f",
			addr:   0x4F,
			ch:     Channel{Input: 2, Diff: true, Neg: 3},
			ops:    []i2ctest.IO{{Addr: 0x4F, W: []byte{0x12}, R: []byte{0x00, 0x80}}},
			failAt: -1,
			raw:    -128, volts: -128 * 3.3 / 256,
		},
		{
			name:   "NACK: no chip at the address",
			ch:     Channel{Input: 0},
			failAt: 0,
			err:    "pcf8591 at 0x48 on playback: convert: sysfs-i2c: remote I/O error|does a chip answer at 0x48?",
		},
		{
			name: "short read: only the stale byte recorded",
			ch:   Channel{Input: 1},
			ops:  []i2ctest.IO{convert(0x01, 0x80)},
			// Playback refuses the transaction without consuming it.
			failAt: -1, left: 1,
			err: "pcf8591 at 0x48 on playback: convert: |read buffer length",
		},
		{
			name:   "address the A pins cannot give, before any transaction",
			addr:   0x20,
			ch:     Channel{Input: 0},
			failAt: -1,
			err:    "pcf8591: address 0x20: the A2–A0 pins strap it to one of 0x48, 0x49",
		},
		{name: "input 4 checked before any transaction", ch: Channel{Input: 4}, failAt: -1, field: "input"},
		{name: "pair 3-0 checked before any transaction", ch: Channel{Input: 3, Diff: true, Neg: 0}, failAt: -1, field: "neg"},
		{name: "rate checked before any transaction", ch: Channel{Rate: 8}, failAt: -1, field: "rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPCF8591(replayI2C(t, tt.ops, tt.failAt, errNACK, tt.left), tt.addr, tt.vref)
			p.SetOutputEnable(tt.aout)
			s, err := p.Convert(tt.ch)
			if tt.field != "" {
				if got := fieldOf(err); got != tt.field {
					t.Fatalf("Convert = %v, want an error on %q", err, tt.field)
				}
				return
			}
			checkErr(t, err, tt.err)
			if tt.failAt >= 0 && !errors.Is(err, errNACK) {
				t.Errorf("Convert = %v, want the bus error wrapped", err)
			}
			if tt.err == "" {
				checkSample(t, s, tt.raw, tt.volts)
			}
		})
	}
}

func TestPCF8591Probe(t *testing.T) {
	tests := []struct {
		name   string
		ops    []i2ctest.IO
		failAt int
		err    string
	}{
		{name: "chip answers", ops: []i2ctest.IO{{Addr: 0x48, R: []byte{0x80}}}, failAt: -1},
		{name: "nothing answers", failAt: 0, err: "pcf8591 at 0x48 on playback: read: sysfs-i2c: remote I/O error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPCF8591(replayI2C(t, tt.ops, tt.failAt, errNACK, 0), 0, 0)
			checkErr(t, p.probe(), tt.err)
		})
	}
}
