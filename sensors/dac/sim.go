package dac

import (
	"fmt"
	"sync"
)

// Sim is a simulated DAC output: it keeps the last code written, and can
// tell a hook about every write, so that a simulated ain or sonar can
// follow it in the demo. It is safe for concurrent use.
type Sim struct {
	bits int

	// wmu orders writes and their hook calls, so the hook sees codes in
	// the order Value changes; mu guards the state, so the hook may call
	// Value.
	wmu    sync.Mutex
	mu     sync.Mutex
	value  int
	writes int
	hook   func(raw int)
	closed bool
}

var _ Output = (*Sim)(nil)

// NewSim returns a simulated output taking codes of bits bits (1..30),
// starting at 0 like an MCP4725 with a blank EEPROM.
func NewSim(bits int) *Sim { return &Sim{bits: bits} }

// String names the simulated chip, as errors do.
func (s *Sim) String() string { return fmt.Sprintf("sim %d-bit dac", s.bits) }

// Write records raw and calls the hook, if any, before returning. The
// hook must not write to the same Sim.
func (s *Sim) Write(raw int) error {
	if s.bits < 1 || s.bits > 30 {
		return fmt.Errorf("%v: %d bits: not a DAC resolution (1..30)", s, s.bits)
	}
	if err := checkRaw(s, raw, s.bits); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("%v: write: %w", s, errClosed)
	}
	s.value = raw
	s.writes++
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(raw)
	}
	return nil
}

// Value is the last code written, 0 before any.
func (s *Sim) Value() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.value
}

// Writes is how many writes succeeded, so a test can tell "wrote 0" from
// "never written".
func (s *Sim) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// OnWrite sets the function called with the code of every later write;
// nil removes it.
func (s *Sim) OnWrite(hook func(raw int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = hook
}

// Close refuses later writes; Value keeps the last code, as a real chip
// keeps its output.
func (s *Sim) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
