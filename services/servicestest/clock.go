package servicestest

import (
	"slices"
	"sync"
	"time"

	"github.com/rollcall/rollcall/services"
)

// Clock is a services.Clock whose timers run when the test advances it,
// synchronously and in order of their due time, so a test knows that
// everything due has run when Advance returns.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
}

var _ services.Clock = (*Clock)(nil)

type timer struct {
	c    *Clock
	at   time.Time
	f    func()
	done bool
}

// NewClock returns a clock at a fixed time.
func NewClock() *Clock { return &Clock{now: time.Unix(1_700_000_000, 0)} }

// Now implements services.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc implements services.Clock.
func (c *Clock) AfterFunc(d time.Duration, f func()) services.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// Pending reports how many timers are waiting.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.done {
			n++
		}
	}
	return n
}

// Advance moves time on and runs every timer due, in order.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*timer
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.done:
		case !t.at.After(c.now):
			t.done = true
			due = append(due, t)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *timer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.f()
	}
}
