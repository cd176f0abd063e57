package ain

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"
	host "periph.io/x/host/v3"

	"github.com/rollcall/rollcall/sensors/iio"
)

// Options open a converter on real hardware by name (host.Init,
// spireg/i2creg) or sim. Zero values are the usual Pi wiring.
type Options struct {
	Chip string // "mcp3008", "ads1115", "ads1015", "pcf8591", "iio", "sim"
	// Bus is periph's name for the port or bus: "SPI0.0" or
	// "/dev/spidev0.0"; "I2C1", "/dev/i2c-1" or "1". "" is SPI0.0 or
	// I2C1, the header's; not periph's lowest-numbered default, which on a
	// Pi 4 without i2c_arm is an HDMI DDC bus.
	Bus string
	// Addr is the I2C address; 0 is 0x48, where ADS1x15 and PCF8591
	// boards are usually strapped.
	Addr uint16
	// VRef is the reference voltage of an MCP3008 or PCF8591; 0 is 3.3.
	// For iio it scales an mcp320x device whose driver cannot read its
	// own reference (the stock mcp3008 overlay).
	VRef float64
	// SpeedHz is the MCP3008's SPI clock; 0 is 1 MHz, within the 1.35 MHz
	// the datasheet allows at 2.7 V, so safe on 3.3 V.
	SpeedHz int64
	Sysfs   iio.FS           // iio: the sysfs root; nil is /sys
	Device  string           // iio: "iio:device0" or the driver's name for it ("mcp3008", "ads1015")
	Seed    uint64           // sim
	Now     func() time.Time // sim clock; nil is time.Now
}

// mcp3008MaxHz is the datasheet's top clock, at VDD = 5 V.
const mcp3008MaxHz = 3_600_000

// Open opens the converter o describes. For SPI and I2C chips it
// initializes periph's host drivers, opens the port or bus (which the
// converter's Close closes) and talks to the chip once, so a wrong bus,
// address or wiring shows here rather than at the first conversion.
func Open(o Options) (Converter, error) {
	chip, ok := LookupChip(o.Chip)
	if !ok {
		return nil, fmt.Errorf("ain: unknown chip %q (known: mcp3008, ads1115, ads1015, pcf8591, iio, sim)", o.Chip)
	}
	if o.VRef < 0 {
		return nil, fmt.Errorf("%s: vref %g V is negative", chip.Name, o.VRef)
	}
	switch chip.Bus {
	case "sim":
		return NewSim(o.Seed, o.Now), nil
	case "iio":
		return openIIO(o)
	case "spi":
		return openMCP3008(o)
	default:
		return openI2C(o, chip)
	}
}

func openIIO(o Options) (Converter, error) {
	if o.Device == "" {
		return nil, errors.New("iio: no device: give iio:deviceN or the driver's name for it (mcp3008, ads1015)")
	}
	fsys := o.Sysfs
	if fsys == nil {
		fsys = iio.Dir("/sys")
	}
	d, err := NewIIO(fsys, o.Device)
	if err != nil {
		return nil, err
	}
	if o.VRef > 0 {
		bits, ok := mcp320xBits[d.dev.Name]
		if !ok {
			return nil, fmt.Errorf("iio %s: vref is only used for mcp320x devices, whose resolution is known; this driver gives its own scale", d.name())
		}
		d.SetScale(o.VRef * 1000 / float64(int(1)<<bits))
	}
	return d, nil
}

func openMCP3008(o Options) (Converter, error) {
	speed := o.SpeedHz
	switch {
	case speed == 0:
		speed = 1_000_000
	case speed < 0 || speed > mcp3008MaxHz:
		return nil, fmt.Errorf("mcp3008: speed %d Hz outside 1–%d Hz (the datasheet's maximum, at 5 V; 1.35 MHz at 2.7 V)", speed, mcp3008MaxHz)
	}
	name := o.Bus
	if name == "" {
		name = "SPI0.0"
	}
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("mcp3008: periph host init: %w", err)
	}
	port, err := spireg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("mcp3008: open SPI port %s: %w%s", name, err, spiHint(name, os.Stat))
	}
	c, err := port.Connect(physic.Frequency(speed)*physic.Hertz, spi.Mode0, 8)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("mcp3008: connect to SPI port %s: %w", name, err), port.Close())
	}
	m := NewMCP3008(c, o.VRef)
	m.s.owned = port
	if err := m.probe(); err != nil {
		return nil, errors.Join(err, port.Close())
	}
	return m, nil
}

// prober is a converter that can check its chip answers.
type prober interface {
	Converter
	probe() error
}

func openI2C(o Options, chip Chip) (Converter, error) {
	addr := o.Addr
	if addr == 0 {
		addr = 0x48
	}
	if !chip.hasAddr(addr) {
		return nil, fmt.Errorf("%s: address %#x is not one of %s", chip.Name, addr, addrList(chip.Addrs))
	}
	if o.VRef != 0 && chip.Name != ChipPCF8591 {
		return nil, fmt.Errorf("%s: vref: the chip has its own reference; choose a range instead", chip.Name)
	}
	name := o.Bus
	if name == "" {
		name = "I2C1"
	}
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("%s: periph host init: %w", chip.Name, err)
	}
	b, err := i2creg.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%s: open I2C bus %s: %w%s", chip.Name, name, err, i2cBusHint(name, os.Stat))
	}
	c, err := newI2C(b, addr, o.VRef, chip)
	if err != nil {
		return nil, errors.Join(err, b.Close())
	}
	if err := c.probe(); err != nil {
		return nil, errors.Join(err, b.Close())
	}
	return c, nil
}

// newI2C returns the converter for chip on b, owning b.
func newI2C(b i2c.BusCloser, addr uint16, vref float64, chip Chip) (prober, error) {
	if chip.Name == ChipPCF8591 {
		p := NewPCF8591(b, addr, vref)
		p.s.owned = b
		return p, nil
	}
	a, err := NewADS1x15(b, addr, chip.Name)
	if err != nil {
		return nil, err
	}
	a.s.owned = b
	return a, nil
}

var (
	spiName = regexp.MustCompile(`^(?:SPI|/dev/spidev)(\d+)\.(\d+)$`)
	i2cName = regexp.MustCompile(`^(?:I2C|/dev/i2c-)?(\d+)$`)
)

// spiHint says what to check when periph has no port called name: the
// device file is missing or unreadable. stat is os.Stat but for tests.
func spiHint(name string, stat func(string) (fs.FileInfo, error)) string {
	m := spiName.FindStringSubmatch(name)
	if m == nil {
		return ""
	}
	dev := "/dev/spidev" + m[1] + "." + m[2]
	enable := "dtparam=spi=on"
	if m[1] != "0" {
		enable = "dtoverlay=spi" + m[1] + "-1cs (-2cs, -3cs for more chip selects)"
	}
	_, err := stat(dev)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf(" (no %s: enable SPI with %s in config.txt and reboot; with dtoverlay=mcp3008 loaded the kernel owns the chip: use chip iio)", dev, enable)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf(" (%s: permission denied: add the user to group spi)", dev)
	}
	return ""
}

// i2cBusHint is spiHint for an I2C bus.
func i2cBusHint(name string, stat func(string) (fs.FileInfo, error)) string {
	m := i2cName.FindStringSubmatch(name)
	if m == nil {
		return ""
	}
	dev := "/dev/i2c-" + m[1]
	var enable string
	switch m[1] {
	case "1":
		enable = "dtparam=i2c_arm=on"
	case "0":
		enable = "dtparam=i2c_vc=on"
	default:
		enable = "dtoverlay=i2c" + m[1] + " (Pi 4 and later)"
	}
	_, err := stat(dev)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf(" (no %s: enable I2C with %s in config.txt and reboot)", dev, enable)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf(" (%s: permission denied: add the user to group i2c)", dev)
	}
	return ""
}

// i2cHint says what to check after a failed transaction. periph's Linux
// bus flattens the errno into its message ("sysfs-i2c: remote I/O
// error" for a NACK), so the cause cannot be told apart reliably.
func i2cHint(addr uint16) string {
	return fmt.Sprintf("does a chip answer at %#x? check SDA, SCL, power and the address pins; i2cdetect lists what answers", addr)
}
