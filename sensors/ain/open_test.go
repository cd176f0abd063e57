package ain

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

func TestOpen(t *testing.T) {
	tests := []struct {
		name  string
		o     Options
		needs string // a device file whose presence makes the case moot here
		chip  string // Chip().Name of the converter, when no error
		err   string
	}{
		{name: "sim", o: Options{Chip: "sim", Seed: 3, Now: func() time.Time { return simEpoch }}, chip: "sim"},
		{name: "iio by name", o: Options{Chip: "iio", Sysfs: testSysfs, Device: "ads1015"}, chip: "iio"},
		{name: "iio mcp3008 with vref", o: Options{Chip: "iio", Sysfs: testSysfs, Device: "mcp3008", VRef: 3.3}, chip: "iio"},
		{name: "iio vref on a driver that has a scale", o: Options{Chip: "IIO", Sysfs: testSysfs, Device: "ads1015", VRef: 3.3}, err: "iio iio:device1 (ads1015): vref is only used for mcp320x devices"},
		{name: "iio without a device", o: Options{Chip: "iio", Sysfs: testSysfs}, err: "iio: no device"},
		{name: "iio device missing", o: Options{Chip: "iio", Sysfs: testSysfs, Device: "iio:device7"}, err: "no such IIO device"},
		{name: "unknown chip", o: Options{Chip: "mcp3208"}, err: `ain: unknown chip "mcp3208"`},
		{name: "negative vref", o: Options{Chip: "mcp3008", VRef: -1}, err: "mcp3008: vref -1 V is negative"},
		{name: "mcp3008 clock too fast", o: Options{Chip: "mcp3008", SpeedHz: 10_000_000}, err: "mcp3008: speed 10000000 Hz outside 1–3600000 Hz"},
		{name: "ads1115 at a PCF8591 address", o: Options{Chip: "ads1115", Addr: 0x4F}, err: "ads1115: address 0x4f is not one of 0x48, 0x49, 0x4a, 0x4b"},
		{name: "ads1015 with a vref", o: Options{Chip: "ads1015", VRef: 3.3}, err: "ads1015: vref: the chip has its own reference"},
		{
			name: "mcp3008 without SPI", o: Options{Chip: "mcp3008"}, needs: "/dev/spidev0.0",
			err: "mcp3008: open SPI port SPI0.0: |no /dev/spidev0.0: enable SPI with dtparam=spi=on",
		},
		{
			name: "ads1115 without I2C", o: Options{Chip: "ads1115"}, needs: "/dev/i2c-1",
			err: "ads1115: open I2C bus I2C1: |no /dev/i2c-1: enable I2C with dtparam=i2c_arm=on",
		},
		{
			name: "pcf8591 on a named bus", o: Options{Chip: "pcf8591", Bus: "/dev/i2c-3", Addr: 0x4F}, needs: "/dev/i2c-3",
			err: "pcf8591: open I2C bus /dev/i2c-3: |no /dev/i2c-3: enable I2C with dtoverlay=i2c3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needs != "" {
				if _, err := os.Stat(tt.needs); err == nil {
					t.Skipf("%s exists here: opening would reach real hardware", tt.needs)
				}
			}
			c, err := Open(tt.o)
			checkErr(t, err, tt.err)
			if err != nil {
				return
			}
			defer c.Close()
			if got := c.(interface{ Chip() Chip }).Chip().Name; got != tt.chip {
				t.Errorf("opened a %s, want %s", got, tt.chip)
			}
		})
	}
}

func TestOpenIIOVRefScales(t *testing.T) {
	m := mcp3008Tree()
	m.Fail(dev0+"in_voltage_scale", syscall.EINVAL)
	c, err := Open(Options{Chip: "iio", Sysfs: m, Device: "mcp3008", VRef: 3.3})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Convert(Channel{Input: 0})
	checkErr(t, err, "")
	checkSample(t, s, 512, 1.65)
}

// closeCounter is a replayed bus whose Close is counted.
type closeCounter struct {
	*i2ctest.Playback
	closed int
}

func (b *closeCounter) Close() error { b.closed++; return b.Playback.Close() }

func TestNewI2COwnsBus(t *testing.T) {
	tests := []struct {
		name string
		chip string
		ops  []i2ctest.IO
	}{
		{name: "ads1115", chip: "ads1115", ops: []i2ctest.IO{{Addr: 0x49, W: []byte{0x01}, R: []byte{0x85, 0x83}}}},
		{name: "pcf8591", chip: "pcf8591", ops: []i2ctest.IO{{Addr: 0x49, R: []byte{0x80}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &closeCounter{Playback: &i2ctest.Playback{Ops: tt.ops, DontPanic: true}}
			chip, _ := LookupChip(tt.chip)
			c, err := newI2C(b, 0x49, 0, chip)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.probe(); err != nil {
				t.Fatal(err)
			}
			// Playback's Close fails unless every recorded transaction ran.
			if err := c.Close(); err != nil || b.closed != 1 {
				t.Errorf("Close = %v with the bus closed %d times, want nil and once", err, b.closed)
			}
			if err := c.Close(); err != nil || b.closed != 1 {
				t.Errorf("second Close = %v with the bus closed %d times, want nil and still once", err, b.closed)
			}
		})
	}
}

func TestBusHints(t *testing.T) {
	missing := func(string) (fs.FileInfo, error) { return nil, fs.ErrNotExist }
	denied := func(string) (fs.FileInfo, error) { return nil, &fs.PathError{Op: "stat", Err: syscall.EACCES} }
	present := func(string) (fs.FileInfo, error) { return nil, nil }
	tests := []struct {
		name string
		hint func(string, func(string) (fs.FileInfo, error)) string
		bus  string
		stat func(string) (fs.FileInfo, error)
		want string
	}{
		{name: "SPI alias", hint: spiHint, bus: "SPI0.1", stat: missing, want: " (no /dev/spidev0.1: enable SPI with dtparam=spi=on in config.txt and reboot; with dtoverlay=mcp3008 loaded the kernel owns the chip: use chip iio)"},
		{name: "SPI device path", hint: spiHint, bus: "/dev/spidev1.2", stat: denied, want: " (/dev/spidev1.2: permission denied: add the user to group spi)"},
		{name: "SPI present", hint: spiHint, bus: "SPI0.0", stat: present, want: ""},
		{name: "SPI name periph invented", hint: spiHint, bus: "FT232H", stat: missing, want: ""},
		{name: "I2C alias", hint: i2cBusHint, bus: "I2C1", stat: missing, want: " (no /dev/i2c-1: enable I2C with dtparam=i2c_arm=on in config.txt and reboot)"},
		{name: "I2C number", hint: i2cBusHint, bus: "22", stat: denied, want: " (/dev/i2c-22: permission denied: add the user to group i2c)"},
		{name: "I2C device path of bus 0", hint: i2cBusHint, bus: "/dev/i2c-0", stat: missing, want: " (no /dev/i2c-0: enable I2C with dtparam=i2c_vc=on in config.txt and reboot)"},
		{name: "I2C bus of a Pi 4", hint: i2cBusHint, bus: "I2C3", stat: missing, want: " (no /dev/i2c-3: enable I2C with dtoverlay=i2c3 (Pi 4 and later) in config.txt and reboot)"},
		{name: "SPI bus 1", hint: spiHint, bus: "SPI1.0", stat: missing, want: " (no /dev/spidev1.0: enable SPI with dtoverlay=spi1-1cs (-2cs, -3cs for more chip selects) in config.txt and reboot; with dtoverlay=mcp3008 loaded the kernel owns the chip: use chip iio)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.hint(tt.bus, tt.stat); got != tt.want {
				t.Errorf("hint(%q) = %q, want %q", tt.bus, got, tt.want)
			}
		})
	}
}

func TestOpenSimClosed(t *testing.T) {
	c, err := Open(Options{Chip: "sim"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Convert(Channel{}); !errors.Is(err, errClosed) {
		t.Errorf("Convert after Close = %v, want errClosed", err)
	}
}
