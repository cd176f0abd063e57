package dac

import (
	"fmt"
	"io"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
)

// MCP4725 command bytes and status bits, from Microchip DS22039D §6.
const (
	// Fast mode write (§6.1.1, Figure 6-1): C2 C1 = 00, PD1 PD0, then
	// D11..D8 in the first byte and D7..D0 in the second. PD1 PD0 = 00
	// is normal operation, so a write also wakes a powered-down chip.
	mcp4725Fast = 0x00
	// Write DAC register and EEPROM (Figure 6-2 (B)): C2 C1 C0 = 011,
	// PD1 PD0 = 00, then D11..D4, then D3..D0 in the high nibble.
	mcp4725WriteEEPROM = 0x60
	// First byte of a read (Figure 6-3): RDY/BSY is 1 once an EEPROM
	// write has completed.
	mcp4725Ready = 0x80
)

// The chip needs up to 50 ms to program its EEPROM (DS22039D electrical
// characteristics: EEPROM write time 25 ms typical, 50 ms maximum) and
// ignores every write until it is done (Figure 6-2 note 1).
const (
	mcp4725EEPROMPoll = 5 * time.Millisecond
	// Twice the datasheet's maximum: a chip that takes longer is broken
	// or absent, and the caller must hear about it.
	mcp4725EEPROMTimeout = 100 * time.Millisecond
)

// A clock is what the EEPROM poll needs of time, so tests can run it
// without sleeping.
type clock interface {
	Now() time.Time
	Sleep(time.Duration)
}

type realClock struct{}

func (realClock) Now() time.Time        { return time.Now() }
func (realClock) Sleep(d time.Duration) { time.Sleep(d) }

// MCP4725 is a Microchip MCP4725 12-bit DAC on an I2C bus. Its reference
// is its own supply, VDD. It is safe for concurrent use: calls are
// serialized, so a Write cannot land while the chip is programming its
// EEPROM and would ignore it.
type MCP4725 struct {
	dev    i2c.Dev
	closer io.Closer // the bus, when Open opened it
	clock  clock

	mu     sync.Mutex
	closed bool
}

var _ Output = (*MCP4725)(nil)

// NewMCP4725 returns the MCP4725 at addr (0x60–0x67, by part and A0
// pin) on b. It does not talk to the chip; Open does, to fail early.
func NewMCP4725(b i2c.Bus, addr uint16) *MCP4725 {
	return &MCP4725{dev: i2c.Dev{Bus: b, Addr: addr}, clock: realClock{}}
}

// String names the chip, its bus and its address, as errors do.
func (d *MCP4725) String() string {
	return fmt.Sprintf("mcp4725 on %s at %#02x", d.dev.Bus, d.dev.Addr)
}

// Write sets the DAC register with the fast mode write; the EEPROM, and
// so the value at the next power-up, is unchanged.
func (d *MCP4725) Write(raw int) error {
	if err := checkRaw(d, raw, 12); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%v: write: %w", d, errClosed)
	}
	w := []byte{mcp4725Fast | byte(raw>>8), byte(raw)}
	if err := d.dev.Tx(w, nil); err != nil {
		return fmt.Errorf("%v: write %d: %w", d, raw, err)
	}
	return nil
}

// WriteEEPROM sets the DAC register and the EEPROM, so the chip comes
// back to raw after a power loss, and returns once the chip reports the
// EEPROM written. That takes 25–50 ms and wears the EEPROM (rated for
// about a million writes): use it for a power-on value, not for every
// change.
func (d *MCP4725) WriteEEPROM(raw int) error {
	if err := checkRaw(d, raw, 12); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%v: eeprom write: %w", d, errClosed)
	}
	w := []byte{mcp4725WriteEEPROM, byte(raw >> 4), byte(raw << 4)}
	if err := d.dev.Tx(w, nil); err != nil {
		return fmt.Errorf("%v: eeprom write %d: %w", d, raw, err)
	}
	// Reading one byte is enough: the master may stop after the
	// status byte (Figure 6-3).
	var status [1]byte
	start := d.clock.Now()
	for {
		d.clock.Sleep(mcp4725EEPROMPoll)
		if err := d.dev.Tx(nil, status[:]); err != nil {
			return fmt.Errorf("%v: eeprom write %d: poll: %w", d, raw, err)
		}
		if status[0]&mcp4725Ready != 0 {
			return nil
		}
		// Checked after a poll, so a late wake-up (a busy Pi Zero)
		// still gets one last look before giving up.
		if waited := d.clock.Now().Sub(start); waited >= mcp4725EEPROMTimeout {
			return fmt.Errorf("%v: eeprom write %d: chip still busy after %v (datasheet maximum 50ms)", d, raw, waited)
		}
	}
}

// Read returns the DAC register and the EEPROM's value, the code the
// chip will take at power-up.
func (d *MCP4725) Read() (dac, eeprom int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, 0, fmt.Errorf("%v: read: %w", d, errClosed)
	}
	return d.read()
}

func (d *MCP4725) read() (dac, eeprom int, err error) {
	// Figure 6-3: status; D11..D4; D3..D0 xxxx; x PD1 PD0 x D11..D8
	// (EEPROM); D7..D0 (EEPROM).
	var r [5]byte
	if err := d.dev.Tx(nil, r[:]); err != nil {
		return 0, 0, fmt.Errorf("%v: read: %w", d, err)
	}
	dac = int(r[1])<<4 | int(r[2])>>4
	eeprom = int(r[3]&0x0f)<<8 | int(r[4])
	return dac, eeprom, nil
}

// Close closes the bus if Open opened it. The chip keeps its output.
func (d *MCP4725) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.closer != nil {
		if err := d.closer.Close(); err != nil {
			return fmt.Errorf("%v: close bus: %w", d, err)
		}
	}
	return nil
}
