package dac

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"strings"
	"sync"

	"github.com/rollcall/rollcall/sensors/iio"
)

// iioBits lists the IIO drivers IIO knows, by the device's name file,
// with the width of their raw codes. A DAC of another width would turn
// every conversion through Chip.Bits wrong, so others are refused.
var iioBits = map[string]int{
	"mcp4725": 12,
	"mcp4726": 12, // same kernel driver
}

// IIO is one output of a DAC run by a kernel IIO driver, the mcp4725
// driver on a Pi, through sysfs:
//
//	out_voltageN_raw                       the code, 0–4095; reads return the driver's copy
//	out_voltage_scale                      mV per LSB (shared by all channels; _N_ on some drivers)
//	out_voltageN_powerdown                 1: output off, pulled to ground by powerdown_mode
//	out_voltageN_powerdown_mode            1kohm_to_gnd, 100kohm_to_gnd, 500kohm_to_gnd
//	out_voltage_powerdown_mode_available   the modes above
//	store_eeprom                           write 1: the current code and power state become the power-up ones
//
// The driver keeps a code it refused (EINVAL above 4095) as its copy, so
// out_voltage0_raw then reads back a value the chip never got; Write
// checks the range first so that cannot happen.
type IIO struct {
	dev    iio.Device
	raw    string // "out_voltage0_raw"
	pd     string // "out_voltage0_powerdown", "" when the driver has none
	bits   int
	vref   float64
	mu     sync.Mutex
	closed bool
}

var _ Output = (*IIO)(nil)

// NewIIO opens channel of the IIO device named device ("mcp4725", or a
// directory such as "iio:device0") in the sysfs tree fsys.
func NewIIO(fsys iio.FS, device string, channel int) (*IIO, error) {
	if channel < 0 {
		return nil, fmt.Errorf("dac iio %s: channel %d: must be 0 or more", device, channel)
	}
	dev, err := iio.Find(fsys, device)
	if err != nil {
		return nil, fmt.Errorf("dac: %w", err)
	}
	who := fmt.Sprintf("iio %s (%s)", path.Base(dev.Dir), dev.Name)
	bits, ok := iioBits[dev.Name]
	if !ok {
		return nil, fmt.Errorf("dac %s: not a DAC driver this package knows (mcp4725, mcp4726)", who)
	}
	d := &IIO{
		dev:  dev,
		raw:  fmt.Sprintf("out_voltage%d_raw", channel),
		bits: bits,
	}
	if !dev.Has(d.raw) {
		have, _ := fs.Glob(fsys, path.Join(dev.Dir, "out_voltage*_raw"))
		for i, h := range have {
			have[i] = path.Base(h)
		}
		return nil, fmt.Errorf("dac %s: no %s (outputs there: %s)", who, d.raw, strings.Join(have, ", "))
	}
	if pd := fmt.Sprintf("out_voltage%d_powerdown", channel); dev.Has(pd) {
		d.pd = pd
	}
	d.vref = d.readVRef(channel)
	return d, nil
}

// readVRef derives full scale from the scale, in mV per LSB. The mcp4725
// driver prints the supply's millivolts divided by 4096 to nine decimals,
// so rounding scale × 4096 to a millivolt gives back the supply exactly.
// When the device tree names no vdd-supply, reading the scale fails with
// EINVAL: the reference is then unknown, not an error.
func (d *IIO) readVRef(channel int) float64 {
	for _, attr := range []string{fmt.Sprintf("out_voltage%d_scale", channel), "out_voltage_scale"} {
		if !d.dev.Has(attr) {
			continue
		}
		scale, err := d.dev.ReadFloat(attr)
		if err != nil || !(scale > 0) || math.IsInf(scale, 0) {
			return 0
		}
		return math.Round(scale*math.Exp2(float64(d.bits))) / 1000
	}
	return 0
}

// String names the device and the channel's raw attribute, as errors do.
func (d *IIO) String() string {
	return fmt.Sprintf("iio %s (%s) %s", path.Base(d.dev.Dir), d.dev.Name, d.raw)
}

// Bits is the width of the device's raw codes.
func (d *IIO) Bits() int { return d.bits }

// VRef is full scale in volts, from the driver's scale, or 0 when the
// driver does not know it (no vdd-supply in the device tree).
func (d *IIO) VRef() float64 { return d.vref }

// Write sets the raw code. The mcp4725 driver sends it with the fast
// write, which also wakes a powered-down chip without clearing the
// driver's powerdown flag; a later store_eeprom would then save "powered
// down" as the power-up state. So when the flag is set, Write clears it
// too, which resends the code just written.
func (d *IIO) Write(raw int) error {
	if err := checkRaw(d, raw, d.bits); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.write(raw)
}

func (d *IIO) write(raw int) error {
	if d.closed {
		return fmt.Errorf("%v: write: %w", d, errClosed)
	}
	if err := d.dev.WriteInt(d.raw, int64(raw)); err != nil {
		return fmt.Errorf("dac: write %d: %w", raw, err)
	}
	if d.pd == "" {
		return nil
	}
	pd, err := d.dev.ReadString(d.pd)
	if err != nil {
		return fmt.Errorf("dac: wrote %d, then: %w", raw, err)
	}
	if pd != "0" {
		if err := d.dev.WriteString(d.pd, "0"); err != nil {
			return fmt.Errorf("dac: wrote %d, then: %w", raw, err)
		}
	}
	return nil
}

// WriteEEPROM writes raw, then asks the driver to store it in the chip's
// EEPROM for the next power-up. The driver waits for the chip, up to
// 400 ms, and fails with EIO if it never reports ready.
func (d *IIO) WriteEEPROM(raw int) error {
	if err := checkRaw(d, raw, d.bits); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.write(raw); err != nil {
		return err
	}
	if err := d.dev.WriteString("store_eeprom", "1"); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("dac: eeprom write %d: %w (this driver cannot store a power-up value)", raw, err)
		}
		return fmt.Errorf("dac: eeprom write %d: %w", raw, err)
	}
	return nil
}

// Close marks the output closed; sysfs files are opened per access, so
// there is nothing to release, and the chip keeps its output.
func (d *IIO) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}
