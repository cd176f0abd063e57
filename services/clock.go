package services

import "time"

// A Clock gives services and discovery their time: debounce, pulses,
// scans, the failsafe delay, a sweep's retransmissions all run on it, so
// that tests drive them with servicestest.Clock instead of sleeping.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed, unless
	// the Timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
}

// A Timer is a pending AfterFunc; *time.Timer is one.
type Timer interface {
	Stop() bool
}

// RealClock is the system's clock.
type RealClock struct{}

// Now implements Clock.
func (RealClock) Now() time.Time { return time.Now() }

// AfterFunc implements Clock.
func (RealClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// After returns a channel that receives once d has passed on c, and a
// function that stops it; the channel is never closed.
func After(c Clock, d time.Duration) (<-chan time.Time, func() bool) {
	ch := make(chan time.Time, 1)
	t := c.AfterFunc(d, func() { ch <- c.Now() })
	return ch, t.Stop
}
