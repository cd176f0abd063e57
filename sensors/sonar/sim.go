package sonar

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// MinRange is the HC-SR04's closest measurable distance in metres; the
// simulator echoes nearer targets as if they were this far.
const MinRange = 0.02

// simNoise is the spread of the simulator's round trips: 10 µs, under
// 2 mm, the datasheet's 3 mm resolution.
const simNoise = 10 * time.Microsecond

// Sim is a simulated HC-SR04 for tests and the demo. Until SetTarget or
// Follow, its target walks back and forth between 0.3 and 2.7 m over 90 s, from a
// starting point the seed picks; echoes travel at the speed of sound of
// the air temperature set with SetCelsius (20 °C at first), with noise,
// and nothing beyond MaxRange echoes. Replies depend only on the seed and
// the sequence of times now returns. It does not wait out MinGap.
type Sim struct {
	now   func() time.Time
	phase float64

	mu      sync.Mutex
	rng     *rand.Rand
	target  float64 // metres; NaN: the moving target
	wander  float64 // metres either side of target (Follow)
	celsius float64
	fail    error
	closed  bool
}

// wanderPeriod is how long a followed target takes to wander there and
// back.
const wanderPeriod = 40 * time.Second

var _ Ranger = (*Sim)(nil)

// NewSim returns a simulated ranger; now nil is time.Now.
func NewSim(seed uint64, now func() time.Time) *Sim {
	if now == nil {
		now = time.Now
	}
	rng := rand.New(rand.NewPCG(seed, 0x736f6e6172))
	return &Sim{
		now:     now,
		phase:   2 * math.Pi * rng.Float64(),
		rng:     rng,
		target:  math.NaN(),
		celsius: 20,
	}
}

// SetTarget puts the target at a fixed distance in metres; beyond
// MaxRange (math.Inf(1) for none at all) nothing echoes.
func (s *Sim) SetTarget(metres float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.target, s.wander = metres, 0
}

// Follow places the target around metres, where it wanders 2 cm either
// way over 40 s as something held by hand would: a demo that moves it
// from an output's value still shows a live distance, and a deadband at
// work. SetTarget places it exactly.
func (s *Sim) Follow(metres float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.target, s.wander = metres, 0.02
}

// Fail makes every Ping return err (wrapped) until Fail(nil), to test how
// callers handle a ranger whose wiring broke.
func (s *Sim) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// SetCelsius sets the air temperature the sound travels through, so that
// a demo can show a dht22's reading correcting the distance.
func (s *Sim) SetCelsius(celsius float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.celsius = celsius
}

// Target returns the true distance of the target now, in metres.
func (s *Sim) Target() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.targetAt(s.now())
}

func (s *Sim) targetAt(t time.Time) float64 {
	if !math.IsNaN(s.target) {
		if s.wander == 0 {
			return s.target
		}
		sec := float64(t.UnixNano()%int64(wanderPeriod)) / float64(time.Second)
		return s.target + s.wander*math.Sin(2*math.Pi*sec/wanderPeriod.Seconds()+s.phase)
	}
	sec := float64(t.UnixNano()%(90*int64(time.Second))) / float64(time.Second)
	return 1.5 + 1.2*math.Sin(2*math.Pi*sec/90+s.phase)
}

// Ping implements Ranger.
func (s *Sim) Ping() (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	if s.fail != nil {
		return 0, fmt.Errorf("sonar: sim: %w", s.fail)
	}
	d := s.targetAt(s.now())
	noise := time.Duration(s.rng.NormFloat64() * float64(simNoise))
	if d > MaxRange || math.IsNaN(d) {
		return 0, fmt.Errorf("sonar: sim: target at %.2f m: %w", d, ErrNoEcho)
	}
	echo := echoFor(max(d, MinRange), SpeedOfSound(s.celsius)) + noise
	return max(echo, 0), nil
}

// Close implements Ranger.
func (s *Sim) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
