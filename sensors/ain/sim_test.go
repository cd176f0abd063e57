package ain

import (
	"errors"
	"math"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var simEpoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestSimDeterministic(t *testing.T) {
	tests := []struct {
		name         string
		seedA, seedB uint64
		same         bool
	}{
		{name: "same seed, same clock", seedA: 7, seedB: 7, same: true},
		{name: "other seed", seedA: 7, seedB: 8, same: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca, cb := &clock{simEpoch}, &clock{simEpoch}
			a, b := NewSim(tt.seedA, ca.now), NewSim(tt.seedB, cb.now)
			differ := 0
			for step := range 600 {
				ca.t = simEpoch.Add(time.Duration(step) * 250 * time.Millisecond)
				cb.t = ca.t
				for in := range 8 {
					sa, err := a.Convert(Channel{Input: in})
					checkErr(t, err, "")
					sb, err := b.Convert(Channel{Input: in})
					checkErr(t, err, "")
					if sa != sb {
						differ++
					}
				}
			}
			if tt.same && differ != 0 {
				t.Errorf("%d of 4800 samples differ between two Sims with the same seed and clock", differ)
			}
			if !tt.same && differ < 4000 {
				t.Errorf("only %d of 4800 samples differ between seeds", differ)
			}
		})
	}
}

// TestSimRange runs the clock over an hour: every input stays within
// 0–3.3 V, drifts by tens of millivolts at least, never jumps, and
// changes within seconds, which the service's on-change publishing needs.
func TestSimRange(t *testing.T) {
	for _, seed := range []uint64{0, 1, 42, math.MaxUint64} {
		c := &clock{simEpoch}
		s := NewSim(seed, c.now)
		lo, hi := [8]float64{}, [8]float64{}
		prev := [8]Sample{}
		lastChange := [8]time.Time{}
		for step := range 3600 {
			c.t = simEpoch.Add(time.Duration(step) * time.Second)
			for in := range 8 {
				smp, err := s.Convert(Channel{Input: in})
				checkErr(t, err, "")
				if smp.Volts < 0 || smp.Volts > 3.3 || smp.Raw < 0 || smp.Raw > 4095 {
					t.Fatalf("seed %d input %d at %v: %+v outside 0–3.3 V", seed, in, c.t, smp)
				}
				if smp.Volts != float64(smp.Raw)*3.3/4096 {
					t.Fatalf("seed %d input %d: %+v: volts do not match the code", seed, in, smp)
				}
				if step == 0 {
					lo[in], hi[in], lastChange[in] = smp.Volts, smp.Volts, c.t
				} else {
					if d := math.Abs(smp.Volts - prev[in].Volts); d > 0.08 {
						t.Errorf("seed %d input %d jumped %.3f V in one second at %v", seed, in, d, c.t)
					}
					if smp.Raw != prev[in].Raw {
						lastChange[in] = c.t
					}
					if c.t.Sub(lastChange[in]) > 5*time.Second {
						t.Fatalf("seed %d input %d unchanged for 5 s at %v", seed, in, c.t)
					}
				}
				lo[in], hi[in] = min(lo[in], smp.Volts), max(hi[in], smp.Volts)
				prev[in] = smp
			}
		}
		levels := map[int64]bool{}
		for in := range 8 {
			if hi[in]-lo[in] < 0.05 {
				t.Errorf("seed %d input %d drifted only %.3f V in an hour", seed, in, hi[in]-lo[in])
			}
			levels[int64((lo[in]+hi[in])/2*10)] = true
		}
		if len(levels) < 3 {
			t.Errorf("seed %d: inputs sit at %d levels (100 mV bins), want them spread", seed, len(levels))
		}
	}
}

func TestSimPin(t *testing.T) {
	tests := []struct {
		name  string
		pins  map[int]float64
		ch    Channel
		raw   int64
		volts float64
	}{
		{name: "pinned input", pins: map[int]float64{3: 1.25}, ch: Channel{Input: 3}, raw: 1552, volts: 1552 * 3.3 / 4096},
		{name: "clamped above the reference", pins: map[int]float64{0: 5}, ch: Channel{Input: 0}, raw: 4095, volts: 4095 * 3.3 / 4096},
		{name: "clamped at ground", pins: map[int]float64{0: -1}, ch: Channel{Input: 0}, raw: 0, volts: 0},
		{name: "pair of pinned inputs", pins: map[int]float64{0: 2.0, 1: 2.5}, ch: Channel{Input: 0, Diff: true, Neg: 1}, raw: -621, volts: -621 * 3.3 / 4096},
		{name: "pair at negative full scale", pins: map[int]float64{4: 0, 5: 3.3}, ch: Channel{Input: 4, Diff: true, Neg: 5}, raw: -4096, volts: -3.3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{simEpoch}
			s, free := NewSim(1, c.now), NewSim(1, c.now)
			for in, v := range tt.pins {
				s.Pin(in, v)
			}
			for step := range 20 {
				c.t = simEpoch.Add(time.Duration(step) * 7 * time.Second)
				smp, err := s.Convert(tt.ch)
				checkErr(t, err, "")
				checkSample(t, smp, tt.raw, tt.volts)
				// Inputs not pinned still read what an unpinned Sim reads.
				for in := range 8 {
					if _, pinned := tt.pins[in]; pinned {
						continue
					}
					got, _ := s.Convert(Channel{Input: in})
					want, _ := free.Convert(Channel{Input: in})
					if got != want {
						t.Fatalf("input %d reads %+v next to pinned inputs, %+v alone", in, got, want)
					}
				}
			}
			for in := range tt.pins {
				s.Unpin(in)
			}
			got, _ := s.Convert(tt.ch)
			want, _ := free.Convert(tt.ch)
			if got != want {
				t.Errorf("after Unpin: %+v, want the drifting %+v", got, want)
			}
		})
	}
}

func TestSimErrors(t *testing.T) {
	s := NewSim(1, nil)
	if smp, err := s.Convert(Channel{Input: 5}); err != nil || smp.Volts < 0 || smp.Volts > 3.3 {
		t.Errorf("Convert on the wall clock = %+v, %v", smp, err)
	}
	for _, ch := range []Channel{{Input: 8}, {Range: 4.096}, {Rate: 128}, {Input: 1, Diff: true, Neg: 1}} {
		if _, err := s.Convert(ch); fieldOf(err) == "" {
			t.Errorf("Convert(%+v) = %v, want a field error", ch, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Convert(Channel{}); !errors.Is(err, errClosed) {
		t.Errorf("Convert after Close = %v, want errClosed", err)
	}
}
