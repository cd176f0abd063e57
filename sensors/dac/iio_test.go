package dac

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/rollcall/rollcall/sensors/iio"
	"github.com/rollcall/rollcall/sensors/iio/iiotest"
)

// testdata/sys is the mcp4725 driver's directory as the kernel lays it
// out (drivers/iio/dac/mcp4725.c), at 3.3 V, with an mcp3008 ADC beside
// it.
const dev0 = "bus/iio/devices/iio:device0"

func TestIIOFromTestdata(t *testing.T) {
	tests := []struct {
		name, device string
		channel      int
		want         string // "" to open, else part of the error
	}{
		{name: "by driver name", device: "mcp4725"},
		{name: "by directory", device: "iio:device0"},
		{name: "an ADC", device: "iio:device1", want: "dac iio iio:device1 (mcp3008): not a DAC driver this package knows"},
		{name: "no such channel", device: "mcp4725", channel: 1, want: "dac iio iio:device0 (mcp4725): no out_voltage1_raw (outputs there: out_voltage0_raw)"},
		{name: "negative channel", device: "mcp4725", channel: -1, want: "channel -1: must be 0 or more"},
		{name: "no such device", device: "ads1115", want: "is the dtoverlay loaded?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewIIO(iio.Dir("testdata/sys"), tc.device, tc.channel)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("NewIIO error = %v, want one containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.VRef() != 3.3 || d.Bits() != 12 {
				t.Errorf("VRef, Bits = %v, %d; want 3.3, 12", d.VRef(), d.Bits())
			}
			if got, want := d.String(), "iio iio:device0 (mcp4725) out_voltage0_raw"; got != want {
				t.Errorf("String() = %q, want %q", got, want)
			}
		})
	}
}

func TestIIOWrite(t *testing.T) {
	root := sysfsCopy(t)
	file := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, dev0, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	set := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, dev0, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := NewIIO(iio.Dir(root), "mcp4725", 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		powerdown string // out_voltage0_powerdown before the write
		raw       int
		eeprom    bool
		err       error
		wantRaw   string
		wantPD    string
		wantStore string
	}{
		{name: "write", powerdown: "0\n", raw: 1234, wantRaw: "1234", wantPD: "0\n"},
		{name: "full scale", powerdown: "0\n", raw: 4095, wantRaw: "4095", wantPD: "0\n"},
		{name: "wakes a powered-down output", powerdown: "1\n", raw: 100, wantRaw: "100", wantPD: "0"},
		{name: "out of range leaves the file", powerdown: "0\n", raw: 4096, err: ErrRange, wantRaw: "100", wantPD: "0\n"},
		{name: "to EEPROM", powerdown: "0\n", raw: 77, eeprom: true, wantRaw: "77", wantPD: "0\n", wantStore: "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set("out_voltage0_powerdown", tc.powerdown)
			set("store_eeprom", "")
			write := d.Write
			if tc.eeprom {
				write = d.WriteEEPROM
			}
			if err := write(tc.raw); !errors.Is(err, tc.err) {
				t.Fatalf("write(%d) = %v, want %v", tc.raw, err, tc.err)
			}
			if got := file("out_voltage0_raw"); got != tc.wantRaw {
				t.Errorf("out_voltage0_raw = %q, want %q", got, tc.wantRaw)
			}
			if got := file("out_voltage0_powerdown"); got != tc.wantPD {
				t.Errorf("out_voltage0_powerdown = %q, want %q", got, tc.wantPD)
			}
			if got := file("store_eeprom"); got != tc.wantStore {
				t.Errorf("store_eeprom = %q, want %q", got, tc.wantStore)
			}
		})
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(1); !errors.Is(err, errClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	if got := file("out_voltage0_raw"); got != "77" {
		t.Errorf("Close or a write after it changed out_voltage0_raw to %q", got)
	}
}

func TestIIOVRef(t *testing.T) {
	tests := []struct {
		name  string
		attrs map[string]string
		fail  map[string]error
		want  float64
	}{
		{name: "3.3 V supply", attrs: map[string]string{"out_voltage_scale": "0.805664062\n"}, want: 3.3},
		{name: "5 V supply", attrs: map[string]string{"out_voltage_scale": "1.220703125\n"}, want: 5},
		{name: "odd millivolts", attrs: map[string]string{"out_voltage_scale": "0.800048828\n"}, want: 3.277},
		{name: "per-channel scale first", attrs: map[string]string{"out_voltage0_scale": "1.220703125\n", "out_voltage_scale": "0.805664062\n"}, want: 5},
		{name: "no scale", want: 0},
		{name: "no vdd-supply: EINVAL", attrs: map[string]string{"out_voltage_scale": ""}, fail: map[string]error{"out_voltage_scale": syscall.EINVAL}, want: 0},
		{name: "not a number", attrs: map[string]string{"out_voltage_scale": "abc\n"}, want: 0},
		{name: "zero", attrs: map[string]string{"out_voltage_scale": "0.000000000\n"}, want: 0},
		{name: "negative", attrs: map[string]string{"out_voltage_scale": "-0.805664062\n"}, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := iiotest.NewMapFS(nil)
			attrs := map[string]string{"out_voltage0_raw": "0\n"}
			for k, v := range tc.attrs {
				attrs[k] = v
			}
			m.AddDevice("iio:device0", "mcp4725", attrs)
			for k, err := range tc.fail {
				m.Fail(dev0+"/"+k, err)
			}
			d, err := NewIIO(m, "mcp4725", 0)
			if err != nil {
				t.Fatal(err)
			}
			if d.VRef() != tc.want {
				t.Errorf("VRef() = %v, want %v", d.VRef(), tc.want)
			}
		})
	}
}

// Every failure of a sysfs access reaches the caller, wrapped, naming
// the device and the attribute.
func TestIIOErrors(t *testing.T) {
	full := map[string]string{
		"out_voltage0_raw":       "0\n",
		"out_voltage_scale":      "0.805664062\n",
		"out_voltage0_powerdown": "1\n",
		"store_eeprom":           "",
	}
	tests := []struct {
		name   string
		drop   string // attribute the driver does not have
		fail   string // attribute whose access fails
		err    error
		eeprom bool
		want   string
		writes []string // attribute writes made, in order
	}{
		{
			name: "raw write fails", fail: "out_voltage0_raw", err: syscall.EIO,
			want: "dac: write 5: iio iio:device0 (mcp4725) out_voltage0_raw: input/output error",
		},
		{
			name: "out of range for the driver", fail: "out_voltage0_raw", err: syscall.EINVAL,
			want: "out_voltage0_raw: invalid argument",
		},
		{
			name: "powerdown unreadable", fail: "out_voltage0_powerdown", err: syscall.EIO,
			want:   "dac: wrote 5, then: iio iio:device0 (mcp4725) out_voltage0_powerdown: input/output error",
			writes: []string{"out_voltage0_raw=5"},
		},
		{
			name: "no powerdown attribute", drop: "out_voltage0_powerdown",
			writes: []string{"out_voltage0_raw=5"},
		},
		{
			name:   "powered down: raw first, then powerdown off",
			writes: []string{"out_voltage0_raw=5", "out_voltage0_powerdown=0"},
		},
		{
			name: "store_eeprom times out in the driver", fail: "store_eeprom", err: syscall.EIO, eeprom: true,
			want:   "dac: eeprom write 5: iio iio:device0 (mcp4725) store_eeprom: input/output error",
			writes: []string{"out_voltage0_raw=5", "out_voltage0_powerdown=0"},
		},
		{
			name: "no store_eeprom", drop: "store_eeprom", eeprom: true,
			want:   "this driver cannot store a power-up value",
			writes: []string{"out_voltage0_raw=5", "out_voltage0_powerdown=0"},
		},
		{
			name: "to EEPROM", eeprom: true,
			writes: []string{"out_voltage0_raw=5", "out_voltage0_powerdown=0", "store_eeprom=1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			attrs := map[string]string{}
			for k, v := range full {
				if k != tc.drop {
					attrs[k] = v
				}
			}
			m := iiotest.NewMapFS(nil)
			m.AddDevice("iio:device0", "mcp4725", attrs)
			d, err := NewIIO(m, "mcp4725", 0)
			if err != nil {
				t.Fatal(err)
			}
			if tc.fail != "" {
				m.Fail(dev0+"/"+tc.fail, tc.err)
			}
			write := d.Write
			if tc.eeprom {
				write = d.WriteEEPROM
			}
			err = write(5)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("write = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("write = %v, want an error containing %q", err, tc.want)
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Errorf("write = %v, does not wrap %v", err, tc.err)
			}
			var writes []string
			for _, w := range m.Writes() {
				writes = append(writes, strings.TrimPrefix(w, dev0+"/"))
			}
			if !slices.Equal(writes, tc.writes) {
				t.Errorf("writes = %q, want %q", writes, tc.writes)
			}
		})
	}
}

func TestIIONoDevices(t *testing.T) {
	_, err := NewIIO(iiotest.NewMapFS(nil), "mcp4725", 0)
	if !errors.Is(err, iio.ErrNotFound) {
		t.Fatalf("NewIIO on an empty tree = %v, want iio.ErrNotFound", err)
	}
}
