package ain

import (
	"encoding/binary"
	"fmt"
	"time"

	"periph.io/x/conn/v3/i2c"
)

// ADS1x15 converts the inputs of a TI ADS1115 (16-bit, datasheet SBAS444)
// or ADS1015 (12-bit, SBAS473) on an I2C bus, one single-shot conversion
// at a time.
//
// It writes the register transactions itself rather than use periph's
// devices/v3/ads1x15 (v3.7.4 and its main branch), which can select an
// exact PGA range and data rate but then sleeps exactly one nominal
// period and reads the conversion register without looking at the OS
// bit: the datasheets allow the data rate to be 10% slow, so that read
// can return the previous conversion, of another input after a switch.
// It also returns the ADS1015's left-justified register, not its 12-bit
// code, and its sleep cannot be replaced, so a replayed test at 8 SPS
// would really wait.
type ADS1x15 struct {
	dev  i2c.Dev
	bus  string
	chip Chip
	s    session

	// sleep waits for the chip; tests replace it to run without waiting.
	sleep func(time.Duration)
}

var _ Converter = (*ADS1x15)(nil)

// Registers, by the value of the address pointer register P[1:0]
// (SBAS444 "Address Pointer Register" table).
const (
	adsRegConversion = 0x00
	adsRegConfig     = 0x01
)

// Config register bits (SBAS444 "Config Register" field table).
const (
	adsOS         = 1 << 15 // write: start a single conversion; read: 1 = idle
	adsMuxShift   = 12
	adsPGAShift   = 9
	adsModeSingle = 1 << 8 // single-shot, then power-down
	adsDRShift    = 5
	adsCompOff    = 0b11 // COMP_QUE: comparator disabled, ALERT/RDY high-Z
)

// adsMaxPolls bounds how often Convert reads the OS bit after the
// expected conversion time: each poll waits a tenth of a period, so the
// conversion may take twice its nominal time before Convert gives up.
const adsMaxPolls = 10

// NewADS1x15 returns a converter for the chip ("ads1115" or "ads1015")
// strapped to addr (0x48–0x4B) on b. Close does not close b: its opener
// does.
func NewADS1x15(b i2c.Bus, addr uint16, chip string) (*ADS1x15, error) {
	c, ok := LookupChip(chip)
	if !ok || (c.Name != ChipADS1115 && c.Name != ChipADS1015) {
		return nil, fmt.Errorf("ads1x15: chip %q is neither ads1115 nor ads1015", chip)
	}
	if !c.hasAddr(addr) {
		return nil, fmt.Errorf("%s: address %#x: the ADDR pin straps it to 0x48 (GND), 0x49 (VDD), 0x4a (SDA) or 0x4b (SCL)", c.Name, addr)
	}
	return &ADS1x15{dev: i2c.Dev{Bus: b, Addr: addr}, bus: b.String(), chip: c, sleep: time.Sleep}, nil
}

// Chip describes the ADS1115 or ADS1015.
func (a *ADS1x15) Chip() Chip { return a.chip }

// Convert starts a single-shot conversion of ch with its range and rate
// (the chip's defaults when zero), waits one period plus the 10% the
// datasheet allows the oscillator, polls the OS bit until the chip is
// idle, and reads the result. Raw is the signed code (12 bits on the
// ADS1015); Volts is Raw × range / 2^(bits-1). Whatever the range, an
// input must stay within GND − 0.3 V and VDD + 0.3 V.
func (a *ADS1x15) Convert(ch Channel) (Sample, error) {
	if err := a.chip.Check(ch); err != nil {
		return Sample{}, err
	}
	if err := a.s.lock(); err != nil {
		return Sample{}, a.fail("convert", err)
	}
	defer a.s.mu.Unlock()
	ch = a.chip.WithDefaults(ch)
	cfg := a.config(ch)

	// Writing: pointer byte then the register MSB first (SBAS444 "Timing
	// Diagram for Writing"); reading: pointer write, repeated start, two
	// bytes MSB first ("Timing Diagram for Reading").
	if err := a.dev.Tx([]byte{adsRegConfig, byte(cfg >> 8), byte(cfg)}, nil); err != nil {
		return Sample{}, a.busFail("write config", err)
	}
	period := time.Second / time.Duration(ch.Rate)
	a.sleep(period + period/10 + 50*time.Microsecond)
	var r [2]byte
	for n := 0; ; n++ {
		if err := a.dev.Tx([]byte{adsRegConfig}, r[:]); err != nil {
			return Sample{}, a.busFail("read config", err)
		}
		if binary.BigEndian.Uint16(r[:])&adsOS != 0 {
			break
		}
		if n == adsMaxPolls {
			return Sample{}, a.fail("convert", fmt.Errorf("still converting after %v at %d SPS", 2*period, ch.Rate))
		}
		a.sleep(period/10 + 20*time.Microsecond)
	}
	if err := a.dev.Tx([]byte{adsRegConversion}, r[:]); err != nil {
		return Sample{}, a.busFail("read conversion", err)
	}
	// The ADS1015 leaves its 12 bits left-justified, bits 3:0 zero (SBAS473
	// "Conversion Register"); an arithmetic shift keeps the sign.
	raw := int64(int16(binary.BigEndian.Uint16(r[:])) >> (16 - a.chip.Bits))
	fs := float64(int64(1) << (a.chip.Bits - 1))
	return Sample{Raw: raw, Volts: float64(raw) * ch.Range / fs}, nil
}

// config is the config register value that starts ch's conversion; ch's
// Range and Rate are set and valid.
func (a *ADS1x15) config(ch Channel) uint16 {
	mux := uint16(4 + ch.Input) // 100–111: AINx against GND
	if ch.Diff {
		for i, p := range adsPairs {
			if p == [2]int{ch.Input, ch.Neg} {
				mux = uint16(i)
			}
		}
	}
	pga := uint16(a.chip.rangeIndex(ch.Range))
	var dr uint16
	for i, r := range a.chip.Rates {
		if r == ch.Rate {
			dr = uint16(i)
		}
	}
	return adsOS | mux<<adsMuxShift | pga<<adsPGAShift | adsModeSingle | dr<<adsDRShift | adsCompOff
}

// probe reads the config register, so Open fails on a missing chip.
func (a *ADS1x15) probe() error {
	var r [2]byte
	if err := a.dev.Tx([]byte{adsRegConfig}, r[:]); err != nil {
		return a.busFail("read config", err)
	}
	return nil
}

func (a *ADS1x15) fail(step string, err error) error {
	return fmt.Errorf("%s at %#x on %s: %s: %w", a.chip.Name, a.dev.Addr, a.bus, step, err)
}

// busFail is fail for an error of the bus itself, which on a Pi is most
// often a NACK: nothing answers at the address.
func (a *ADS1x15) busFail(step string, err error) error {
	return fmt.Errorf("%s at %#x on %s: %s: %w (%s)", a.chip.Name, a.dev.Addr, a.bus, step, err, i2cHint(a.dev.Addr))
}

// Close releases the I2C bus when Open opened it.
func (a *ADS1x15) Close() error { return a.s.close() }
