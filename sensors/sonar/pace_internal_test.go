package sonar

import (
	"testing"
	"time"

	"github.com/rollcall/rollcall/sensors/iio/iiotest"
)

// The kernel's srf04 driver triggers on every read, however close; the
// IIO ranger must space them.
func TestIIOMinGap(t *testing.T) {
	m := iiotest.NewMapFS(nil)
	m.AddDevice("iio:device0", "srf04", map[string]string{"in_distance_raw": "1000", "in_distance_scale": "0.001"})
	r, err := NewIIO(m, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	var slept []time.Duration
	r.pace = pacer{
		now:   func() time.Time { return now },
		sleep: func(d time.Duration) { slept = append(slept, d); now = now.Add(d) },
	}
	tests := []struct {
		name      string
		after     time.Duration // since the previous ping
		wantSleep time.Duration
	}{
		{"first", 0, 0},
		{"back to back", 0, MinGap},
		{"20 ms later", 20 * time.Millisecond, MinGap - 20*time.Millisecond},
		{"a second later", time.Second, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now = now.Add(tc.after)
			slept = nil
			if _, err := r.Ping(); err != nil {
				t.Fatal(err)
			}
			var total time.Duration
			for _, d := range slept {
				total += d
			}
			if total != tc.wantSleep {
				t.Errorf("slept %v before the read, want %v", total, tc.wantSleep)
			}
		})
	}
}
