package ain

import (
	"errors"
	"testing"

	"periph.io/x/conn/v3/conntest"
)

// The transfers below follow MCP3008 datasheet DS21295, Figure 6-1 ("SPI
// communication with the MCP3004/3008 using 8-bit segments"): sent, 0x01
// (seven zeros, start bit), then SGL/DIFF and D2–D0 in the high nibble
// (Table 5-2), then a don't-care byte; received, a don't-care byte, then
// bits that are high-Z until the null bit (bit 2, always 0) and B9–B8,
// then B7–B0.
func TestMCP3008(t *testing.T) {
	tests := []struct {
		name  string
		vref  float64
		ch    Channel
		ops   []conntest.IO
		left  int // transfers the driver must not reach
		raw   int64
		volts float64
		err   string
		field string
	}{
		{
			name: "CH0 single-ended at mid-scale",
			ch:   Channel{Input: 0},
			// SGL=1, D=000: 0x80; B9..B0 = 10 0000 0000.
			ops: []conntest.IO{{W: []byte{0x01, 0x80, 0x00}, R: []byte{0x00, 0x02, 0x00}}},
			raw: 512, volts: 1.65,
		},
		{
			name: "CH7 single-ended at full scale",
			ch:   Channel{Input: 7},
			// SGL=1, D=111: 0xF0.
			ops: []conntest.IO{{W: []byte{0x01, 0xF0, 0x00}, R: []byte{0x00, 0x03, 0xFF}}},
			raw: 1023, volts: 1023 * 3.3 / 1024,
		},
		{
			name: "high-Z bits before the null bit are ignored",
			ch:   Channel{Input: 3},
			// DOUT floats high before the null bit: 1111 1001 then 0x23.
			ops: []conntest.IO{{W: []byte{0x01, 0xB0, 0x00}, R: []byte{0xFF, 0xF9, 0x23}}},
			raw: 0x123, volts: 0x123 * 3.3 / 1024,
		},
		{
			name: "reference of 5 V",
			vref: 5,
			ch:   Channel{Input: 1},
			ops:  []conntest.IO{{W: []byte{0x01, 0x90, 0x00}, R: []byte{0x00, 0x03, 0xFF}}},
			raw:  1023, volts: 1023 * 5.0 / 1024,
		},
		{
			name: "pair CH0+ CH1-",
			ch:   Channel{Input: 0, Diff: true, Neg: 1},
			// SGL=0, D=000 (Table 5-2, first differential row).
			ops: []conntest.IO{{W: []byte{0x01, 0x00, 0x00}, R: []byte{0x00, 0x00, 0x64}}},
			raw: 100, volts: 100 * 3.3 / 1024,
		},
		{
			name: "pair CH1+ CH0-",
			ch:   Channel{Input: 1, Diff: true, Neg: 0},
			// SGL=0, D=001: "CH0 = IN-, CH1 = IN+".
			ops: []conntest.IO{{W: []byte{0x01, 0x10, 0x00}, R: []byte{0x00, 0x00, 0x00}}},
			raw: 0, volts: 0,
		},
		{
			name: "pair CH7+ CH6-",
			ch:   Channel{Input: 7, Diff: true, Neg: 6},
			// SGL=0, D=111.
			ops: []conntest.IO{{W: []byte{0x01, 0x70, 0x00}, R: []byte{0x00, 0x01, 0x00}}},
			raw: 256, volts: 256 * 3.3 / 1024,
		},
		{
			name: "no chip: MISO pulled high, no null bit",
			ch:   Channel{Input: 0},
			ops:  []conntest.IO{{W: []byte{0x01, 0x80, 0x00}, R: []byte{0xFF, 0xFF, 0xFF}}},
			err:  "mcp3008 on playback: convert input 0: no null bit in reply ff ff ff|wired to this chip select",
		},
		{
			name: "short read: two bytes recorded for a three-byte transfer",
			ch:   Channel{Input: 0},
			ops:  []conntest.IO{{W: []byte{0x01, 0x80, 0x00}, R: []byte{0x00, 0x02}}},
			left: 1,
			err:  "mcp3008 on playback: convert input 0: |read buffer length",
		},
		{name: "input 8 checked before any transfer", ch: Channel{Input: 8}, field: "input"},
		{name: "pair 0-2 checked before any transfer", ch: Channel{Input: 0, Diff: true, Neg: 2}, field: "neg"},
		{name: "range checked before any transfer", ch: Channel{Range: 2.048}, field: "range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMCP3008(replaySPI(t, tt.ops, tt.left), tt.vref)
			s, err := m.Convert(tt.ch)
			if tt.field != "" {
				if got := fieldOf(err); got != tt.field {
					t.Fatalf("Convert = %v, want an error on %q", err, tt.field)
				}
				return
			}
			checkErr(t, err, tt.err)
			if tt.err == "" {
				checkSample(t, s, tt.raw, tt.volts)
			}
		})
	}
}

func TestMCP3008BusError(t *testing.T) {
	busErr := errors.New("sysfs-spi: Tx() failed: no such device")
	m := NewMCP3008(failConn{Conn: replaySPI(t, nil, 0), err: busErr}, 3.3)
	_, err := m.Convert(Channel{Input: 2})
	if !errors.Is(err, busErr) {
		t.Fatalf("Convert = %v, want the bus error wrapped", err)
	}
	checkErr(t, err, "mcp3008 on playback: convert input 2: |check SCLK, MOSI, MISO and CS")
}

func TestMCP3008Closed(t *testing.T) {
	m := NewMCP3008(replaySPI(t, nil, 0), 0)
	if m.VRef() != 3.3 {
		t.Errorf("VRef() = %v, want the 3.3 V default", m.VRef())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Convert(Channel{}); !errors.Is(err, errClosed) {
		t.Errorf("Convert after Close = %v, want errClosed", err)
	}
}
