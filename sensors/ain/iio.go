package ain

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"syscall"

	"github.com/rollcall/rollcall/sensors/iio"
)

// IIO converts through a kernel ADC driver's sysfs files: mcp320x
// (dtoverlay=mcp3008), ti-ads1015 (dtoverlay=ads1115) or any other IIO
// ADC. The kernel owns the chip and the bus; a read of in_voltageN_raw
// makes one conversion.
type IIO struct {
	dev   iio.Device
	attrs map[string]bool // the device's files, listed once when opened
	s     session

	fallback float64 // mV per LSB when the device has no usable scale
}

var _ Converter = (*IIO)(nil)

// NewIIO finds device ("iio:device0", or the name the driver gives it:
// "mcp3008", or "ads1015" for both chips of the ti-ads1015 driver) under
// fsys and lists its attributes.
func NewIIO(fsys iio.FS, device string) (*IIO, error) {
	d, err := iio.Find(fsys, device)
	if err != nil {
		return nil, fmt.Errorf("ain: %w", err)
	}
	entries, err := fs.ReadDir(fsys, d.Dir)
	if err != nil {
		return nil, fmt.Errorf("ain: iio %s (%s): list attributes: %w", path.Base(d.Dir), d.Name, err)
	}
	attrs := make(map[string]bool, len(entries))
	for _, e := range entries {
		attrs[e.Name()] = true
	}
	return &IIO{dev: d, attrs: attrs}, nil
}

// Device returns the IIO device converted through.
func (d *IIO) Device() iio.Device { return d.dev }

// SetScale gives the scale, in millivolts per LSB, to use where the
// device has no scale file or cannot read it: the mcp3008 overlay
// declares no vref regulator, so mcp320x reads its in_voltage_scale
// from the kernel's dummy regulator and fails with EINVAL. For an
// MCP3008 on 3.3 V, that is 3300/1024.
func (d *IIO) SetScale(mV float64) {
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	d.fallback = mV
}

var (
	singleRaw = regexp.MustCompile(`^in_voltage(\d+)_raw$`)
	diffRaw   = regexp.MustCompile(`^in_voltage(\d+)-voltage(\d+)_raw$`)
)

// Chip describes what the device offers: Inputs is one more than its
// highest in_voltageN_raw, Pairs its in_voltageA-voltageB_raw files. The
// range and rate of an IIO ADC are the driver's (dtoverlay parameters
// such as cha_gain and cha_datarate), so Ranges and Rates are empty.
func (d *IIO) Chip() Chip {
	c := Chip{Name: ChipIIO, Bus: "iio"}
	for a := range d.attrs {
		if m := singleRaw.FindStringSubmatch(a); m != nil {
			n, _ := strconv.Atoi(m[1])
			c.Inputs = max(c.Inputs, n+1)
		}
		if m := diffRaw.FindStringSubmatch(a); m != nil {
			p, _ := strconv.Atoi(m[1])
			n, _ := strconv.Atoi(m[2])
			c.Pairs = append(c.Pairs, [2]int{p, n})
		}
	}
	slices.SortFunc(c.Pairs, func(a, b [2]int) int {
		if a[0] != b[0] {
			return a[0] - b[0]
		}
		return a[1] - b[1]
	})
	return c
}

func (d *IIO) name() string { return path.Base(d.dev.Dir) + " (" + d.dev.Name + ")" }

// Convert reads the input's _raw file and scales it the way the IIO ABI
// says: volts = (raw + offset) × scale / 1000, scale in millivolts per
// LSB. The most specific file wins: in_voltageN_scale, then
// in_voltage_scale; for a pair in_voltageA-voltageB_scale, then
// in_voltage-voltage_scale (the name the kernel gives a scale shared by
// differential channels); offsets likewise, 0 when absent. An error
// from the driver (EIO, ETIMEDOUT, EAGAIN, EBUSY) is returned wrapped:
// iio.Retryable tells the transient ones.
func (d *IIO) Convert(ch Channel) (Sample, error) {
	if err := iioChip.Check(ch); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.Chip = d.name()
		}
		return Sample{}, err
	}
	if err := d.s.lock(); err != nil {
		return Sample{}, fmt.Errorf("iio %s: %w", d.name(), err)
	}
	defer d.s.mu.Unlock()

	prefix, shared := fmt.Sprintf("in_voltage%d", ch.Input), "in_voltage"
	field := "input"
	if ch.Diff {
		prefix, shared = fmt.Sprintf("in_voltage%d-voltage%d", ch.Input, ch.Neg), "in_voltage-voltage"
		field = "neg"
	}
	rawAttr := prefix + "_raw"
	if !d.attrs[rawAttr] {
		c := d.Chip()
		return Sample{}, &FieldError{Chip: d.name(), Field: field,
			Msg: fmt.Sprintf("no %s (inputs: %s; pairs: %s)", rawAttr, inputRange(c.Inputs), orNone(pairList(c.Pairs)))}
	}
	raw, err := d.dev.ReadInt(rawAttr)
	if err != nil {
		return Sample{}, err
	}
	scale, found, err := d.readFirst(prefix+"_scale", shared+"_scale")
	switch {
	case errors.Is(err, syscall.EINVAL) && d.fallback > 0, !found && d.fallback > 0:
		scale = d.fallback
	case errors.Is(err, syscall.EINVAL):
		return Sample{}, fmt.Errorf("%w (the driver cannot tell its reference voltage, as mcp320x under the stock mcp3008 overlay: give vref)", err)
	case err != nil:
		return Sample{}, err
	case !found:
		return Sample{}, fmt.Errorf("iio %s: no %s_scale or %s_scale to turn %s into volts (for an mcp320x device, give vref)", d.name(), prefix, shared, rawAttr)
	}
	offset, _, err := d.readFirst(prefix+"_offset", shared+"_offset")
	if err != nil {
		return Sample{}, err
	}
	return Sample{Raw: raw, Volts: (float64(raw) + offset) * scale / 1000}, nil
}

// iioChip checks a Channel before any file is read.
var iioChip = Chip{Name: ChipIIO, Bus: "iio"}

// readFirst reads the first of attrs the device has.
func (d *IIO) readFirst(attrs ...string) (v float64, found bool, err error) {
	for _, a := range attrs {
		if d.attrs[a] {
			v, err := d.dev.ReadFloat(a)
			return v, true, err
		}
	}
	return 0, false, nil
}

func inputRange(n int) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprintf("0–%d", n-1)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// mcp320xBits is the resolution of the mcp320x driver's chips, by the
// name the driver gives the device, to turn a vref into a scale.
var mcp320xBits = map[string]int{
	"mcp3001": 10, "mcp3002": 10, "mcp3004": 10, "mcp3008": 10,
	"mcp3201": 12, "mcp3202": 12, "mcp3204": 12, "mcp3208": 12,
}

// Close marks the converter closed; sysfs files are opened per read.
func (d *IIO) Close() error { return d.s.close() }
