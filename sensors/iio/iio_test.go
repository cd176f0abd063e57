package iio_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rollcall/rollcall/sensors/iio"
	"github.com/rollcall/rollcall/sensors/iio/iiotest"
)

func TestFindAndRead(t *testing.T) {
	m := iiotest.NewMapFS(nil)
	m.AddDevice("iio:device10", "mcp4725", map[string]string{"out_voltage0_raw": "0\n"})
	m.AddDevice("iio:device2", "mcp3008", map[string]string{"in_voltage0_raw": "512\n", "in_voltage_scale": "3.222656250\n"})
	m.AddDevice("iio:device1", "dht11@0", map[string]string{"in_temp_input": "-12300\n"})

	tests := []struct {
		name, want string
	}{
		{"mcp3008", "bus/iio/devices/iio:device2"},
		{"iio:device1", "bus/iio/devices/iio:device1"},
		{"mcp4725", "bus/iio/devices/iio:device10"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := iio.Find(m, tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if d.Dir != tc.want {
				t.Errorf("Dir = %s, want %s", d.Dir, tc.want)
			}
		})
	}
	d, _ := iio.Find(m, "mcp3008")
	if raw, err := d.ReadInt("in_voltage0_raw"); err != nil || raw != 512 {
		t.Errorf("raw = %d, %v", raw, err)
	}
	if s, err := d.ReadFloat("in_voltage_scale"); err != nil || s != 3.22265625 {
		t.Errorf("scale = %v, %v", s, err)
	}
	dht, _ := iio.Find(m, "dht11")
	if v, err := dht.ReadInt("in_temp_input"); err != nil || v != -12300 {
		t.Errorf("temp = %d, %v", v, err)
	}
	if !d.Has("in_voltage0_raw") || d.Has("in_voltage9_raw") {
		t.Error("Has")
	}

	_, err := iio.Find(m, "ads1115")
	if !errors.Is(err, iio.ErrNotFound) || !strings.Contains(err.Error(), "iio:device2 (mcp3008)") {
		t.Errorf("missing device: %v", err)
	}
}

func TestErrors(t *testing.T) {
	m := iiotest.NewMapFS(nil)
	m.AddDevice("iio:device0", "dht11", map[string]string{"in_temp_input": "x", "in_humidityrelative_input": "1"})
	d, err := iio.Find(m, "dht11")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadInt("in_temp_input"); err == nil || !strings.Contains(err.Error(), `iio iio:device0 (dht11) in_temp_input: "x" is not an integer`) {
		t.Errorf("bad content: %v", err)
	}
	for _, errno := range []syscall.Errno{syscall.EIO, syscall.ETIMEDOUT, syscall.EAGAIN} {
		m.Fail("bus/iio/devices/iio:device0/in_humidityrelative_input", errno)
		_, err := d.ReadInt("in_humidityrelative_input")
		if !iio.Retryable(err) || !errors.Is(err, errno) {
			t.Errorf("%v: iio.Retryable(%v) = false", errno, err)
		}
	}
	m.Fail("bus/iio/devices/iio:device0/in_humidityrelative_input", syscall.ENODEV)
	if _, err := d.ReadInt("in_humidityrelative_input"); iio.Retryable(err) || err == nil {
		t.Errorf("ENODEV retryable: %v", err)
	}
	if iio.Retryable(fmt.Errorf("wrapped: %w", syscall.EINVAL)) {
		t.Error("EINVAL retryable")
	}
}

func TestDirWrite(t *testing.T) {
	root := t.TempDir()
	dev := filepath.Join(root, "bus/iio/devices/iio:device0")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, c := range map[string]string{"name": "mcp4725\n", "out_voltage0_raw": "0\n"} {
		if err := os.WriteFile(filepath.Join(dev, f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := iio.Find(iio.Dir(root), "mcp4725")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteInt("out_voltage0_raw", 2048); err != nil {
		t.Fatal(err)
	}
	if v, err := d.ReadInt("out_voltage0_raw"); err != nil || v != 2048 {
		t.Errorf("read back %d, %v", v, err)
	}
	// sysfs attributes are never created by a write.
	if err := d.WriteInt("out_voltage1_raw", 1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("write to a missing attribute: %v", err)
	}
}
