package ain

import (
	"fmt"

	"periph.io/x/conn/v3/i2c"
)

// PCF8591 converts the four analog inputs of an NXP PCF8591 on an I2C
// bus (datasheet PCF8591 Rev. 6, 2013, whose section and figure numbers
// the comments below use; older Philips editions number them
// differently). The chip's DAC output belongs to the dac service; see
// SetOutputEnable.
type PCF8591 struct {
	dev  i2c.Dev
	bus  string
	vref float64
	chip Chip
	s    session

	aout bool // analog output enable flag, bit 6 of the control byte
}

var _ Converter = (*PCF8591)(nil)

// Control byte (datasheet §8.2, Figure 4 "Control byte"): bit 6 analog
// output enable, bits 5:4 analog input programming, bit 2 auto-increment
// (never set here), bits 1:0 A/D channel number.
const (
	pcfOutputEnable = 0x40
	pcfSingle       = 0x00 // four single-ended inputs
	pcfThreeDiff    = 0x10 // AIN0–AIN2 each against AIN3
	pcfTwoDiff      = 0x30 // AIN0 − AIN1, AIN2 − AIN3
)

// NewPCF8591 returns a converter for the chip's ADC at addr (0x48–0x4F;
// 0 means 0x48) on b. vref is the voltage between VREF and AGND; 0 or less
// means 3.3 V. Close does not close b: its opener does.
func NewPCF8591(b i2c.Bus, addr uint16, vref float64) *PCF8591 {
	if addr == 0 {
		addr = 0x48
	}
	if vref <= 0 {
		vref = defaultVRef
	}
	chip, _ := LookupChip(ChipPCF8591)
	return &PCF8591{dev: i2c.Dev{Bus: b, Addr: addr}, bus: b.String(), vref: vref, chip: chip}
}

// Chip describes the PCF8591.
func (p *PCF8591) Chip() Chip { return p.chip }

// VRef returns the reference voltage volts are scaled by.
func (p *PCF8591) VRef() float64 { return p.vref }

// SetOutputEnable sets the analog output enable flag in the control
// bytes Convert sends. Every control byte rewrites the flag, so on a chip
// whose AOUT the dac service drives, set it, or the first conversion
// switches AOUT off. The flag also keeps the chip's oscillator running.
func (p *PCF8591) SetOutputEnable(on bool) {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.aout = on
}

// Convert selects ch with a control byte, then reads two bytes, in one
// combined transaction (write, repeated start, read): the first byte is
// the result of the previous conversion (§8.4 "A/D conversion": a
// conversion starts when the read address is acknowledged and is sent
// while the previous result goes out), so it is dropped. One transaction
// keeps the control byte and its conversion together: the kernel holds
// the bus for the whole I2C_RDWR, so the DAC half of the chip, written by
// another service or process, cannot slip a control byte of its own in
// between and have this read convert its input instead. Raw is 0–255
// single-ended and two's complement −128–127 in differential mode (same
// section); Volts is Raw × vref / 256. The chip converts while the bus
// clocks the byte out, so there is nothing to wait for.
func (p *PCF8591) Convert(ch Channel) (Sample, error) {
	if err := p.chip.Check(ch); err != nil {
		return Sample{}, err
	}
	if err := p.s.lock(); err != nil {
		return Sample{}, fmt.Errorf("pcf8591 at %#x on %s: %w", p.dev.Addr, p.bus, err)
	}
	defer p.s.mu.Unlock()
	if !p.chip.hasAddr(p.dev.Addr) {
		return Sample{}, fmt.Errorf("pcf8591: address %#x: the A2–A0 pins strap it to one of %s", p.dev.Addr, addrList(p.chip.Addrs))
	}
	// Write mode, Figure 15: address, then the control byte alone, which
	// leaves the DAC data register as it is; then read mode, Figure 16:
	// address, then data bytes.
	var r [2]byte
	if err := p.dev.Tx([]byte{p.control(ch)}, r[:]); err != nil {
		return Sample{}, p.busFail("convert", err)
	}
	raw := int64(r[1])
	if ch.Diff {
		raw = int64(int8(r[1]))
	}
	return Sample{Raw: raw, Volts: float64(raw) * p.vref / 256}, nil
}

// control is the control byte selecting ch, which Check accepted.
func (p *PCF8591) control(ch Channel) byte {
	var b byte
	switch {
	case !ch.Diff:
		b = pcfSingle | byte(ch.Input)
	case ch.Neg == 3: // 0-3, 1-3, 2-3: channels 0–2 of the three-differential mode
		b = pcfThreeDiff | byte(ch.Input)
	default: // 0-1: channel 0 of the two-differential mode
		b = pcfTwoDiff
	}
	if p.aout {
		b |= pcfOutputEnable
	}
	return b
}

// probe reads one byte, which only starts a conversion, so Open fails on
// a missing chip.
func (p *PCF8591) probe() error {
	var r [1]byte
	if err := p.dev.Tx(nil, r[:]); err != nil {
		return p.busFail("read", err)
	}
	return nil
}

func (p *PCF8591) busFail(step string, err error) error {
	return fmt.Errorf("pcf8591 at %#x on %s: %s: %w (%s)", p.dev.Addr, p.bus, step, err, i2cHint(p.dev.Addr))
}

// Close releases the I2C bus when Open opened it.
func (p *PCF8591) Close() error { return p.s.close() }
