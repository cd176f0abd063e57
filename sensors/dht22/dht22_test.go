package dht22_test

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollcall/rollcall/sensors/dht22"
	"github.com/rollcall/rollcall/sensors/iio"
	"github.com/rollcall/rollcall/sensors/iio/iiotest"
)

// sysfsRoot is the fake sysfs tree under testdata (its go.mod keeps the
// ':' of its iio:deviceN paths out of rollcall's module zip).
func sysfsRoot(*testing.T) string { return "testdata/sys" }

func TestIIOTestdata(t *testing.T) {
	fsys := iio.Dir(sysfsRoot(t))
	tests := []struct {
		name, device string
	}{
		{"default", ""},
		{"driver name", "dht11"},
		{"full name", "dht11@0"},
		{"directory", "iio:device1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := dht22.NewIIO(fsys, tc.device)
			if err != nil {
				t.Fatal(err)
			}
			if d := s.Device(); d.Dir != "bus/iio/devices/iio:device1" || d.Name != "dht11@0" {
				t.Errorf("device = %s (%s), want iio:device1 (dht11@0)", d.Dir, d.Name)
			}
			r, err := s.Read()
			if err != nil {
				t.Fatal(err)
			}
			if want := (dht22.Reading{Celsius: -10.1, Humidity: 65.2}); r != want {
				t.Errorf("Read = %+v, want %+v", r, want)
			}
			pin, err := s.Pin()
			if err != nil || pin != 4 {
				t.Errorf("Pin = %d, %v; want 4 (dtoverlay=dht11,gpiopin=4)", pin, err)
			}
		})
	}
}

func TestNewIIOErrors(t *testing.T) {
	fsys := iio.Dir(sysfsRoot(t))
	tests := []struct {
		name, device string
		wantIs       error
		wantMsg      string
	}{
		{"another chip", "mcp3008", nil, "iio:device0 (mcp3008) has no in_temp_input: not a device of the kernel's dht11 driver"},
		{"no such device", "dht12", iio.ErrNotFound, "devices present: iio:device0 (mcp3008), iio:device1 (dht11@0); is the dtoverlay loaded?"},
		{"no such directory", "iio:device7", iio.ErrNotFound, "is the dtoverlay loaded?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dht22.NewIIO(fsys, tc.device)
			if err == nil {
				t.Fatal("NewIIO succeeded")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) || !strings.HasPrefix(err.Error(), "dht22: ") {
				t.Errorf("error %q, want it to start with dht22: and contain %q", err, tc.wantMsg)
			}
		})
	}
	if _, err := dht22.NewIIO(iio.Dir(t.TempDir()), ""); !errors.Is(err, iio.ErrNotFound) || !strings.Contains(err.Error(), "devices present: none") {
		t.Errorf("empty sysfs: %v", err)
	}
}

// dhtFS is a sysfs with one dht11 device, named name, reading temp and hum.
func dhtFS(name, temp, hum string) *iiotest.MapFS {
	m := iiotest.NewMapFS(nil)
	m.AddDevice("iio:device0", name, map[string]string{"in_temp_input": temp, "in_humidityrelative_input": hum})
	return m
}

const tempAttr = "bus/iio/devices/iio:device0/in_temp_input"
const humAttr = "bus/iio/devices/iio:device0/in_humidityrelative_input"

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name          string
		temp, hum     string
		failAttr      string
		fail          error
		wantRetryable bool
		wantIs        error
		wantMsg       string
	}{
		{name: "EIO on temperature", temp: "20000", hum: "50000", failAttr: tempAttr, fail: syscall.EIO,
			wantRetryable: true, wantIs: syscall.EIO, wantMsg: "in_temp_input: input/output error (garbled answer"},
		{name: "ETIMEDOUT on temperature", temp: "20000", hum: "50000", failAttr: tempAttr, fail: syscall.ETIMEDOUT,
			wantRetryable: true, wantIs: syscall.ETIMEDOUT, wantMsg: "check its power, the data wire and the pull-up"},
		{name: "EAGAIN on temperature", temp: "20000", hum: "50000", failAttr: tempAttr, fail: syscall.EAGAIN,
			wantRetryable: true, wantIs: syscall.EAGAIN, wantMsg: "clock is too coarse"},
		{name: "EIO on humidity", temp: "20000", hum: "50000", failAttr: humAttr, fail: syscall.EIO,
			wantRetryable: true, wantIs: syscall.EIO, wantMsg: "iio iio:device0 (dht11@0) in_humidityrelative_input"},
		{name: "ENODEV", temp: "20000", hum: "50000", failAttr: tempAttr, fail: syscall.ENODEV,
			wantIs: syscall.ENODEV, wantMsg: "no such device"},
		{name: "permission", temp: "20000", hum: "50000", failAttr: humAttr, fail: fs.ErrPermission,
			wantIs: fs.ErrPermission, wantMsg: "permission denied"},
		{name: "garbage temperature", temp: "2O000\n", hum: "50000",
			wantMsg: `in_temp_input: "2O000" is not an integer`},
		{name: "garbage humidity", temp: "20000", hum: "\n",
			wantMsg: `in_humidityrelative_input: "" is not an integer`},
		{name: "temperature out of range", temp: "-3276700", hum: "50000",
			wantRetryable: true, wantMsg: "implausible reading -3276.7 °C 50.0 %RH"},
		{name: "humidity out of range", temp: "20000", hum: "100100",
			wantRetryable: true, wantMsg: "implausible reading 20.0 °C 100.1 %RH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := dhtFS("dht11@0", tc.temp, tc.hum)
			s, err := dht22.NewIIO(m, "")
			if err != nil {
				t.Fatal(err)
			}
			if tc.fail != nil {
				m.Fail(tc.failAttr, tc.fail)
			}
			_, err = s.Read()
			if err == nil {
				t.Fatal("Read succeeded")
			}
			if got := dht22.Retryable(err); got != tc.wantRetryable {
				t.Errorf("Retryable(%v) = %v, want %v", err, got, tc.wantRetryable)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) || !strings.HasPrefix(err.Error(), "dht22: ") {
				t.Errorf("error %q, want it to start with dht22: and contain %q", err, tc.wantMsg)
			}
			// The fault gone, the same sensor reads again.
			m.Fail(tc.failAttr, nil)
			m.Set(tempAttr, "21500")
			m.Set(humAttr, "40000")
			if r, err := s.Read(); err != nil || r != (dht22.Reading{Celsius: 21.5, Humidity: 40}) {
				t.Errorf("Read after recovery = %+v, %v", r, err)
			}
		})
	}
}

func TestTemperatures(t *testing.T) {
	tests := []struct {
		name, raw string
		want      float64
	}{
		{"below zero", "-10100", -10.1},
		{"just below zero", "-100", -0.1},
		{"lowest", "-40000", -40},
		{"zero", "0", 0},
		{"room", "25400\n", 25.4},
		{"highest", "80000", 80},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := dht22.NewIIO(dhtFS("dht11@0", tc.raw, "65200"), "")
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.Read()
			if err != nil {
				t.Fatal(err)
			}
			if r.Celsius != tc.want || r.Humidity != 65.2 {
				t.Errorf("Read = %+v, want %v °C 65.2 %%RH", r, tc.want)
			}
		})
	}
}

func TestDeviceNames(t *testing.T) {
	tests := []struct {
		name    string
		names   []string // name files of iio:device0, 1, ...
		device  string
		wantDir string // "" means an error
		wantMsg string
	}{
		{name: "unit address", names: []string{"dht11@4"}, device: "", wantDir: "iio:device0"},
		{name: "bus id", names: []string{"4.dht11"}, device: "dht11", wantDir: "iio:device0"},
		{name: "plain name", names: []string{"ads1115", "dht11"}, device: "", wantDir: "iio:device1"},
		{name: "two sensors, one named", names: []string{"dht11@4", "dht11@11"}, device: "dht11@11", wantDir: "iio:device1"},
		{name: "two sensors, none named", names: []string{"dht11@4", "dht11@11"}, device: "",
			wantMsg: `"dht11" matches 2 devices (iio:device0 (dht11@4), iio:device1 (dht11@11)); name one by its directory`},
		{name: "not a unit address", names: []string{"dht11x"}, device: "dht11", wantMsg: "no such IIO device"},
		{name: "not a bus id", names: []string{"x.dht11"}, device: "dht11", wantMsg: "no such IIO device"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := iiotest.NewMapFS(nil)
			for i, n := range tc.names {
				m.AddDevice(fmt.Sprintf("iio:device%d", i), n, map[string]string{"in_temp_input": "1000", "in_humidityrelative_input": "2000"})
			}
			s, err := dht22.NewIIO(m, tc.device)
			if tc.wantDir == "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("NewIIO(%q) error %v, want %q", tc.device, err, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := filepath.Base(s.Device().Dir); got != tc.wantDir {
				t.Errorf("NewIIO(%q) found %s, want %s", tc.device, got, tc.wantDir)
			}
		})
	}
}

func TestPinErrors(t *testing.T) {
	tests := []struct {
		name, gpios, wantMsg string
	}{
		{"no device tree node", "", "gpio of the overlay"},
		{"truncated", "\x00\x00\x00\x0b\x00\x00", "of_node/gpios holds 6 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := dhtFS("dht11@0", "1000", "2000")
			if tc.gpios != "" {
				m.Set("bus/iio/devices/iio:device0/of_node/gpios", tc.gpios)
			}
			s, err := dht22.NewIIO(m, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Pin(); err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Pin error %v, want %q", err, tc.wantMsg)
			}
		})
	}
}

func TestClose(t *testing.T) {
	sensors := []struct {
		name string
		s    dht22.Sensor
	}{
		{"iio", must(dht22.NewIIO(dhtFS("dht11", "1000", "2000"), ""))},
		{"sim", dht22.NewSim(1, nil)},
	}
	for _, tc := range sensors {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.s.Read(); err != nil {
				t.Fatal(err)
			}
			if err := tc.s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := tc.s.Read(); !errors.Is(err, fs.ErrClosed) || dht22.Retryable(err) {
				t.Errorf("Read after Close: %v, want fs.ErrClosed, not retryable", err)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"EIO", fmt.Errorf("x: %w", syscall.EIO), true},
		{"ETIMEDOUT", &iio.Error{Err: syscall.ETIMEDOUT}, true},
		{"EAGAIN", syscall.EAGAIN, true},
		{"ENOENT", fs.ErrNotExist, false},
		{"other", errors.New("boom"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := dht22.Retryable(tc.err); got != tc.want {
				t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	root := sysfsRoot(t)
	tests := []struct {
		name    string
		o       dht22.Options
		want    string // %T of the sensor
		wantMsg string
	}{
		{name: "default is iio", o: dht22.Options{Sysfs: iio.Dir(root)}, want: "*dht22.IIO"},
		{name: "iio by device", o: dht22.Options{Driver: "iio", Sysfs: iio.Dir(root), Device: "iio:device1"}, want: "*dht22.IIO"},
		{name: "sim", o: dht22.Options{Driver: "sim", Seed: 3}, want: "*dht22.Sim"},
		{name: "iio without overlay", o: dht22.Options{Sysfs: iio.Dir(t.TempDir())}, wantMsg: "is the dtoverlay loaded?"},
		{name: "unknown driver", o: dht22.Options{Driver: "dht11"}, wantMsg: `dht22: unknown driver "dht11" (want "iio", "godht" or "sim")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := dht22.Open(tc.o)
			if tc.wantMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("Open error %v, want %q", err, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := fmt.Sprintf("%T", s); got != tc.want {
				t.Errorf("Open returned %s, want %s", got, tc.want)
			}
			if _, err := s.Read(); err != nil {
				t.Error(err)
			}
		})
	}
}

func ExampleOpen() {
	clock := time.Date(2026, 1, 15, 4, 0, 0, 0, time.UTC)
	s, err := dht22.Open(dht22.Options{Driver: dht22.DriverSim, Seed: 7, Now: func() time.Time { return clock }})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	for range 3 {
		r, err := s.Read()
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s %.1f °C %.1f %%RH\n", clock.Format("15:04"), r.Celsius, r.Humidity)
		clock = clock.Add(6 * time.Hour)
	}
	// Output:
	// 04:00 0.4 °C 82.1 %RH
	// 10:00 10.6 °C 57.0 %RH
	// 16:00 13.6 °C 46.9 %RH
}
