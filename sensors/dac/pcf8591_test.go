package dac

import (
	"errors"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

// The byte sequences below are built from NXP's PCF8591 datasheet,
// Rev. 7: Figure 15 ("Bus protocol for write mode, D/A conversion") is
// address, control byte, data byte; the control byte (§8.2, Figure 4) is
// [0 AOEF AIP1 AIP0 0 AINC AICH1 AICH0], so 0x40 enables the analog
// output and leaves the ADC in four single-ended inputs, channel 0.
func TestPCF8591Write(t *testing.T) {
	tests := []struct {
		name string
		addr uint16
		raw  int
		w    []byte // nil: nothing may reach the bus
		nack bool
		err  error
		want string // part of the error
	}{
		{name: "zero", addr: 0x48, raw: 0, w: []byte{0x40, 0x00}},
		{name: "mid scale", addr: 0x48, raw: 128, w: []byte{0x40, 0x80}},
		{name: "full scale", addr: 0x48, raw: 255, w: []byte{0x40, 0xff}},
		{name: "A2 A1 A0 high", addr: 0x4f, raw: 0x5a, w: []byte{0x40, 0x5a}},
		{name: "above 8 bits", addr: 0x48, raw: 256, err: ErrRange, want: "pcf8591 on playback at 0x48: raw 256 outside 0..255"},
		{name: "negative", addr: 0x48, raw: -1, err: ErrRange},
		{name: "NACK", addr: 0x48, raw: 3, w: []byte{0x40, 0x03}, nack: true, err: errNACK, want: "pcf8591 on playback at 0x48: write 3: sysfs-i2c: remote I/O error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ops []i2ctest.IO
			if tc.w != nil {
				ops = append(ops, i2ctest.IO{Addr: tc.addr, W: tc.w})
			}
			bus := &testBus{Playback: playback(t, ops...)}
			if tc.nack {
				bus.nack = 1
			}
			d := NewPCF8591(bus, tc.addr)
			err := d.Write(tc.raw)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Write(%d) = %v, want %v", tc.raw, err, tc.err)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestPCF8591Close(t *testing.T) {
	// Close must not switch the output off, and nothing reaches the bus
	// after it.
	rec := &i2ctest.Record{}
	d := NewPCF8591(rec, 0x48)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(1); !errors.Is(err, errClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	if len(rec.Ops) != 0 {
		t.Errorf("bus traffic at or after Close: %+v", rec.Ops)
	}
}
