package dht22_test

import (
	"errors"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollcall/rollcall/sensors/dht22"
)

var epoch = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)

// stepClock returns a clock that starts at epoch and moves by step each
// time it is read.
func stepClock(step time.Duration) func() time.Time {
	t := epoch.Add(-step)
	return func() time.Time {
		t = t.Add(step)
		return t
	}
}

func TestSimDeterministic(t *testing.T) {
	tests := []struct {
		name string
		step time.Duration
	}{
		{"every read a new window", 3 * time.Second},
		{"minutes apart", 7 * time.Minute},
		{"hours apart", 5 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := dht22.NewSim(42, stepClock(tc.step)), dht22.NewSim(42, stepClock(tc.step))
			other := dht22.NewSim(43, stepClock(tc.step))
			differs := false
			for i := range 50 {
				ra, err := a.Read()
				if err != nil {
					t.Fatal(err)
				}
				rb, _ := b.Read()
				ro, _ := other.Read()
				if ra != rb {
					t.Fatalf("read %d: seed 42 gave %+v then %+v", i, ra, rb)
				}
				differs = differs || ra != ro
			}
			if !differs {
				t.Error("seeds 42 and 43 gave the same 50 readings")
			}
		})
	}
}

func TestSimWindow(t *testing.T) {
	s := dht22.NewSim(1, nil)
	start := epoch.Add(10 * time.Second) // a window boundary
	first := s.At(start)
	for _, d := range []time.Duration{time.Millisecond, time.Second, dht22.MinInterval - time.Nanosecond} {
		if r := s.At(start.Add(d)); r != first {
			t.Errorf("At(+%v) = %+v, want the window's %+v", d, r, first)
		}
	}
	changed := false
	for i := 1; i <= 20; i++ {
		changed = changed || s.At(start.Add(time.Duration(i)*dht22.MinInterval)) != first
	}
	if !changed {
		t.Error("20 windows in a row gave the same reading: no noise")
	}
}

func TestSimPlausible(t *testing.T) {
	belowZero := 0
	for seed := uint64(0); seed < 40; seed++ {
		s := dht22.NewSim(seed, nil)
		lo, hi := math.Inf(1), math.Inf(-1)
		prev := s.At(epoch)
		for ts := epoch; ts.Before(epoch.Add(72 * time.Hour)); ts = ts.Add(time.Minute) {
			r := s.At(ts)
			if r.Celsius < -40 || r.Celsius > 80 || r.Humidity < 0 || r.Humidity > 100 {
				t.Fatalf("seed %d at %v: %+v outside the DHT22's range", seed, ts, r)
			}
			if r.Celsius != math.Round(r.Celsius*10)/10 || r.Humidity != math.Round(r.Humidity*10)/10 {
				t.Fatalf("seed %d at %v: %+v not in tenths", seed, ts, r)
			}
			// Slowly changing: a minute moves it by noise and a little drift.
			if d := math.Abs(r.Celsius - prev.Celsius); d > 1 {
				t.Fatalf("seed %d at %v: temperature jumped %.1f °C in a minute (%+v after %+v)", seed, ts, d, r, prev)
			}
			lo, hi = min(lo, r.Celsius), max(hi, r.Celsius)
			prev = r
		}
		if hi-lo < 4 {
			t.Errorf("seed %d: three days span %.1f to %.1f °C, want a daily cycle", seed, lo, hi)
		}
		if lo < 0 {
			belowZero++
		}
	}
	if belowZero == 0 || belowZero == 40 {
		t.Errorf("%d of 40 seeds go below 0 °C, want some but not all", belowZero)
	}
}

func TestSimFail(t *testing.T) {
	s := dht22.NewSim(5, stepClock(time.Minute))
	tests := []struct {
		name          string
		fail          error
		wantRetryable bool
	}{
		{"EIO", syscall.EIO, true},
		{"ETIMEDOUT", syscall.ETIMEDOUT, true},
		{"ENODEV", syscall.ENODEV, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.Fail(tc.fail)
			_, err := s.Read()
			if !errors.Is(err, tc.fail) || dht22.Retryable(err) != tc.wantRetryable || !strings.HasPrefix(err.Error(), "dht22: sim: ") {
				t.Errorf("Read error %v, want %v, retryable %v", err, tc.fail, tc.wantRetryable)
			}
			s.Fail(nil)
			if _, err := s.Read(); err != nil {
				t.Errorf("Read after Fail(nil): %v", err)
			}
		})
	}
}
