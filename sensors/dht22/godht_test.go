//go:build godht && cgo

package dht22_test

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/rollcall/rollcall/sensors/dht22"
	"github.com/rollcall/rollcall/sensors/iio"
)

// Read is not tested: go-dht always drives the real /sys/class/gpio, and
// on a Pi that would toggle a pin.
func TestOpenGoDHT(t *testing.T) {
	legacy := fstest.MapFS{
		"class/gpio/gpiochip0/label": {Data: []byte("pinctrl-bcm2835\n")},
		"class/gpio/gpiochip0/base":  {Data: []byte("0\n")},
		"class/gpio/gpiochip0/ngpio": {Data: []byte("54\n")},
	}
	tests := []struct {
		name    string
		o       dht22.Options
		wantMsg string
	}{
		{name: "kernel before 6.6", o: dht22.Options{Driver: "godht", Pin: 4, Sysfs: writable{legacy}}},
		{name: "kernel 6.6", o: dht22.Options{Driver: "godht", Pin: 4, Sysfs: iio.Dir(sysfsRoot(t))},
			wantMsg: "its sysfs number is 516 and go-dht can only export numbers below 100"},
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
			if got := fmt.Sprintf("%T", s); got != "*dht22.GoDHT" {
				t.Errorf("Open returned %s", got)
			}
		})
	}
}

// writable makes a read-only tree an iio.FS.
type writable struct{ fstest.MapFS }

func (writable) WriteFile(string, []byte) error { return fmt.Errorf("read-only") }
