package ain

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Sim is a simulated 8-input, 12-bit ADC with a 3.3 V reference, for the
// demo and for tests. Every input drifts slowly around its own level (two
// sine waves with periods of 4–12 and 1–3 minutes) with a few
// millivolts of noise that changes every 100 ms, always within 0–3.3 V;
// no input moves faster than about 70 mV/s.
// What an input reads is a function of the seed, the input and the
// clock's time only, so two Sims with the same seed and clock agree, and
// a test that steps its clock knows what it gets.
type Sim struct {
	seed uint64
	now  func() time.Time
	chip Chip

	mu     sync.Mutex
	pinned map[int]float64
	closed bool
}

var _ Converter = (*Sim)(nil)

const (
	simBits  = 12
	simVRef  = 3.3
	simNoise = 0.003                  // volts, peak
	simStep  = 100 * time.Millisecond // how long one noise value holds
)

// NewSim returns a simulated ADC; now is its clock, nil for time.Now.
func NewSim(seed uint64, now func() time.Time) *Sim {
	if now == nil {
		now = time.Now
	}
	chip, _ := LookupChip(ChipSim)
	return &Sim{seed: seed, now: now, chip: chip, pinned: map[int]float64{}}
}

// Chip describes the simulated ADC.
func (s *Sim) Chip() Chip { return s.chip }

// Pin holds input at volts (clamped to 0–3.3 V) until Unpin, as a fixed
// voltage wired to it would. Conversions still quantize it to 12 bits, so
// Volts comes back within 0.8 mV of it.
func (s *Sim) Pin(input int, volts float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pinned[input] = min(max(volts, 0), simVRef)
}

// Unpin lets input drift again.
func (s *Sim) Unpin(input int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pinned, input)
}

// Convert returns the input's voltage now, quantized: Raw is
// round(volts × 4096 / 3.3), 0–4095, or −4096–4095 for a pair, whose
// voltage is the difference of its inputs.
func (s *Sim) Convert(ch Channel) (Sample, error) {
	if err := s.chip.Check(ch); err != nil {
		return Sample{}, err
	}
	t := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Sample{}, fmt.Errorf("sim: %w", errClosed)
	}
	v := s.volts(ch.Input, t)
	lo := 0.0
	if ch.Diff {
		v -= s.volts(ch.Neg, t)
		lo = -1 << simBits
	}
	raw := min(max(math.Round(v*(1<<simBits)/simVRef), lo), 1<<simBits-1)
	return Sample{Raw: int64(raw), Volts: raw * simVRef / (1 << simBits)}, nil
}

// volts is what input reads at t; s.mu is held.
func (s *Sim) volts(input int, t time.Time) float64 {
	if v, ok := s.pinned[input]; ok {
		return v
	}
	h := mix(s.seed ^ mix(uint64(input)+1))
	var u [6]float64
	for i := range u {
		h = mix(h)
		u[i] = unit(h)
	}
	center := 0.4 + 2.5*u[0]                                       // 0.4–2.9 V
	amp := (min(center, simVRef-center) - 0.05) * (0.3 + 0.7*u[1]) // stays inside the rails
	slow := 240 + 480*u[2]                                         // 4–12 min
	fast := 60 + 120*u[3]                                          // 1–3 min
	sec := float64(t.UnixNano()) / 1e9
	v := center + amp*(0.8*math.Sin(2*math.Pi*(sec/slow+u[4]))+0.2*math.Sin(2*math.Pi*(sec/fast+u[5])))
	step := uint64(t.UnixNano() / int64(simStep))
	v += simNoise * (2*unit(mix(h^step)) - 1)
	return min(max(v, 0), simVRef)
}

// mix is SplitMix64's finalizer: a cheap hash whose outputs look
// independent for neighbouring inputs, which is all the simulation needs
// to be random yet reproducible.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// unit maps a hash to [0, 1).
func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }

// Close makes later conversions fail, as on a real converter.
func (s *Sim) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
