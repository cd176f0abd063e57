package sonar_test

import (
	"errors"
	"io/fs"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollcall/rollcall/sensors/iio"
	"github.com/rollcall/rollcall/sensors/iio/iiotest"
	"github.com/rollcall/rollcall/sensors/sonar"
)

// sysfsRoot is the fake sysfs tree under testdata (its go.mod keeps the
// ':' of its iio:deviceN paths out of rollcall's module zip).
func sysfsRoot(*testing.T) string { return "testdata/sys" }

func TestIIOTestdata(t *testing.T) {
	r, err := sonar.NewIIO(iio.Dir(sysfsRoot(t)), "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if d := r.Device(); d.Dir != "bus/iio/devices/iio:device0" || d.Name != "srf04" {
		t.Errorf("device %s (%s), want iio:device0 (srf04)", d.Dir, d.Name)
	}
	echo, err := r.Ping()
	if err != nil {
		t.Fatal(err)
	}
	// 1000 mm at the kernel's 343.5 m/s is a 5822 µs round trip.
	if want := 5822 * time.Microsecond; echo.Round(time.Microsecond) != want {
		t.Errorf("Ping = %v, want %v", echo, want)
	}
	if d := sonar.Distance(echo, sonar.KernelSpeed); math.Abs(d-1) > 1e-6 {
		t.Errorf("Distance at the kernel's speed = %.7f m, want the kernel's 1 m back", d)
	}
	if trig, echo, err := r.Pins(); err != nil || trig != 23 || echo != 24 {
		t.Errorf("Pins = %d, %d, %v; want the overlay's 23 and 24", trig, echo, err)
	}
	// The same echo in air at 0 °C: the target is nearer than the kernel says.
	if d := sonar.Distance(echo, sonar.SpeedOfSound(0)); math.Abs(d-0.9645) > 0.0005 {
		t.Errorf("Distance at 0 °C = %.4f m, want 0.9645", d)
	}
}

// srf04FS is a sysfs with one srf04 device reading raw at scale.
func srf04FS(raw, scale string) *iiotest.MapFS {
	m := iiotest.NewMapFS(nil)
	m.AddDevice("iio:device0", "srf04", map[string]string{"in_distance_raw": raw, "in_distance_scale": scale})
	return m
}

const rawAttr = "bus/iio/devices/iio:device0/in_distance_raw"

func TestIIOPing(t *testing.T) {
	tests := []struct {
		name, raw, scale string
		fail             error
		want             time.Duration // rounded to the µs
		wantIs           error
		wantMsg          string
	}{
		{name: "touching", raw: "0", scale: "0.001000", want: 0},
		{name: "2 cm", raw: "20", scale: "0.001000", want: 116 * time.Microsecond},
		{name: "4 m", raw: "4000", scale: "0.001000", want: 23290 * time.Microsecond},
		{name: "centimetre scale", raw: "150", scale: "0.01", want: 8734 * time.Microsecond},
		{name: "just in range", raw: "5150", scale: "0.001000", want: 29985 * time.Microsecond},
		{name: "no-target pulse", raw: "6527", scale: "0.001000",
			wantIs: sonar.ErrNoEcho, wantMsg: "sonar: iio:device0 (srf04) read 6.527 m: no echo (no target in range)"},
		{name: "EIO", raw: "0", scale: "0.001", fail: syscall.EIO,
			wantIs: sonar.ErrNoEcho, wantMsg: "in_distance_raw: input/output error"},
		{name: "ETIMEDOUT", raw: "0", scale: "0.001", fail: syscall.ETIMEDOUT,
			wantIs: syscall.ETIMEDOUT, wantMsg: "connection timed out (ECHO did not rise within 20 ms of the trigger"},
		{name: "ENODEV", raw: "0", scale: "0.001", fail: syscall.ENODEV,
			wantIs: syscall.ENODEV, wantMsg: "iio iio:device0 (srf04) in_distance_raw: no such device"},
		{name: "garbage", raw: "12.5\n", scale: "0.001",
			wantMsg: `sonar: iio iio:device0 (srf04) in_distance_raw: "12.5" is not an integer`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := srf04FS(tc.raw, tc.scale)
			r, err := sonar.NewIIO(m, "srf04")
			if err != nil {
				t.Fatal(err)
			}
			if tc.fail != nil {
				m.Fail(rawAttr, tc.fail)
			}
			got, err := r.Ping()
			if tc.wantMsg == "" {
				if err != nil || got.Round(time.Microsecond) != tc.want {
					t.Errorf("Ping = %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Ping = %v, %v; want error %q", got, err, tc.wantMsg)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
			if tc.wantIs != sonar.ErrNoEcho && errors.Is(err, sonar.ErrNoEcho) {
				t.Errorf("error %v is ErrNoEcho, which means no target, not a fault", err)
			}
			if tc.fail != nil && !errors.Is(err, tc.fail) {
				t.Errorf("error %v lost the errno %v", err, tc.fail)
			}
		})
	}
}

func TestNewIIOErrors(t *testing.T) {
	other := iiotest.NewMapFS(nil)
	other.AddDevice("iio:device0", "dht11@0", map[string]string{"in_temp_input": "1"})
	tests := []struct {
		name    string
		fsys    iio.FS
		device  string
		wantIs  error
		wantMsg string
	}{
		{name: "no overlay", fsys: other, wantIs: iio.ErrNotFound,
			wantMsg: `sonar: iio: "srf04": no such IIO device under bus/iio/devices (devices present: iio:device0 (dht11@0); is the dtoverlay loaded?)`},
		{name: "another chip", fsys: other, device: "dht11@0",
			wantMsg: "sonar: iio:device0 (dht11@0) has no in_distance_raw: not a device of the kernel's srf04 driver"},
		{name: "garbage scale", fsys: srf04FS("1", "milli"), wantMsg: `in_distance_scale: "milli" is not a number`},
		{name: "zero scale", fsys: srf04FS("1", "0.000000"), wantMsg: "in_distance_scale is 0, want a positive number of metres"},
		{name: "no scale", fsys: func() iio.FS {
			m := iiotest.NewMapFS(nil)
			m.AddDevice("iio:device3", "srf04", map[string]string{"in_distance_raw": "1"})
			return m
		}(), wantIs: fs.ErrNotExist, wantMsg: "iio iio:device3 (srf04) in_distance_scale"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sonar.NewIIO(tc.fsys, tc.device)
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("NewIIO error %v, want %q", err, tc.wantMsg)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
		})
	}
}

func TestIIOPinsErrors(t *testing.T) {
	tests := []struct {
		name, trig, echo, wantMsg string
	}{
		{name: "no device tree node", wantMsg: "trig-gpios of the overlay"},
		{name: "no echo", trig: "\x00\x00\x00\x0b\x00\x00\x00\x17\x00\x00\x00\x00", wantMsg: "echo-gpios of the overlay"},
		{name: "truncated", trig: "\x00\x00\x00\x0b\x00\x00", wantMsg: "of_node/trig-gpios holds 6 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := srf04FS("1000", "0.001000")
			if tc.trig != "" {
				m.Set("bus/iio/devices/iio:device0/of_node/trig-gpios", tc.trig)
			}
			if tc.echo != "" {
				m.Set("bus/iio/devices/iio:device0/of_node/echo-gpios", tc.echo)
			}
			r, err := sonar.NewIIO(m, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := r.Pins(); err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Pins error %v, want %q", err, tc.wantMsg)
			}
		})
	}
}
