package sonar_test

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/rollcall/rollcall/sensors/sonar"
)

// stepClock starts at epoch and moves by step each time it is read.
func stepClock(step time.Duration) func() time.Time {
	t := epoch.Add(-step)
	return func() time.Time {
		t = t.Add(step)
		return t
	}
}

func TestSimTarget(t *testing.T) {
	tests := []struct {
		name       string
		target     float64
		celsius    float64
		want       float64 // metres, from the echo at the air's speed; NaN: ErrNoEcho
		wantAt20   float64 // the same echo read as if at 20 °C
		wantNoEcho bool
	}{
		{name: "1 m", target: 1, celsius: 20, want: 1, wantAt20: 1},
		{name: "3.9 m", target: 3.9, celsius: 20, want: 3.9, wantAt20: 3.9},
		{name: "closer than the module sees", target: 0.005, celsius: 20, want: sonar.MinRange, wantAt20: sonar.MinRange},
		{name: "1 m in frost", target: 1, celsius: -10, want: 1, wantAt20: 1.0554},
		{name: "1 m in heat", target: 1, celsius: 35, want: 1, wantAt20: 0.9753},
		{name: "beyond range", target: 4.5, celsius: 20, wantNoEcho: true},
		{name: "no target at all", target: math.Inf(1), celsius: 20, wantNoEcho: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := sonar.NewSim(9, stepClock(100*time.Millisecond))
			s.SetTarget(tc.target)
			s.SetCelsius(tc.celsius)
			var sum, sum20 float64
			const n = 400
			for range n {
				echo, err := s.Ping()
				if tc.wantNoEcho {
					if !errors.Is(err, sonar.ErrNoEcho) {
						t.Fatalf("Ping = %v, %v; want ErrNoEcho", echo, err)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				d := sonar.Distance(echo, sonar.SpeedOfSound(tc.celsius))
				if math.Abs(d-tc.want) > 0.01 {
					t.Fatalf("Ping = %v, %.4f m; want within 1 cm of %v m", echo, d, tc.want)
				}
				sum += d
				sum20 += sonar.Distance(echo, sonar.SpeedOfSound(20))
			}
			if tc.wantNoEcho {
				return
			}
			if mean := sum / n; math.Abs(mean-tc.want) > 0.0005 {
				t.Errorf("mean of %d pings %.5f m, want %v", n, mean, tc.want)
			}
			if mean := sum20 / n; math.Abs(mean-tc.wantAt20) > 0.0005 {
				t.Errorf("mean read at 20 °C %.5f m, want %v: the air temperature should matter", mean, tc.wantAt20)
			}
		})
	}
}

func TestSimNoise(t *testing.T) {
	s := sonar.NewSim(2, stepClock(time.Second))
	s.SetTarget(1)
	seen := map[time.Duration]bool{}
	for range 50 {
		echo, err := s.Ping()
		if err != nil {
			t.Fatal(err)
		}
		seen[echo] = true
	}
	if len(seen) < 40 {
		t.Errorf("50 pings gave %d distinct echoes, want noise", len(seen))
	}
}

func TestSimDeterministic(t *testing.T) {
	run := func(seed uint64) []string {
		s := sonar.NewSim(seed, stepClock(700*time.Millisecond))
		var out []string
		for i := range 200 {
			if i == 150 {
				s.SetTarget(2)
			}
			echo, err := s.Ping()
			out = append(out, fmt.Sprint(echo, err))
		}
		return out
	}
	a, b, c := run(11), run(11), run(12)
	differs := false
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("ping %d: seed 11 gave %s then %s", i, a[i], b[i])
		}
		differs = differs || a[i] != c[i]
	}
	if !differs {
		t.Error("seeds 11 and 12 gave the same pings")
	}
}

func TestSimMovingTarget(t *testing.T) {
	now := epoch
	s := sonar.NewSim(4, func() time.Time { return now })
	lo, hi := math.Inf(1), math.Inf(-1)
	prev := s.Target()
	for range 900 {
		now = now.Add(100 * time.Millisecond)
		d := s.Target()
		if math.Abs(d-prev) > 0.01 {
			t.Fatalf("target jumped from %.3f to %.3f m in 100 ms", prev, d)
		}
		echo, err := s.Ping()
		if err != nil {
			t.Fatal(err)
		}
		if got := sonar.Distance(echo, sonar.SpeedOfSound(20)); math.Abs(got-d) > 0.01 {
			t.Fatalf("Ping %.3f m, target at %.3f m", got, d)
		}
		lo, hi, prev = min(lo, d), max(hi, d), d
	}
	if lo > 0.31 || hi < 2.69 || lo < 0.29 || hi > 2.71 {
		t.Errorf("over 90 s the target went from %.2f to %.2f m, want 0.3 to 2.7", lo, hi)
	}
}

// TestSimFollow: a followed target wanders within 2 cm of where it was
// put, and moves when it is put elsewhere.
func TestSimFollow(t *testing.T) {
	now := epoch
	s := sonar.NewSim(3, func() time.Time { return now })
	tests := []struct {
		name   string
		metres float64
	}{
		{"near", 0.5},
		{"far", 3},
		{"out of range", 4.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.Follow(tc.metres)
			lo, hi := math.Inf(1), math.Inf(-1)
			for range 400 {
				now = now.Add(100 * time.Millisecond)
				d := s.Target()
				lo, hi = min(lo, d), max(hi, d)
				_, err := s.Ping()
				if (tc.metres > sonar.MaxRange) != errors.Is(err, sonar.ErrNoEcho) {
					t.Fatalf("target %.3f m: Ping error %v", d, err)
				}
			}
			if lo < tc.metres-0.0201 || hi > tc.metres+0.0201 || hi-lo < 0.03 {
				t.Errorf("over 40 s the target went from %.4f to %.4f m, want within 2 cm of %v, wandering", lo, hi, tc.metres)
			}
		})
	}
	s.SetTarget(1)
	if d := s.Target(); d != 1 {
		t.Errorf("SetTarget after Follow: %v, want exactly 1", d)
	}
}

func TestSimFail(t *testing.T) {
	s := sonar.NewSim(1, nil)
	s.Fail(syscall.ETIMEDOUT)
	if _, err := s.Ping(); !errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, sonar.ErrNoEcho) {
		t.Errorf("Ping = %v, want ETIMEDOUT", err)
	}
	s.Fail(nil)
	if _, err := s.Ping(); err != nil {
		t.Errorf("Ping after Fail(nil) = %v", err)
	}
}

func TestSimClose(t *testing.T) {
	s := sonar.NewSim(1, nil)
	if _, err := s.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Ping(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Ping after Close: %v, want fs.ErrClosed", err)
	}
}

func ExampleSim() {
	s := sonar.NewSim(1, nil)
	s.SetTarget(1.5)
	s.SetCelsius(-5)
	echo, err := s.Ping()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("uncompensated %.2f m, at -5 °C %.2f m\n",
		sonar.Distance(echo, sonar.KernelSpeed), sonar.Distance(echo, sonar.SpeedOfSound(-5)))
	s.SetTarget(6)
	_, err = s.Ping()
	fmt.Println(errors.Is(err, sonar.ErrNoEcho))
	// Output:
	// uncompensated 1.57 m, at -5 °C 1.50 m
	// true
}
