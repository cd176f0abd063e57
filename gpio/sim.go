package gpio

import (
	"errors"
	"fmt"
	"sync"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
)

// Sim is an in-memory board: outputs hold their level, inputs get edges
// from Drive or from an output wired to them. It is the "sim" driver,
// used by tests and the demo.
type Sim struct {
	mu    sync.Mutex
	pins  map[int]*simPin
	wires map[int][]int // output pin -> input pins
	level map[int]pgpio.Level
}

type simPin struct {
	mode     string // "output", "input", "pwm"
	duty     pgpio.Duty
	period   time.Duration
	inverted bool
	in       *simInput
}

var _ Driver = (*Sim)(nil)

// NewSim returns a board with wiring.
func NewSim(wiring ...Wire) *Sim {
	s := &Sim{pins: map[int]*simPin{}, level: map[int]pgpio.Level{}}
	s.SetWiring(wiring)
	return s
}

// Name implements Driver.
func (s *Sim) Name() string { return DriverSim }

// SetWiring replaces the wiring: driving output pin From drives input pin
// To to the same level.
func (s *Sim) SetWiring(wiring []Wire) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wires = map[int][]int{}
	for _, w := range wiring {
		s.wires[w.From] = append(s.wires[w.From], w.To)
	}
}

// Drive sets the level on pin from outside, as a button or a sensor
// would; an input open on it sees an edge when the level changes.
func (s *Sim) Drive(pin int, l pgpio.Level) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLocked(pin, l)
}

func (s *Sim) setLocked(pin int, l pgpio.Level) {
	old, known := s.level[pin]
	s.level[pin] = l
	if p := s.pins[pin]; p != nil && p.in != nil && (!known || old != l) {
		p.in.edge(l)
	}
}

// Level returns the level on pin and whether anything set it.
func (s *Sim) Level(pin int) (pgpio.Level, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.level[pin]
	return l, ok
}

// PWMState returns the duty and period of a PWM pin.
func (s *Sim) PWMState(pin int) (duty pgpio.Duty, period time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pins[pin]
	if p == nil || p.mode != "pwm" {
		return 0, 0, false
	}
	return p.duty, p.period, true
}

// Mode returns how pin is open ("output", "input", "pwm"), or "".
func (s *Sim) Mode(pin int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pins[pin]; p != nil {
		return p.mode
	}
	return ""
}

func (s *Sim) open(pin int, p *simPin) error {
	if pin < 0 || pin >= 28 {
		return fmt.Errorf("sim: GPIO %d is not on the header", pin)
	}
	if _, busy := s.pins[pin]; busy {
		return fmt.Errorf("sim: GPIO %d is already open", pin)
	}
	s.pins[pin] = p
	return nil
}

// Output implements Driver.
func (s *Sim) Output(pin int, l pgpio.Level) (OutputLine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := &simPin{mode: "output"}
	if err := s.open(pin, sp); err != nil {
		return nil, err
	}
	o := &simOutput{s: s, pin: pin, sp: sp}
	o.outLocked(l)
	return o, nil
}

// Input implements Driver.
func (s *Sim) Input(pin int, pull pgpio.Pull) (InputLine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := &simInput{s: s, pin: pin, edges: make(chan pgpio.Level, 1024), halt: make(chan struct{})}
	in.sp = &simPin{mode: "input", in: in}
	if err := s.open(pin, in.sp); err != nil {
		return nil, err
	}
	l, known := s.level[pin]
	if !known {
		l = pull == pgpio.PullUp
		s.level[pin] = l
	}
	in.level = l
	return in, nil
}

// PWM implements Driver.
func (s *Sim) PWM(pin int, duty pgpio.Duty, period time.Duration, inverted bool) (PWMLine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := &simPin{mode: "pwm", duty: duty, period: period, inverted: inverted}
	if err := s.open(pin, sp); err != nil {
		return nil, err
	}
	return &simPWM{s: s, pin: pin, sp: sp}, nil
}

// Close implements Driver.
func (s *Sim) Close() error { return nil }

// closePin forgets pin if it is still open as p.
func (s *Sim) closePin(pin int, p *simPin) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pins[pin] == p {
		delete(s.pins, pin)
	}
}

type simOutput struct {
	s      *Sim
	pin    int
	sp     *simPin
	closed bool
}

func (o *simOutput) Out(l pgpio.Level) error {
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	if o.closed {
		return errors.New("sim: line closed")
	}
	o.outLocked(l)
	return nil
}

func (o *simOutput) outLocked(l pgpio.Level) {
	o.s.setLocked(o.pin, l)
	for _, to := range o.s.wires[o.pin] {
		o.s.setLocked(to, l)
	}
}

func (o *simOutput) Close() error {
	o.s.mu.Lock()
	o.closed = true
	o.s.mu.Unlock()
	o.s.closePin(o.pin, o.sp)
	return nil
}

type simInput struct {
	s     *Sim
	pin   int
	sp    *simPin
	edges chan pgpio.Level
	halt  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	level pgpio.Level // as seen by the reader: the level of the last edge taken
}

// edge queues an edge; called with s.mu held. A full queue drops the
// edge, as a kernel event buffer overflows.
func (in *simInput) edge(l pgpio.Level) {
	select {
	case in.edges <- l:
	default:
	}
}

func (in *simInput) WaitForEdge(timeout time.Duration) bool {
	take := func(l pgpio.Level) bool {
		in.mu.Lock()
		in.level = l
		in.mu.Unlock()
		return true
	}
	select {
	case l := <-in.edges:
		return take(l)
	case <-in.halt:
		return false
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l := <-in.edges:
		return take(l)
	case <-in.halt:
		return false
	case <-t.C:
		return false
	}
}

func (in *simInput) Read() pgpio.Level {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.level
}

func (in *simInput) Halt() error {
	in.once.Do(func() { close(in.halt) })
	return nil
}

func (in *simInput) Close() error {
	_ = in.Halt()
	in.s.closePin(in.pin, in.sp)
	return nil
}

type simPWM struct {
	s   *Sim
	pin int
	sp  *simPin
}

func (p *simPWM) Set(duty pgpio.Duty, period time.Duration) error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	sp := p.sp
	if p.s.pins[p.pin] != sp {
		return errors.New("sim: line closed")
	}
	sp.duty = duty
	if period > 0 {
		sp.period = period
	}
	return nil
}

func (p *simPWM) Close() error {
	p.s.closePin(p.pin, p.sp)
	return nil
}
