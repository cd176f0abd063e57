package dac

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/rollcall/rollcall/sensors/iio/iiotest"
)

func TestOpenI2C(t *testing.T) {
	// The probe is the datasheets' plain read: five bytes from the
	// MCP4725 (DS22039D Figure 6-3), one from the PCF8591 (Rev. 7
	// Figure 16). Then one write each, as in their own tests.
	tests := []struct {
		name     string
		opts     Options
		ops      []i2ctest.IO
		nack     int  // the transaction, from 1, the chip does not acknowledge; 0: none
		short    bool // the probe reads short
		wantBus  string
		writeRaw int
		want     string // "" to open, else part of the error
	}{
		{
			name:    "mcp4725 defaults",
			opts:    Options{Chip: "mcp4725"},
			ops:     []i2ctest.IO{{Addr: 0x60, R: []byte{statusReady, 0, 0, 0, 0}}, {Addr: 0x60, W: []byte{0x08, 0x00}}},
			wantBus: "1", writeRaw: 2048,
		},
		{
			name:    "mcp4725 on another bus and address",
			opts:    Options{Chip: "mcp4725", Bus: "I2C3", Addr: 0x63},
			ops:     []i2ctest.IO{{Addr: 0x63, R: []byte{statusReady, 0, 0, 0, 0}}, {Addr: 0x63, W: []byte{0x0f, 0xff}}},
			wantBus: "I2C3", writeRaw: 4095,
		},
		{
			name:    "pcf8591 defaults",
			opts:    Options{Chip: "pcf8591"},
			ops:     []i2ctest.IO{{Addr: 0x48, R: []byte{0x80}}, {Addr: 0x48, W: []byte{0x40, 0x80}}},
			wantBus: "1", writeRaw: 128,
		},
		{
			name:    "mcp4725 does not answer",
			opts:    Options{Chip: "mcp4725"},
			ops:     []i2ctest.IO{{Addr: 0x60, R: []byte{0, 0, 0, 0, 0}}},
			nack:    1,
			wantBus: "1",
			want:    "mcp4725 on playback at 0x60: read: sysfs-i2c: remote I/O error (check power, SDA and SCL, and the address: 0x60 or 0x61 for an MCP4725A0",
		},
		{
			name:    "pcf8591 does not answer",
			opts:    Options{Chip: "pcf8591", Bus: "/dev/i2c-0", Addr: 0x4a},
			ops:     []i2ctest.IO{{Addr: 0x4a, R: []byte{0}}},
			nack:    1,
			wantBus: "/dev/i2c-0",
			want:    "pcf8591 on playback at 0x4a: read: sysfs-i2c: remote I/O error (check power, SDA and SCL, and the address: 0x48 with A2, A1, A0 low, up to 0x4f with all high; i2cdetect -y 0 lists what answers)",
		},
		{
			name:    "pcf8591 probe reads short",
			opts:    Options{Chip: "pcf8591"},
			ops:     []i2ctest.IO{{Addr: 0x48, R: []byte{}}},
			short:   true,
			wantBus: "1",
			want:    "pcf8591 on playback at 0x48: read: i2ctest: unexpected read buffer length",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bus := &testBus{Playback: playbackShort(t, tc.short, tc.ops...), nack: tc.nack}
			var gotBus string
			tc.opts.OpenBus = func(name string) (i2c.BusCloser, error) {
				gotBus = name
				return bus, nil
			}
			out, err := Open(tc.opts)
			if gotBus != tc.wantBus {
				t.Errorf("opened bus %q, want %q", gotBus, tc.wantBus)
			}
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Open error = %v, want one containing %q", err, tc.want)
				}
				if out != nil {
					t.Errorf("Open returned %v with its error", out)
				}
				if bus.closeCount() != 1 {
					t.Errorf("bus closed %d times after a failed probe, want 1", bus.closeCount())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := out.Write(tc.writeRaw); err != nil {
				t.Fatal(err)
			}
			if err := out.Close(); err != nil {
				t.Fatal(err)
			}
			if err := out.Close(); err != nil {
				t.Errorf("second Close = %v", err)
			}
			if bus.closeCount() != 1 {
				t.Errorf("bus closed %d times, want 1", bus.closeCount())
			}
		})
	}
}

func TestOpenRefused(t *testing.T) {
	errBus := errors.New("sysfs-i2c: bus #7 is not configured")
	tests := []struct {
		name string
		opts Options
		want string
		err  error
	}{
		{name: "unknown chip", opts: Options{Chip: "mcp4728"}, want: `dac: unknown chip "mcp4728" (known: mcp4725, pcf8591, iio, sim)`},
		{name: "no chip", opts: Options{}, want: `dac: unknown chip ""`},
		{name: "address of another chip", opts: Options{Chip: "mcp4725", Addr: 0x48}, want: "dac mcp4725: address 0x48: the chip answers only at 0x60–0x67"},
		{name: "second output", opts: Options{Chip: "pcf8591", Channel: 1}, want: "dac pcf8591: channel 1: the chip has 1 output(s)", err: ErrRange},
		{name: "negative output", opts: Options{Chip: "sim", Channel: -1}, err: ErrRange},
		{name: "bus does not open", opts: Options{Chip: "mcp4725", Bus: "7"}, want: `dac mcp4725: open I2C bus "7": sysfs-i2c: bus #7 is not configured`, err: errBus},
		{name: "no IIO device", opts: Options{Chip: "iio", Sysfs: iiotest.NewMapFS(nil)}, want: `iio: "mcp4725": no such IIO device`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opened := false
			tc.opts.OpenBus = func(string) (i2c.BusCloser, error) {
				opened = true
				return nil, errBus
			}
			out, err := Open(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open error = %v, want one containing %q", err, tc.want)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("Open error %v does not wrap %v", err, tc.err)
			}
			if out != nil {
				t.Errorf("Open returned %v with its error", out)
			}
			if opened && tc.err != errBus {
				t.Error("a setup refused by its chip's description opened a bus")
			}
		})
	}
}

func TestOpenIIOAndSim(t *testing.T) {
	m := iiotest.NewMapFS(nil)
	m.AddDevice("iio:device3", "mcp4725", map[string]string{"out_voltage0_raw": "0\n", "out_voltage_scale": "1.220703125\n"})
	out, err := Open(Options{Chip: "iio", Sysfs: m})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := out.(*IIO); !ok || d.VRef() != 5 {
		t.Errorf("Open iio = %T %v", out, out)
	}
	if err := out.Write(4000); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Content("bus/iio/devices/iio:device3/out_voltage0_raw"); got != "4000" {
		t.Errorf("out_voltage0_raw = %q, want 4000", got)
	}

	out, err = Open(Options{Chip: "sim"})
	if err != nil {
		t.Fatal(err)
	}
	s, ok := out.(*Sim)
	if !ok {
		t.Fatalf("Open sim = %T", out)
	}
	if err := s.Write(4095); err != nil || s.Value() != 4095 {
		t.Errorf("sim Write(4095) = %v, Value %d", err, s.Value())
	}
}

// With no I2C bus, the real path (periph's host.Init and i2creg) fails
// saying how to enable one.
func TestOpenPeriphNoBus(t *testing.T) {
	if _, err := os.Stat("/dev/i2c-1"); err == nil {
		t.Skip("/dev/i2c-1 exists: this machine has the bus")
	}
	_, err := Open(Options{Chip: "mcp4725"})
	if want := "no /dev/i2c-1: enable I2C with dtparam=i2c_arm=on"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open = %v, want an error containing %q", err, want)
	}
}

func TestBusHint(t *testing.T) {
	withBus1 := t.TempDir()
	if err := os.WriteFile(filepath.Join(withBus1, "i2c-1"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	tests := []struct {
		name, bus, dev, want string
	}{
		{"number, node there", "1", withBus1, "i2c-1 exists: may this user open it?"},
		{"periph alias, node there", "I2C1", withBus1, "i2c-1 exists"},
		{"device path, node there", "/dev/i2c-1", withBus1, "i2c-1 exists"},
		{"header bus missing", "1", empty, "i2c-1: enable I2C with dtparam=i2c_arm=on"},
		{"other bus missing", "I2C3", withBus1, "i2c-3: is that bus enabled?"},
		{"not a bus name", "ft232h", withBus1, ""},
		{"negative", "-1", withBus1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := busHint(tc.bus, tc.dev)
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("busHint(%q) = %q, want %q", tc.bus, got, tc.want)
			}
		})
	}
}
