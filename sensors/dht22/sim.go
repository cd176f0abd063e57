package dht22

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Sim is a simulated DHT22 for tests and the demo. A reading is a pure
// function of the seed and the time: a daily temperature cycle (warmest
// mid-afternoon UTC) around a base the seed picks, a slow weather drift,
// and sensor noise; humidity falls as the air warms. Some seeds reach
// below 0 °C at night. Like the sensor behind the kernel's cache, it
// samples once per MinInterval window, so reads within one window agree.
type Sim struct {
	seed    uint64
	now     func() time.Time
	base    float64 // mean °C
	swing   float64 // half the daily range, °C
	peak    float64 // seconds after midnight UTC of the warmest moment
	humBase float64 // mean %RH

	mu     sync.Mutex
	fail   error
	closed bool
}

var _ Sensor = (*Sim)(nil)

// NewSim returns a simulated sensor; now nil is time.Now.
func NewSim(seed uint64, now func() time.Time) *Sim {
	if now == nil {
		now = time.Now
	}
	r := rand.New(rand.NewPCG(seed, 0x64687432))
	return &Sim{
		seed:    seed,
		now:     now,
		base:    2 + 20*r.Float64(),
		swing:   3 + 6*r.Float64(),
		peak:    (13 + 4*r.Float64()) * 3600,
		humBase: 40 + 30*r.Float64(),
	}
}

// Read implements Sensor.
func (s *Sim) Read() (Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Reading{}, errClosed
	}
	if s.fail != nil {
		return Reading{}, fmt.Errorf("dht22: sim: %w", s.fail)
	}
	return s.At(s.now()), nil
}

// At returns the reading the sensor gives at t, without the clock, for
// tests and plots.
func (s *Sim) At(t time.Time) Reading {
	window := floorDiv(t.Unix(), int64(MinInterval/time.Second))
	sec := float64(window * int64(MinInterval/time.Second))
	day := 2 * math.Pi * (math.Mod(sec, 86400) - s.peak) / 86400
	drift := s.smooth(0, sec/1800)
	c := s.base + s.swing*math.Cos(day) + 1.5*drift + 0.1*s.normal(1, window)
	h := s.humBase - 2.5*(c-s.base) + 5*s.smooth(2, sec/1800) + 0.3*s.normal(3, window)
	return Reading{
		Celsius:  math.Round(c*10) / 10,
		Humidity: math.Round(min(max(h, 1), 99.9)*10) / 10,
	}
}

// Fail makes every Read return err (wrapped) until Fail(nil), to test how
// callers handle syscall.EIO, syscall.ETIMEDOUT and the like.
func (s *Sim) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// Close implements Sensor.
func (s *Sim) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// uniform returns a number in [-1, 1) fixed by the seed, a stream and i.
func (s *Sim) uniform(stream uint64, i int64) float64 {
	return 2*rand.New(rand.NewPCG(s.seed^stream<<56, uint64(i))).Float64() - 1
}

func (s *Sim) normal(stream uint64, i int64) float64 {
	return rand.New(rand.NewPCG(s.seed^stream<<56, uint64(i))).NormFloat64()
}

// smooth is value noise: uniform at integers, eased in between, so it
// drifts instead of jumping.
func (s *Sim) smooth(stream uint64, x float64) float64 {
	i := math.Floor(x)
	f := x - i
	f = f * f * (3 - 2*f)
	a, b := s.uniform(stream, int64(i)), s.uniform(stream, int64(i)+1)
	return a + (b-a)*f
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
