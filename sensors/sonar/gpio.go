package sonar

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// MinTrigger is the shortest trigger pulse the HC-SR04 answers
// (datasheet: 10 µs).
const MinTrigger = 10 * time.Microsecond

const (
	// riseTimeout bounds the wait for ECHO to rise after the trigger; the
	// module raises it after its 200 µs burst, and the kernel's srf04
	// driver also gives up after 20 ms.
	riseTimeout = 20 * time.Millisecond
	// busyTimeout bounds the wait for ECHO to fall before a trigger:
	// some clones hold a no-target pulse far longer than 38 ms.
	busyTimeout = 250 * time.Millisecond
	// drainWait is how long each wait for a stale edge lasts before a
	// trigger. It must be well above zero: gpioioctl's WaitForEdge sets
	// a read deadline of now+timeout, and a deadline already past when
	// the read starts loses even an edge that is queued (measured: 1 ns
	// and negative timeouts return false with an event waiting).
	drainWait = time.Millisecond
	// maxStale bounds the draining, so a line that chatters is reported
	// instead of spinning.
	maxStale = 16
)

// GPIOOptions configures NewGPIO. The zero value suits an HC-SR04.
type GPIOOptions struct {
	// TriggerWidth is the high time of the trigger pulse; 0 is
	// MinTrigger, less is an error. The pulse is at least this long: it
	// also lasts the time the second Out takes.
	TriggerWidth time.Duration
	// MaxEcho is the longest round trip taken as an echo; 0 is MaxEcho.
	MaxEcho time.Duration
	// Now and Sleep are the clock; nil is time.Now and time.Sleep. Tests
	// give a virtual one.
	Now   func() time.Time
	Sleep func(time.Duration)
}

// GPIO pings an HC-SR04 on two GPIOs through periph: a trigger pulse on
// trig, then the time between ECHO's rising and falling edges on echo.
//
// Both edges come from the kernel's edge events (gpioioctl), which queue,
// so none is lost while Ping is busy; but periph's WaitForEdge returns a
// bool and drops the event's timestamp, so each edge is timed when its
// wait returns. Scheduling delay before the two returns cancels when it
// is the same and shows as error when it is not: 58 µs is 1 cm. On a
// busy Pi Zero expect a few centimetres of jitter; the iio driver, which
// timestamps edges in the interrupt handler, does better.
type GPIO struct {
	trig    gpio.PinOut
	echo    gpio.PinIn
	width   time.Duration
	maxEcho time.Duration
	now     func() time.Time
	sleep   func(time.Duration)
	release func() error // set by Open, which acquired the pins

	mu     sync.Mutex
	pace   pacer
	closed bool
}

var _ Ranger = (*GPIO)(nil)

// NewGPIO returns a ranger with its trigger on trig and its echo, through
// a 5 V to 3.3 V divider, on echo. It drives trig low and sets echo as an
// input with pull-down and edge detection on both edges.
func NewGPIO(trig gpio.PinOut, echo gpio.PinIn, opts GPIOOptions) (*GPIO, error) {
	if trig == nil || echo == nil {
		return nil, errors.New("sonar: NewGPIO needs a trigger and an echo pin")
	}
	g := &GPIO{
		trig:    trig,
		echo:    echo,
		width:   opts.TriggerWidth,
		maxEcho: opts.MaxEcho,
		now:     opts.Now,
		sleep:   opts.Sleep,
		release: func() error { return nil },
	}
	if g.width == 0 {
		g.width = MinTrigger
	}
	if g.width < MinTrigger {
		return nil, fmt.Errorf("sonar: trigger pulse %v is shorter than the HC-SR04's %v", g.width, MinTrigger)
	}
	if g.maxEcho <= 0 {
		g.maxEcho = MaxEcho
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.sleep == nil {
		g.sleep = time.Sleep
	}
	g.pace = pacer{now: g.now, sleep: g.sleep}
	if err := trig.Out(gpio.Low); err != nil {
		return nil, fmt.Errorf("sonar: trigger %s: %w", trig.Name(), err)
	}
	if err := echo.In(gpio.PullDown, gpio.BothEdges); err != nil {
		return nil, fmt.Errorf("sonar: echo %s: edge detection: %w", echo.Name(), err)
	}
	return g, nil
}

// Ping implements Ranger.
func (g *GPIO) Ping() (time.Duration, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errClosed
	}
	g.pace.wait()
	if err := g.ready(); err != nil {
		return 0, err
	}
	if err := g.trig.Out(gpio.High); err != nil {
		return 0, fmt.Errorf("sonar: trigger %s: %w", g.trig.Name(), err)
	}
	g.sleep(g.width)
	if err := g.trig.Out(gpio.Low); err != nil {
		return 0, fmt.Errorf("sonar: trigger %s: %w", g.trig.Name(), err)
	}
	if !g.echo.WaitForEdge(riseTimeout) {
		return 0, fmt.Errorf("sonar: echo %s did not rise within %v of the trigger on %s: check the 5 V supply, ground, the TRIG and ECHO wires and the divider", g.echo.Name(), riseTimeout, g.trig.Name())
	}
	start := g.now()
	if !g.echo.WaitForEdge(g.maxEcho) {
		return 0, fmt.Errorf("sonar: echo %s high for over %v: %w", g.echo.Name(), g.maxEcho, ErrNoEcho)
	}
	echo := g.now().Sub(start)
	if echo > g.maxEcho {
		return 0, fmt.Errorf("sonar: echo %s high for %v: %w", g.echo.Name(), echo, ErrNoEcho)
	}
	return echo, nil
}

// ready consumes edges left from an earlier ping, which the next waits
// would otherwise take for this one's, and waits for ECHO to be low: the
// module ignores a trigger while its previous pulse lasts.
func (g *GPIO) ready() error {
	for i := 0; g.echo.WaitForEdge(drainWait); i++ {
		if i == maxStale {
			return fmt.Errorf("sonar: echo %s keeps changing with no trigger: check the ECHO wire and the divider's ground", g.echo.Name())
		}
	}
	if g.echo.Read() == gpio.Low {
		return nil
	}
	if g.echo.WaitForEdge(busyTimeout) && g.echo.Read() == gpio.Low {
		return nil
	}
	return fmt.Errorf("sonar: echo %s stays high with no trigger: check the divider (ECHO to GPIO through 1 kΩ, GPIO to ground through 2 kΩ) and the module's ground", g.echo.Name())
}

// Close implements Ranger: it leaves the trigger low and, for pins Open
// acquired, releases them.
func (g *GPIO) Close() error {
	// Interrupts a Ping waiting for an edge, on drivers that can.
	_ = g.echo.Halt()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	var err error
	if oerr := g.trig.Out(gpio.Low); oerr != nil {
		err = fmt.Errorf("sonar: trigger %s: %w", g.trig.Name(), oerr)
	}
	return errors.Join(err, g.release())
}
