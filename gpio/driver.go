package gpio

import (
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
)

// Driver names, as in Config.Driver.
const (
	DriverPeriph = "periph"
	DriverSim    = "sim"
)

// A Driver opens GPIO lines by BCM number. Levels are physical: the
// service applies active_low itself. A line is opened once per
// configuration and closed before its pin is opened again.
type Driver interface {
	Name() string
	// Output requests pin as an output driven to level.
	Output(pin int, level pgpio.Level) (OutputLine, error)
	// Input requests pin as an input with pull, reporting both edges.
	Input(pin int, pull pgpio.Pull) (InputLine, error)
	// PWM requests pin as a PWM output. period is the whole cycle;
	// inverted makes duty the low time.
	PWM(pin int, duty pgpio.Duty, period time.Duration, inverted bool) (PWMLine, error)
	// Close releases whatever the driver holds.
	Close() error
}

// An OutputLine drives one output. The driver never reads an output
// back: the service remembers the level it set.
type OutputLine interface {
	Out(l pgpio.Level) error
	Close() error
}

// An InputLine is one input with edge detection.
type InputLine interface {
	// WaitForEdge blocks until an edge, timeout, or Halt; it reports
	// whether an edge happened.
	WaitForEdge(timeout time.Duration) bool
	Read() pgpio.Level
	// Halt interrupts a WaitForEdge in progress (and all later ones).
	Halt() error
	Close() error
}

// A PWMLine drives one PWM output.
type PWMLine interface {
	// Set changes duty and, when period > 0, the period.
	Set(duty pgpio.Duty, period time.Duration) error
	Close() error
}

// dutyOf converts a percentage to periph's Duty.
func dutyOf(percent float64) pgpio.Duty {
	return pgpio.Duty(percent/100*float64(pgpio.DutyMax) + 0.5)
}

func periodOf(us int) time.Duration {
	if us == 0 {
		us = DefaultPeriod
	}
	return time.Duration(us) * time.Microsecond
}
