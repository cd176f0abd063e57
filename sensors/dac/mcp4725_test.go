package dac

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

// The byte sequences below are built from Microchip's MCP4725 datasheet,
// DS22039D:
//
//   - fast mode write, Figure 6-1 (§6.1.1): [0 0 PD1 PD0 D11 D10 D9 D8]
//     [D7..D0], with PD1 PD0 = 00 for normal operation;
//   - write DAC register and EEPROM, Figure 6-2 (B): [0 1 1 x x PD1 PD0 x]
//     [D11..D4] [D3..D0 x x x x];
//   - read, Figure 6-3: [RDY/BSY POR x x x PD1 PD0 x] [D11..D4]
//     [D3..D0 x x x x] [x PD1 PD0 x D11..D8 of the EEPROM] [D7..D0 of the
//     EEPROM]; RDY/BSY is 1 when an EEPROM write has completed.
const (
	statusReady = 0xc0 // RDY/BSY = 1, POR = 1, PD = 00
	statusBusy  = 0x40 // RDY/BSY = 0: EEPROM write in progress
)

func TestMCP4725Write(t *testing.T) {
	tests := []struct {
		name string
		addr uint16
		raw  int
		w    []byte // nil: nothing may reach the bus
		err  error
	}{
		{name: "zero", addr: 0x60, raw: 0, w: []byte{0x00, 0x00}},
		{name: "mid scale", addr: 0x60, raw: 2048, w: []byte{0x08, 0x00}},
		{name: "full scale", addr: 0x60, raw: 4095, w: []byte{0x0f, 0xff}},
		{name: "every nibble", addr: 0x61, raw: 0x123, w: []byte{0x01, 0x23}},
		{name: "A3 part, A0 high", addr: 0x67, raw: 0xabc, w: []byte{0x0a, 0xbc}},
		{name: "above 12 bits", addr: 0x60, raw: 4096, err: ErrRange},
		{name: "negative", addr: 0x60, raw: -1, err: ErrRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ops []i2ctest.IO
			if tc.w != nil {
				ops = append(ops, i2ctest.IO{Addr: tc.addr, W: tc.w})
			}
			d := NewMCP4725(playback(t, ops...), tc.addr)
			err := d.Write(tc.raw)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Write(%d) = %v, want %v", tc.raw, err, tc.err)
			}
		})
	}
}

func TestMCP4725WriteEEPROM(t *testing.T) {
	busy := i2ctest.IO{Addr: 0x60, R: []byte{statusBusy}}
	ready := i2ctest.IO{Addr: 0x60, R: []byte{statusReady}}
	tests := []struct {
		name   string
		raw    int
		ops    []i2ctest.IO
		nack   int    // the transaction, from 1, the chip does not acknowledge; 0: none
		short  bool   // the last transaction reads short
		want   string // "" for success, else part of the error
		sleeps int    // polls made, one pause before each
	}{
		{
			name:   "ready at the third poll",
			raw:    2048,
			ops:    []i2ctest.IO{{Addr: 0x60, W: []byte{0x60, 0x80, 0x00}}, busy, busy, ready},
			sleeps: 3,
		},
		{
			name:   "every nibble",
			raw:    0xabc,
			ops:    []i2ctest.IO{{Addr: 0x60, W: []byte{0x60, 0xab, 0xc0}}, ready},
			sleeps: 1,
		},
		{
			name:   "still busy at the deadline",
			raw:    1,
			ops:    append([]i2ctest.IO{{Addr: 0x60, W: []byte{0x60, 0x00, 0x10}}}, slices.Repeat([]i2ctest.IO{busy}, 20)...),
			want:   "mcp4725 on playback at 0x60: eeprom write 1: chip still busy after 100ms",
			sleeps: 20,
		},
		{
			name: "NACK on the write",
			raw:  7,
			ops:  []i2ctest.IO{{Addr: 0x60, W: []byte{0x60, 0x00, 0x70}}},
			nack: 1,
			want: "mcp4725 on playback at 0x60: eeprom write 7: sysfs-i2c: remote I/O error",
		},
		{
			name:   "NACK on a poll",
			raw:    7,
			ops:    []i2ctest.IO{{Addr: 0x60, W: []byte{0x60, 0x00, 0x70}}, busy, busy},
			nack:   3,
			want:   "eeprom write 7: poll: sysfs-i2c: remote I/O error",
			sleeps: 2,
		},
		{
			name:   "short read on a poll",
			raw:    7,
			ops:    []i2ctest.IO{{Addr: 0x60, W: []byte{0x60, 0x00, 0x70}}, {Addr: 0x60, R: []byte{}}},
			short:  true,
			want:   "eeprom write 7: poll: i2ctest: unexpected read buffer length",
			sleeps: 1,
		},
		{
			name: "out of range",
			raw:  4096,
			want: "raw 4096 outside 0..4095: value out of range",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bus := &testBus{Playback: playbackShort(t, tc.short, tc.ops...), nack: tc.nack}
			clk := &fakeClock{now: time.Unix(0, 0)}
			d := NewMCP4725(bus, 0x60)
			d.clock = clk
			err := d.WriteEEPROM(tc.raw)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("WriteEEPROM(%d) = %v", tc.raw, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("WriteEEPROM(%d) = %v, want an error containing %q", tc.raw, err, tc.want)
			}
			if len(clk.sleeps) != tc.sleeps {
				t.Errorf("%d pauses, want %d", len(clk.sleeps), tc.sleeps)
			}
			for _, s := range clk.sleeps {
				if s != mcp4725EEPROMPoll {
					t.Errorf("paused %v, want %v", s, mcp4725EEPROMPoll)
				}
			}
		})
	}
}

// The chip ignores writes while it programs its EEPROM, so a Write from
// another goroutine must wait for WriteEEPROM to finish.
func TestMCP4725WriteWaitsForEEPROM(t *testing.T) {
	bus := playback(t,
		i2ctest.IO{Addr: 0x60, W: []byte{0x60, 0x80, 0x00}},
		i2ctest.IO{Addr: 0x60, R: []byte{statusBusy}},
		i2ctest.IO{Addr: 0x60, R: []byte{statusReady}},
		i2ctest.IO{Addr: 0x60, W: []byte{0x00, 0x05}},
	)
	d := NewMCP4725(bus, 0x60)
	clk := &fakeClock{}
	clk.onSleep = func() {
		if d.mu.TryLock() {
			d.mu.Unlock()
			t.Error("the chip is unlocked while its EEPROM is being written")
		}
	}
	d.clock = clk
	if err := d.WriteEEPROM(2048); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(5); err != nil {
		t.Fatal(err)
	}
}

func TestMCP4725Read(t *testing.T) {
	tests := []struct {
		name        string
		r           []byte
		nack        bool
		short       bool
		dac, eeprom int
		want        string // "" for success, else part of the error
	}{
		{name: "both mid scale", r: []byte{statusReady, 0x80, 0x00, 0x08, 0x00}, dac: 2048, eeprom: 2048},
		{name: "every nibble", r: []byte{statusReady, 0xab, 0xcf, 0x0a, 0xbc}, dac: 0xabc, eeprom: 0xabc},
		// PD bits set in both: the codes must not take them in.
		{name: "powered down, EEPROM to power up down", r: []byte{0xc6, 0x12, 0x30, 0x6f, 0xff}, dac: 0x123, eeprom: 0xfff},
		{name: "NACK", r: []byte{statusReady, 0x80, 0x00, 0x08, 0x00}, nack: true, want: "mcp4725 on playback at 0x60: read: sysfs-i2c: remote I/O error"},
		{name: "short read", r: []byte{statusReady, 0x80, 0x00}, short: true, want: "mcp4725 on playback at 0x60: read: i2ctest: unexpected read buffer length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bus := &testBus{Playback: playbackShort(t, tc.short, i2ctest.IO{Addr: 0x60, R: tc.r})}
			if tc.nack {
				bus.nack = 1
			}
			dac, eeprom, err := NewMCP4725(bus, 0x60).Read()
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Read() error = %v, want one containing %q", err, tc.want)
				}
				if dac != 0 || eeprom != 0 {
					t.Errorf("Read() = %d, %d with an error, want 0, 0", dac, eeprom)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if dac != tc.dac || eeprom != tc.eeprom {
				t.Errorf("Read() = %#x, %#x, want %#x, %#x", dac, eeprom, tc.dac, tc.eeprom)
			}
		})
	}
}

func TestMCP4725NACKOnWrite(t *testing.T) {
	bus := &testBus{Playback: playback(t, i2ctest.IO{Addr: 0x60, W: []byte{0x08, 0x00}}), nack: 1}
	err := NewMCP4725(bus, 0x60).Write(2048)
	if !errors.Is(err, errNACK) {
		t.Fatalf("Write = %v, want the bus's error", err)
	}
	if want := "mcp4725 on playback at 0x60: write 2048: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
}

func TestMCP4725Close(t *testing.T) {
	// Close leaves the output alone, and nothing reaches the bus after
	// it. (A chip made with NewMCP4725 does not own its bus: Record has
	// no Close to call.)
	rec := &i2ctest.Record{}
	d := NewMCP4725(rec, 0x60)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := d.Write(1); !errors.Is(err, errClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	if err := d.WriteEEPROM(1); !errors.Is(err, errClosed) {
		t.Errorf("WriteEEPROM after Close = %v", err)
	}
	if _, _, err := d.Read(); !errors.Is(err, errClosed) {
		t.Errorf("Read after Close = %v", err)
	}
	if len(rec.Ops) != 0 {
		t.Errorf("bus traffic at or after Close: %+v", rec.Ops)
	}
}
