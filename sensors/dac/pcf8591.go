package dac

import (
	"fmt"
	"io"
	"sync"

	"periph.io/x/conn/v3/i2c"
)

// pcf8591AOEF is the analog output enable flag, bit 6 of the control
// byte (PCF8591 Rev. 7 §8.2, Figure 4). The other bits select the ADC's
// input mode and channel; 0 is four single-ended inputs, channel 0, no
// auto-increment.
const pcf8591AOEF = 0x40

// PCF8591 is the DAC of an NXP PCF8591 (8-bit, one output, AOUT) on an
// I2C bus. Its reference is the VREF pin, often tied to VDD on modules.
//
// The chip's four ADC inputs share its one control byte. Each Write
// sends the control byte with the output enabled and the ADC bits at 0,
// so code reading the ADC of the same chip must send its own control
// byte before each conversion, with bit 6 set, or it turns the output
// off.
type PCF8591 struct {
	dev    i2c.Dev
	closer io.Closer // the bus, when Open opened it

	mu     sync.Mutex
	closed bool
}

var _ Output = (*PCF8591)(nil)

// NewPCF8591 returns the PCF8591 at addr (0x48–0x4f, by its A2..A0 pins)
// on b. It does not talk to the chip.
func NewPCF8591(b i2c.Bus, addr uint16) *PCF8591 {
	return &PCF8591{dev: i2c.Dev{Bus: b, Addr: addr}}
}

// String names the chip, its bus and its address, as errors do.
func (d *PCF8591) String() string {
	return fmt.Sprintf("pcf8591 on %s at %#02x", d.dev.Bus, d.dev.Addr)
}

// Write enables the analog output and sets it to raw (0–255) in one
// transaction: address, control byte, data byte (Figure 15, "Bus
// protocol for write mode, D/A conversion").
func (d *PCF8591) Write(raw int) error {
	if err := checkRaw(d, raw, 8); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%v: write: %w", d, errClosed)
	}
	if err := d.dev.Tx([]byte{pcf8591AOEF, byte(raw)}, nil); err != nil {
		return fmt.Errorf("%v: write %d: %w", d, raw, err)
	}
	return nil
}

// probe reads one byte to learn whether the chip answers. A read only
// returns the last ADC conversion and starts the next one: the DAC is
// untouched.
func (d *PCF8591) probe() error {
	var b [1]byte
	if err := d.dev.Tx(nil, b[:]); err != nil {
		return fmt.Errorf("%v: read: %w", d, err)
	}
	return nil
}

// Close closes the bus if Open opened it. The output stays enabled at
// its last value.
func (d *PCF8591) Close() error {
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
