package dac

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	phost "periph.io/x/host/v3"

	"github.com/rollcall/rollcall/sensors/iio"
)

// DefaultI2CBus is the bus on the Pi's header pins 3 (SDA, GPIO2) and 5
// (SCL, GPIO3). It is named rather than left to periph's default, the
// lowest-numbered bus: that is bus 0 (the HAT EEPROM bus) when i2c_vc is
// on, or one of the HDMI buses a Pi 4 also has when the header bus is
// off, and the chip would simply not answer there.
const DefaultI2CBus = "1"

// Options open an output on real hardware by name, or a simulated one.
type Options struct {
	// Chip is a Chip's Name: "mcp4725", "pcf8591", "iio" or "sim".
	Chip string
	// Bus is the I2C bus, by periph name, alias or number ("1",
	// "I2C1", "/dev/i2c-1"); "" is DefaultI2CBus.
	Bus string
	// Addr is the I2C address; 0 is the chip's first (0x60, 0x48).
	Addr uint16
	// Sysfs is the sysfs tree for "iio"; nil is /sys.
	Sysfs iio.FS
	// Device is the IIO device, by name or directory; "" is "mcp4725".
	Device string
	// Channel is the output, from 0.
	Channel int
	// OpenBus opens an I2C bus by name. nil runs periph's host.Init and
	// i2creg.Open; tests pass a function returning an i2ctest.Playback.
	OpenBus func(name string) (i2c.BusCloser, error)
}

// Open checks o against its chip and opens the output. For an I2C chip
// it opens the bus and reads from the chip once, so a wrong address or a
// loose wire fails here, at setup, rather than at the first write; that
// read leaves the output as it is. The output's Close closes the bus.
func Open(o Options) (Output, error) {
	c, ok := LookupChip(o.Chip)
	if !ok {
		return nil, fmt.Errorf("dac: unknown chip %q (known: %s)", o.Chip, strings.Join(chipNames(), ", "))
	}
	if o.Channel < 0 || o.Channel >= c.Outputs {
		return nil, fmt.Errorf("dac %s: channel %d: the chip has %d output(s), from 0: %w", c.Name, o.Channel, c.Outputs, ErrRange)
	}
	switch c.Bus {
	case "i2c":
		return openI2CChip(c, o)
	case "iio":
		fsys, device := o.Sysfs, o.Device
		if fsys == nil {
			fsys = iio.Dir("/sys")
		}
		if device == "" {
			device = "mcp4725"
		}
		d, err := NewIIO(fsys, device, o.Channel)
		if err != nil {
			return nil, err
		}
		return d, nil
	default:
		return NewSim(c.Bits), nil
	}
}

func openI2CChip(c Chip, o Options) (Output, error) {
	addr := o.Addr
	if addr == 0 {
		addr = c.Addrs[0]
	}
	if !c.HasAddr(addr) {
		return nil, fmt.Errorf("dac %s: address %#02x: the chip answers only at %#02x–%#02x", c.Name, addr, c.Addrs[0], c.Addrs[len(c.Addrs)-1])
	}
	name := o.Bus
	if name == "" {
		name = DefaultI2CBus
	}
	openBus := o.OpenBus
	if openBus == nil {
		openBus = openPeriphI2C
	}
	b, err := openBus(name)
	if err != nil {
		return nil, fmt.Errorf("dac %s: open I2C bus %q: %w%s", c.Name, name, err, busHint(name, "/dev"))
	}
	var (
		out   Output
		probe error
	)
	switch c.Name {
	case "mcp4725":
		d := NewMCP4725(b, addr)
		d.closer = b
		_, _, probe = d.read()
		out = d
	case "pcf8591":
		d := NewPCF8591(b, addr)
		d.closer = b
		probe = d.probe()
		out = d
	}
	if probe != nil {
		return nil, errors.Join(fmt.Errorf("%w (%s)", probe, wiringHint(c, name)), b.Close())
	}
	return out, nil
}

func openPeriphI2C(name string) (i2c.BusCloser, error) {
	if _, err := phost.Init(); err != nil {
		return nil, fmt.Errorf("periph host init: %w", err)
	}
	// i2creg's own error for this case asks whether Init was called.
	if len(i2creg.All()) == 0 {
		return nil, errors.New("periph found no I2C bus")
	}
	return i2creg.Open(name)
}

// busHint says what to check when a bus does not open, from whether its
// device node exists under dev.
func busHint(name, dev string) string {
	n, ok := busNumber(name)
	if !ok {
		return ""
	}
	node := path.Join(dev, "i2c-"+strconv.Itoa(n))
	if _, err := os.Stat(node); errors.Is(err, fs.ErrNotExist) {
		if n == 1 {
			return fmt.Sprintf(" (no %s: enable I2C with dtparam=i2c_arm=on in /boot/firmware/config.txt and reboot)", node)
		}
		return fmt.Sprintf(" (no %s: is that bus enabled? the header bus, pins 3 and 5, is 1, enabled with dtparam=i2c_arm=on)", node)
	}
	return fmt.Sprintf(" (%s exists: may this user open it? on Raspberry Pi OS, add the user to the i2c group)", node)
}

// busNumber reads the number out of the names periph's sysfs-i2c driver
// registers: "1", "I2C1", "/dev/i2c-1".
func busNumber(name string) (int, bool) {
	for _, prefix := range []string{"/dev/i2c-", "I2C", ""} {
		if s, ok := strings.CutPrefix(name, prefix); ok {
			if n, err := strconv.Atoi(s); err == nil && n >= 0 {
				return n, true
			}
		}
	}
	return 0, false
}

// wiringHint says what to check when a chip does not answer.
func wiringHint(c Chip, bus string) string {
	var strap string
	switch c.Name {
	case "mcp4725":
		strap = "0x60 or 0x61 for an MCP4725A0 by its A0 pin, 0x62/0x63 for A1, 0x64/0x65 for A2, 0x66/0x67 for A3"
	case "pcf8591":
		strap = "0x48 with A2, A1, A0 low, up to 0x4f with all high"
	}
	n, _ := busNumber(bus)
	return fmt.Sprintf("check power, SDA and SCL, and the address: %s; i2cdetect -y %d lists what answers", strap, n)
}
