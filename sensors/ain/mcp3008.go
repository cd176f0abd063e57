package ain

import (
	"fmt"

	"periph.io/x/conn/v3/spi"
)

// MCP3008 converts the inputs of a Microchip MCP3008 on an SPI port
// (datasheet DS21295), in mode 0 with 8-bit words.
type MCP3008 struct {
	c    spi.Conn
	vref float64
	chip Chip
	s    session
}

var _ Converter = (*MCP3008)(nil)

// NewMCP3008 returns a converter for the chip on c, which comes from
// spi.Port.Connect(f, spi.Mode0, 8). vref is the voltage on the VREF pin;
// 0 or less means 3.3 V, the Pi's supply. Close does not close c's port:
// its opener does.
func NewMCP3008(c spi.Conn, vref float64) *MCP3008 {
	if vref <= 0 {
		vref = defaultVRef
	}
	chip, _ := LookupChip(ChipMCP3008)
	return &MCP3008{c: c, vref: vref, chip: chip}
}

// defaultVRef is the Pi's 3.3 V rail, which feeds VREF (MCP3008) or VREF
// and VDD (PCF8591 modules) in the usual wiring.
const defaultVRef = 3.3

// Chip describes the MCP3008.
func (m *MCP3008) Chip() Chip { return m.chip }

// VRef returns the reference voltage volts are scaled by.
func (m *MCP3008) VRef() float64 { return m.vref }

// Convert makes one conversion. A pseudo-differential pair reads 0 when
// the positive input is below the negative one (datasheet §4.1).
func (m *MCP3008) Convert(ch Channel) (Sample, error) {
	if err := m.chip.Check(ch); err != nil {
		return Sample{}, err
	}
	if err := m.s.lock(); err != nil {
		return Sample{}, fmt.Errorf("mcp3008 on %s: %w", m.c, err)
	}
	defer m.s.mu.Unlock()
	raw, err := m.convert(ch)
	if err != nil {
		return Sample{}, err
	}
	return Sample{Raw: raw, Volts: float64(raw) * m.vref / 1024}, nil
}

// convert runs the 3-byte transaction of datasheet Figure 6-1 ("SPI
// communication with the MCP3004/3008 using 8-bit segments", mode 0,0).
func (m *MCP3008) convert(ch Channel) (int64, error) {
	w := mcp3008Request(ch)
	var r [3]byte
	if err := m.c.Tx(w[:], r[:]); err != nil {
		return 0, fmt.Errorf("mcp3008 on %s: convert input %d: %w (check SCLK, MOSI, MISO and CS wiring)", m.c, ch.Input, err)
	}
	// The chip drives DOUT low for one null bit before B9 (Figure 6-1);
	// a 1 there means nothing drove the line: no chip on this CS.
	if r[1]&0x04 != 0 {
		return 0, fmt.Errorf("mcp3008 on %s: convert input %d: no null bit in reply % x: is an MCP3008 wired to this chip select and powered?", m.c, ch.Input, r)
	}
	return int64(r[1]&0x03)<<8 | int64(r[2]), nil
}

// mcp3008Request is the bytes sent in Figure 6-1: seven zeros then the
// start bit; SGL/DIFF and D2–D0 in the top nibble (Table 5-2,
// "Configure bits for the MCP3008"); a don't-care byte while B7–B0 come
// back. In differential mode D2–D0 is the positive input of the pair,
// since the table lists CH0+/CH1- as 000, CH0-/CH1+ as 001, and so on.
func mcp3008Request(ch Channel) [3]byte {
	sgl := byte(0x80)
	if ch.Diff {
		sgl = 0
	}
	return [3]byte{0x01, sgl | byte(ch.Input&0x07)<<4, 0x00}
}

// probe converts input 0 once, so Open fails on a missing chip instead of
// the first Convert. It can only tell when MISO floats high without a
// chip; a line that floats low reads as a valid 0.
func (m *MCP3008) probe() error {
	_, err := m.Convert(Channel{Input: 0})
	return err
}

// Close releases the SPI port when Open opened it.
func (m *MCP3008) Close() error { return m.s.close() }
