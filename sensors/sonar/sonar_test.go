package sonar_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/rollcall/rollcall/sensors/iio"
	"github.com/rollcall/rollcall/sensors/sonar"
)

func TestSpeedOfSound(t *testing.T) {
	// Dry air at sea level, from the usual reference tables.
	tests := []struct {
		name    string
		celsius float64
		want    float64 // m/s
	}{
		{"-25 °C", -25, 315.77},
		{"-20 °C", -20, 318.94},
		{"-10 °C", -10, 325.18},
		{"0 °C", 0, 331.30},
		{"10 °C", 10, 337.31},
		{"20 °C", 20, 343.21},
		{"25 °C", 25, 346.13},
		{"30 °C", 30, 349.02},
		{"35 °C", 35, 351.88},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sonar.SpeedOfSound(tc.celsius); math.Abs(got-tc.want) > 0.01 {
				t.Errorf("SpeedOfSound(%v) = %.3f m/s, want %.2f", tc.celsius, got, tc.want)
			}
		})
	}
	if got := sonar.SpeedOfSound(-273.15); !math.IsNaN(got) {
		t.Errorf("SpeedOfSound(absolute zero) = %v, want NaN", got)
	}
	// The kernel's srf04 driver assumes the air of about 20.5 °C.
	if got := sonar.KernelSpeed; math.Abs(got-343.5) > 0.001 {
		t.Errorf("KernelSpeed = %v, want 343.5", got)
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		name  string
		echo  time.Duration
		speed float64
		want  float64 // metres
		tol   float64
	}{
		{"nothing", 0, 343, 0, 0},
		{"datasheet: 58 µs per cm", 58 * time.Microsecond, 343, 0.01, 0.0001},
		{"datasheet: 148 µs per inch", 148 * time.Microsecond, 343, 0.0254, 0.0001},
		{"1 m at 20 °C", 5831 * time.Microsecond, 343, 1, 0.001},
		{"4 m at 20 °C", 23324 * time.Microsecond, 343, 4, 0.001},
		{"the same echo at -10 °C", 5831 * time.Microsecond, sonar.SpeedOfSound(-10), 0.948, 0.001},
		{"the datasheet's 340 m/s", 10 * time.Millisecond, 340, 1.7, 1e-12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sonar.Distance(tc.echo, tc.speed); math.Abs(got-tc.want) > tc.tol {
				t.Errorf("Distance(%v, %v) = %.5f m, want %v", tc.echo, tc.speed, got, tc.want)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	b := newBench(t, pulse{500 * time.Microsecond, roundTrip(1)})
	pins := map[string]gpio.PinIO{"GPIO23": b.trigPin, "GPIO24": b.echoPin}
	lookup := func(name string) gpio.PinIO { return pins[name] }
	tests := []struct {
		name    string
		o       sonar.Options
		want    string // %T of the ranger
		wantMsg string
	}{
		{name: "default is iio", o: sonar.Options{Sysfs: iio.Dir(sysfsRoot(t))}, want: "*sonar.IIO"},
		{name: "sim", o: sonar.Options{Driver: "sim", Seed: 1}, want: "*sonar.Sim"},
		{name: "gpio", o: sonar.Options{Driver: "gpio", Trigger: 23, Echo: 24, Lookup: lookup}, want: "*sonar.GPIO"},
		{name: "iio without overlay", o: sonar.Options{Driver: "iio", Sysfs: iio.Dir(t.TempDir())},
			wantMsg: `sonar: iio: "srf04": no such IIO device`},
		{name: "gpio without the pin", o: sonar.Options{Driver: "gpio", Trigger: 23, Echo: 25, Lookup: lookup},
			wantMsg: "sonar: echo GPIO25 not found (no such line on this machine's GPIO chips"},
		{name: "gpio on one pin", o: sonar.Options{Driver: "gpio", Trigger: 23, Echo: 23, Lookup: lookup},
			wantMsg: "sonar: trigger and echo are both GPIO23: the HC-SR04 needs two pins"},
		{name: "gpio on a negative pin", o: sonar.Options{Driver: "gpio", Trigger: -1, Echo: 24, Lookup: lookup},
			wantMsg: "pin numbers start at 0"},
		{name: "unknown driver", o: sonar.Options{Driver: "hcsr04"},
			wantMsg: `sonar: unknown driver "hcsr04" (want "iio", "gpio" or "sim")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := sonar.Open(tc.o)
			if tc.wantMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("Open error %v, want %q", err, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%T", r); got != tc.want {
				t.Errorf("Open returned %s, want %s", got, tc.want)
			}
			if _, err := r.Ping(); err != nil {
				t.Error(err)
			}
			if err := r.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	// Open acquired the gpio pins, so its Close released them.
	if b.halts < 2 {
		t.Errorf("echo pin halted %d times, want Close's halt and the release", b.halts)
	}
}

func ExampleDistance() {
	// An echo of 5.831 ms is 1 m in air at 20 °C; on a frosty morning the
	// sound is slower and the same echo means a nearer target.
	echo := 5831 * time.Microsecond
	for _, c := range []float64{20, -10} {
		fmt.Printf("%3.0f °C: %.1f m/s, %.3f m\n", c, sonar.SpeedOfSound(c), sonar.Distance(echo, sonar.SpeedOfSound(c)))
	}
	// Output:
	//  20 °C: 343.2 m/s, 1.001 m
	// -10 °C: 325.2 m/s, 0.948 m
}
