package ain

import (
	"errors"
	"io/fs"
	"path"
	"slices"
	"syscall"
	"testing"

	"github.com/rollcall/rollcall/sensors/iio"
	"github.com/rollcall/rollcall/sensors/iio/iiotest"
)

// testdata/sys holds, under bus/iio/devices:
//
//	iio:device0  mcp3008      mcp320x, dtoverlay=mcp3008 with a 3.3 V vref regulator
//	iio:device1  ads1015      ti-ads1015 for an ADS1115 (dtoverlay=ads1115,cha_enable)
//	iio:device2  dht11        not an ADC
//	iio:device3  test-offset  offsets; a channel's own scale before the shared one
//	iio:device4  test-bad     unreadable contents
var testSysfs = iio.Dir("testdata/sys")

func TestIIO(t *testing.T) {
	tests := []struct {
		name   string
		device string
		ch     Channel
		scale  float64 // SetScale, when not 0
		raw    int64
		volts  float64
		err    string
		field  string
	}{
		{name: "mcp3008 by directory", device: "iio:device0", ch: Channel{Input: 1}, raw: 512, volts: 512 * 3.22265625 / 1000},
		{name: "mcp3008 by name", device: "mcp3008", ch: Channel{Input: 2}, raw: 1023, volts: 1023 * 3.22265625 / 1000},
		{name: "mcp3008 pair takes in_voltage-voltage_scale", device: "mcp3008", ch: Channel{Input: 1, Diff: true, Neg: 0}, raw: 512, volts: 512 * 3.22265625 / 1000},
		{name: "ads1115 AIN0 at 4.096 V", device: "ads1015", ch: Channel{Input: 0}, raw: 13107, volts: 13107 * 0.125 / 1000},
		{name: "ads1115 AIN1 slightly negative", device: "ads1015", ch: Channel{Input: 1}, raw: -3, volts: -3 * 0.0625 / 1000},
		{name: "ads1115 pair 0-1 with its own scale", device: "iio:device1", ch: Channel{Input: 0, Diff: true, Neg: 1}, raw: -1200, volts: -0.075},
		{name: "channel offset and scale win", device: "test-offset", ch: Channel{Input: 0}, raw: 100, volts: (100 - 20) * 2.5 / 1000},
		{name: "shared offset and scale", device: "test-offset", ch: Channel{Input: 1}, raw: 100, volts: (100 + 10) * 0.5 / 1000},
		{name: "no scale, SetScale used", device: "test-bad", ch: Channel{Input: 3}, scale: 2, raw: 5, volts: 0.01},
		{name: "device's scale beats SetScale", device: "mcp3008", ch: Channel{Input: 1}, scale: 1, raw: 512, volts: 512 * 3.22265625 / 1000},

		{name: "input the device lacks", device: "mcp3008", ch: Channel{Input: 8}, field: "input", err: "iio:device0 (mcp3008): input: no in_voltage8_raw (inputs: 0–7; pairs: 0-1, 1-0, 2-3"},
		{name: "pair the device lacks", device: "ads1015", ch: Channel{Input: 1, Diff: true, Neg: 0}, field: "neg", err: "no in_voltage1-voltage0_raw (inputs: 0–3; pairs: 0-1, 0-3, 1-3, 2-3)"},
		{name: "not an ADC", device: "dht11", ch: Channel{Input: 0}, field: "input", err: "no in_voltage0_raw (inputs: none; pairs: none)"},
		{name: "range is the overlay's", device: "ads1015", ch: Channel{Range: 4.096}, field: "range", err: "iio:device1 (ads1015): range: the kernel driver sets the range (dtoverlay=ads1115 cha_gain)"},
		{name: "rate is the overlay's", device: "ads1015", ch: Channel{Rate: 860}, field: "rate", err: "iio:device1 (ads1015): rate: the kernel driver sets the data rate"},
		{name: "raw not a number", device: "test-bad", ch: Channel{Input: 0}, err: `iio iio:device4 (test-bad) in_voltage0_raw: "12abc" is not an integer`},
		{name: "scale not a number", device: "test-bad", ch: Channel{Input: 1}, err: `in_voltage1_scale: "fast" is not a number`},
		{name: "empty raw", device: "test-bad", ch: Channel{Input: 2}, err: `in_voltage2_raw: "" is not an integer`},
		{name: "no scale at all", device: "test-bad", ch: Channel{Input: 3}, err: "iio iio:device4 (test-bad): no in_voltage3_scale or in_voltage_scale to turn in_voltage3_raw into volts"},
		{name: "offset not a number", device: "test-bad", ch: Channel{Input: 4}, err: `in_voltage4_offset: "x" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewIIO(testSysfs, tt.device)
			if err != nil {
				t.Fatal(err)
			}
			if tt.scale != 0 {
				d.SetScale(tt.scale)
			}
			s, err := d.Convert(tt.ch)
			if got := fieldOf(err); got != tt.field {
				t.Fatalf("Convert = %v, want an error on field %q", err, tt.field)
			}
			checkErr(t, err, tt.err)
			if tt.err == "" {
				checkSample(t, s, tt.raw, tt.volts)
			}
		})
	}
}

func TestNewIIO(t *testing.T) {
	tests := []struct {
		name, device, dir, err string
	}{
		{name: "by directory", device: "iio:device3", dir: "bus/iio/devices/iio:device3"},
		{name: "by name, skipping other devices", device: "ads1015", dir: "bus/iio/devices/iio:device1"},
		{name: "missing directory", device: "iio:device9", err: `iio: "iio:device9": no such IIO device|devices present: iio:device0 (mcp3008), iio:device1 (ads1015)`},
		{name: "missing name", device: "mcp3208", err: "is the dtoverlay loaded?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewIIO(testSysfs, tt.device)
			checkErr(t, err, tt.err)
			if tt.err != "" {
				if !errors.Is(err, iio.ErrNotFound) {
					t.Errorf("error %v does not wrap iio.ErrNotFound", err)
				}
				return
			}
			if d.Device().Dir != tt.dir {
				t.Errorf("found %s, want %s", d.Device().Dir, tt.dir)
			}
		})
	}
	if _, err := NewIIO(iio.Dir(t.TempDir()), "mcp3008"); !errors.Is(err, iio.ErrNotFound) {
		t.Errorf("NewIIO on a tree without IIO = %v, want iio.ErrNotFound", err)
	}
}

func TestIIOChip(t *testing.T) {
	tests := []struct {
		name, device string
		inputs       int
		pairs        [][2]int
	}{
		{name: "mcp3008", device: "mcp3008", inputs: 8, pairs: [][2]int{{0, 1}, {1, 0}, {2, 3}, {3, 2}, {4, 5}, {5, 4}, {6, 7}, {7, 6}}},
		{name: "ads1115", device: "ads1015", inputs: 4, pairs: [][2]int{{0, 1}, {0, 3}, {1, 3}, {2, 3}}},
		{name: "not an ADC", device: "dht11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewIIO(testSysfs, tt.device)
			if err != nil {
				t.Fatal(err)
			}
			c := d.Chip()
			if c.Name != "iio" || c.Inputs != tt.inputs || !slices.Equal(c.Pairs, tt.pairs) {
				t.Errorf("Chip() = %s with %d inputs, pairs %v; want iio with %d, %v", c.Name, c.Inputs, c.Pairs, tt.inputs, tt.pairs)
			}
		})
	}
}

// mcp3008Tree is an mcp320x device as the stock mcp3008 overlay leaves
// it: the scale file is there, but reading it fails (see SetScale).
func mcp3008Tree() *iiotest.MapFS {
	m := iiotest.NewMapFS(nil)
	m.AddDevice("iio:device0", "mcp3008", map[string]string{
		"in_voltage0_raw":          "512\n",
		"in_voltage0-voltage1_raw": "100\n",
		"in_voltage_scale":         "3.222656250\n",
		"in_voltage-voltage_scale": "3.222656250\n",
	})
	return m
}

const dev0 = "bus/iio/devices/iio:device0/"

func TestIIODriverErrors(t *testing.T) {
	tests := []struct {
		name      string
		fail      string // attribute that fails
		errno     syscall.Errno
		scale     float64
		ch        Channel
		retryable bool
		err       string
	}{
		{name: "EIO reading raw", fail: "in_voltage0_raw", errno: syscall.EIO, retryable: true, err: "iio iio:device0 (mcp3008) in_voltage0_raw: input/output error"},
		{name: "ETIMEDOUT reading raw", fail: "in_voltage0_raw", errno: syscall.ETIMEDOUT, retryable: true, err: "in_voltage0_raw: connection timed out"},
		{name: "EAGAIN reading raw", fail: "in_voltage0_raw", errno: syscall.EAGAIN, retryable: true, err: "in_voltage0_raw: resource temporarily unavailable"},
		{name: "EBUSY reading raw: buffer enabled", fail: "in_voltage0_raw", errno: syscall.EBUSY, err: "in_voltage0_raw: device or resource busy"},
		{name: "EIO reading a pair's raw", fail: "in_voltage0-voltage1_raw", errno: syscall.EIO, ch: Channel{Input: 0, Diff: true, Neg: 1}, retryable: true, err: "in_voltage0-voltage1_raw"},
		{name: "EIO reading the scale", fail: "in_voltage_scale", errno: syscall.EIO, retryable: true, err: "in_voltage_scale: input/output error"},
		{name: "EINVAL reading the scale: no vref regulator", fail: "in_voltage_scale", errno: syscall.EINVAL, err: "in_voltage_scale: invalid argument|give vref"},
		{name: "EINVAL on a pair's shared scale", fail: "in_voltage-voltage_scale", errno: syscall.EINVAL, ch: Channel{Input: 0, Diff: true, Neg: 1}, err: "in_voltage-voltage_scale: invalid argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mcp3008Tree()
			d, err := NewIIO(m, "mcp3008")
			if err != nil {
				t.Fatal(err)
			}
			m.Fail(dev0+tt.fail, tt.errno)
			_, err = d.Convert(tt.ch)
			checkErr(t, err, tt.err)
			if !errors.Is(err, tt.errno) || iio.Retryable(err) != tt.retryable {
				t.Errorf("Convert = %v: errors.Is %v = %v, Retryable = %v; want true, %v", err, tt.errno, errors.Is(err, tt.errno), iio.Retryable(err), tt.retryable)
			}
			var ie *iio.Error
			if !errors.As(err, &ie) || ie.Attr != tt.fail {
				t.Errorf("Convert = %v, want an *iio.Error on %s", err, tt.fail)
			}

			// The driver recovers; so does the converter.
			m.Fail(dev0+tt.fail, nil)
			if _, err := d.Convert(tt.ch); err != nil {
				t.Errorf("Convert after the fault cleared: %v", err)
			}
		})
	}
}

func TestIIOSetScaleCoversEINVAL(t *testing.T) {
	m := mcp3008Tree()
	m.Fail(dev0+"in_voltage_scale", syscall.EINVAL)
	d, err := NewIIO(m, "iio:device0")
	if err != nil {
		t.Fatal(err)
	}
	d.SetScale(3300.0 / 1024)
	s, err := d.Convert(Channel{Input: 0})
	checkErr(t, err, "")
	checkSample(t, s, 512, 1.65)
}

func TestIIOMissingFileAfterOpen(t *testing.T) {
	// The driver went away (rmmod, overlay removed) after NewIIO listed
	// the files.
	d, err := NewIIO(testSysfs, "mcp3008")
	if err != nil {
		t.Fatal(err)
	}
	d.dev.Dir = path.Join(iio.DevicesDir, "iio:device9")
	_, err = d.Convert(Channel{Input: 0})
	checkErr(t, err, "iio iio:device9 (mcp3008) in_voltage0_raw: ")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Convert = %v, want fs.ErrNotExist wrapped", err)
	}
}

func TestIIOClosed(t *testing.T) {
	d, err := NewIIO(testSysfs, "mcp3008")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Convert(Channel{}); !errors.Is(err, errClosed) {
		t.Errorf("Convert after Close = %v, want errClosed", err)
	}
}
