package gpio

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpioutil"
	"periph.io/x/conn/v3/physic"
	phost "periph.io/x/host/v3"
)

// PeriphOptions configures the periph driver.
type PeriphOptions struct {
	// Lookup finds a pin by its periph name, "GPIO<n>". nil runs
	// host.Init and uses gpioreg.ByName; tests pass gpiotest pins.
	Lookup func(name string) pgpio.PinIO
	// PWMRoot is the kernel's sysfs PWM class directory; "" is
	// /sys/class/pwm. Tests point it at a tree under testdata or t.TempDir.
	PWMRoot string
	// PWMChannels maps hardware PWM pins to a sysfs chip and channel. nil
	// is the Pi 0–4 map: 12 and 18 are pwmchip0/pwm0, 13 and 19 pwmchip0/pwm1
	// (dtoverlay=pwm-2chan). A pin whose chip is missing falls back to
	// software PWM.
	PWMChannels map[int]PWMChannel
	// EdgeWait bounds each WaitForEdge call, so a pin whose Halt cannot
	// interrupt a wait (gpiotest) still closes; "0" is 500ms.
	EdgeWait time.Duration
	// PollRate is the polling rate for inputs whose driver cannot report
	// edges; 0 is 50 Hz.
	PollRate physic.Frequency
	Logger   *slog.Logger
}

// PWMChannel is one channel of a sysfs PWM chip.
type PWMChannel struct {
	Chip    string // "pwmchip0"
	Channel int
}

var defaultPWMChannels = map[int]PWMChannel{
	12: {"pwmchip0", 0}, 18: {"pwmchip0", 0},
	13: {"pwmchip0", 1}, 19: {"pwmchip0", 1},
}

// Periph drives real pins through periph.io. On a Pi with host v3.8.5 the
// lines are gpioioctl character-device lines (or bcm283x pins backed by
// them): Out and In request the line with its bias, and input edges come
// from the kernel through WaitForEdge. Outputs are never Read: on
// gpioioctl Read silently turns an output into an input. gpioioctl has
// no PWM, so PWM uses the kernel's sysfs PWM on pins that have it and
// software PWM elsewhere (see softPWM for its limits).
type Periph struct {
	lookup   func(string) pgpio.PinIO
	root     string
	channels map[int]PWMChannel
	wait     time.Duration
	poll     physic.Frequency
	log      *slog.Logger

	mu   sync.Mutex
	used map[PWMChannel]int // channel -> pin using it
}

var _ Driver = (*Periph)(nil)

// NewPeriph returns the periph driver. Without opts.Lookup it initializes
// periph's host drivers.
func NewPeriph(opts PeriphOptions) (*Periph, error) {
	d := &Periph{
		lookup:   opts.Lookup,
		root:     opts.PWMRoot,
		channels: opts.PWMChannels,
		wait:     opts.EdgeWait,
		poll:     opts.PollRate,
		log:      opts.Logger,
		used:     map[PWMChannel]int{},
	}
	if d.lookup == nil {
		if _, err := phost.Init(); err != nil {
			return nil, fmt.Errorf("periph: host init: %w", err)
		}
		d.lookup = gpioreg.ByName
	}
	if d.root == "" {
		d.root = "/sys/class/pwm"
	}
	if d.channels == nil {
		d.channels = defaultPWMChannels
	}
	if d.wait <= 0 {
		d.wait = 500 * time.Millisecond
	}
	if d.poll <= 0 {
		d.poll = 50 * physic.Hertz
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return d, nil
}

// Name implements Driver.
func (d *Periph) Name() string { return DriverPeriph }

// Close implements Driver.
func (d *Periph) Close() error { return nil }

func (d *Periph) pin(n int) (pgpio.PinIO, error) {
	p := d.lookup("GPIO" + strconv.Itoa(n))
	if p == nil {
		return nil, fmt.Errorf("periph: GPIO%d not found (no such gpiochip line; is this a Raspberry Pi?)", n)
	}
	return p, nil
}

// release halts p and, when it is a character-device line, gives the line
// back to the kernel.
func release(p pgpio.PinIO) error {
	err := p.Halt()
	switch c := p.(type) {
	case interface{ Close() }:
		c.Close()
	case interface{ Close() error }:
		err = errors.Join(err, c.Close())
	}
	return err
}

// Output implements Driver.
func (d *Periph) Output(n int, l pgpio.Level) (OutputLine, error) {
	p, err := d.pin(n)
	if err != nil {
		return nil, err
	}
	if err := p.Out(l); err != nil {
		return nil, fmt.Errorf("periph: GPIO%d out: %w", n, err)
	}
	return &periphOut{p: p}, nil
}

type periphOut struct{ p pgpio.PinIO }

func (o *periphOut) Out(l pgpio.Level) error { return o.p.Out(l) }
func (o *periphOut) Close() error            { return release(o.p) }

// Input implements Driver. A pin that cannot report edges is polled at
// PollRate instead.
func (d *Periph) Input(n int, pull pgpio.Pull) (InputLine, error) {
	p, err := d.pin(n)
	if err != nil {
		return nil, err
	}
	if err := p.In(pull, pgpio.BothEdges); err != nil {
		d.log.Warn("no edge detection, polling", "pin", n, "rate", d.poll, "err", err)
		polled := gpioutil.PollEdge(p, d.poll)
		if err2 := polled.In(pull, pgpio.BothEdges); err2 != nil {
			return nil, fmt.Errorf("periph: GPIO%d in: %w", n, errors.Join(err, err2))
		}
		return &periphIn{p: polled, real: p, wait: d.wait}, nil
	}
	return &periphIn{p: p, real: p, wait: d.wait}, nil
}

type periphIn struct {
	p, real pgpio.PinIO
	wait    time.Duration
}

// WaitForEdge never passes a timeout of 0 or less down: gpioioctl reads 0
// as "forever" and periph's interface reads -1 so.
func (in *periphIn) WaitForEdge(timeout time.Duration) bool {
	if timeout <= 0 || timeout > in.wait {
		timeout = in.wait
	}
	return in.p.WaitForEdge(timeout)
}
func (in *periphIn) Read() pgpio.Level { return in.p.Read() }
func (in *periphIn) Halt() error       { return in.p.Halt() }
func (in *periphIn) Close() error {
	err := in.p.Halt()
	return errors.Join(err, release(in.real))
}

// PWM implements Driver: sysfs PWM where the pin has a hardware channel
// whose chip exists, software PWM elsewhere.
func (d *Periph) PWM(n int, duty pgpio.Duty, period time.Duration, inverted bool) (PWMLine, error) {
	if ch, ok := d.channels[n]; ok {
		chip := filepath.Join(d.root, ch.Chip)
		if _, err := os.Stat(chip); err == nil {
			d.mu.Lock()
			if other, busy := d.used[ch]; busy {
				d.mu.Unlock()
				return nil, fmt.Errorf("periph: GPIO%d: %s channel %d is already driven by GPIO%d", n, ch.Chip, ch.Channel, other)
			}
			d.used[ch] = n
			d.mu.Unlock()
			l, err := openSysfsPWM(chip, ch.Channel, duty, period, inverted)
			if err != nil {
				d.mu.Lock()
				delete(d.used, ch)
				d.mu.Unlock()
				return nil, fmt.Errorf("periph: GPIO%d: %w", n, err)
			}
			l.release = func() {
				d.mu.Lock()
				delete(d.used, ch)
				d.mu.Unlock()
			}
			return l, nil
		}
		d.log.Warn("no sysfs PWM chip, using software PWM", "pin", n, "chip", chip)
	}
	if period < MinSoftPeriod*time.Microsecond {
		return nil, fmt.Errorf("periph: GPIO%d: software PWM needs a period of at least %dµs", n, MinSoftPeriod)
	}
	p, err := d.pin(n)
	if err != nil {
		return nil, err
	}
	if err := p.Out(pgpio.Level(inverted)); err != nil {
		return nil, fmt.Errorf("periph: GPIO%d out: %w", n, err)
	}
	return newSoftPWM(p, duty, period, inverted), nil
}

// sysfsPWM is one channel of a kernel PWM chip:
// <root>/pwmchipN/{export,unexport,pwmM/{period,duty_cycle,polarity,enable}},
// times in nanoseconds.
type sysfsPWM struct {
	chip    string
	dir     string
	ch      int
	period  time.Duration
	release func()
}

func openSysfsPWM(chip string, ch int, duty pgpio.Duty, period time.Duration, inverted bool) (*sysfsPWM, error) {
	p := &sysfsPWM{chip: chip, ch: ch, dir: filepath.Join(chip, "pwm"+strconv.Itoa(ch))}
	if _, err := os.Stat(p.dir); err != nil {
		if err := writeSysfs(filepath.Join(chip, "export"), strconv.Itoa(ch)); err != nil {
			return nil, fmt.Errorf("sysfs pwm export: %w", err)
		}
		// The kernel creates the directory at once, but udev may take a
		// moment to make it writable for the gpio group.
		deadline := time.Now().Add(time.Second)
		for {
			if err := writeSysfs(filepath.Join(p.dir, "enable"), "0"); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	_ = writeSysfs(filepath.Join(p.dir, "enable"), "0")
	pol := "normal"
	if inverted {
		pol = "inversed"
	}
	if err := writeSysfs(filepath.Join(p.dir, "polarity"), pol); err != nil {
		return nil, fmt.Errorf("sysfs pwm polarity: %w", err)
	}
	if err := p.Set(duty, period); err != nil {
		return nil, err
	}
	if err := writeSysfs(filepath.Join(p.dir, "enable"), "1"); err != nil {
		return nil, fmt.Errorf("sysfs pwm enable: %w", err)
	}
	return p, nil
}

// Set writes the period before a larger duty and after a smaller one: the
// kernel refuses a duty_cycle longer than the period.
func (p *sysfsPWM) Set(duty pgpio.Duty, period time.Duration) error {
	if period > 0 && period != p.period {
		if err := writeSysfs(filepath.Join(p.dir, "duty_cycle"), "0"); err != nil {
			return fmt.Errorf("sysfs pwm duty_cycle: %w", err)
		}
		if err := writeSysfs(filepath.Join(p.dir, "period"), strconv.FormatInt(period.Nanoseconds(), 10)); err != nil {
			return fmt.Errorf("sysfs pwm period: %w", err)
		}
		p.period = period
	}
	ns := (p.period.Nanoseconds()*int64(duty) + int64(pgpio.DutyMax)/2) / int64(pgpio.DutyMax)
	if err := writeSysfs(filepath.Join(p.dir, "duty_cycle"), strconv.FormatInt(ns, 10)); err != nil {
		return fmt.Errorf("sysfs pwm duty_cycle: %w", err)
	}
	return nil
}

func (p *sysfsPWM) Close() error {
	err := writeSysfs(filepath.Join(p.dir, "enable"), "0")
	if e := writeSysfs(filepath.Join(p.chip, "unexport"), strconv.Itoa(p.ch)); e != nil {
		err = errors.Join(err, e)
	}
	if p.release != nil {
		p.release()
	}
	return err
}

func writeSysfs(path, v string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v)
	return errors.Join(err, f.Close())
}

// softPWM toggles an output from a goroutine. Its limits, on a Pi Zero
// especially: a period of at least 1 ms (MinSoftPeriod); edges jitter by
// tens to hundreds of microseconds with the Go scheduler and the kernel's
// timer slack, more under load, so duty resolution is a few percent at
// 1 kHz; two wake-ups per period cost CPU (about 2,000 a second at 1 kHz).
// Fine for dimming an LED or a slow heater; not for servos, which need
// microsecond pulses: use pins 12/13/18/19 with the pwm-2chan overlay.
// Duty 0 and 100 hold a steady level without waking.
type softPWM struct {
	out      pgpio.PinOut
	inverted bool

	mu     sync.Mutex
	duty   pgpio.Duty
	period time.Duration
	err    error // the first failed write of the line, reported by Set and Close

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

func newSoftPWM(out pgpio.PinOut, duty pgpio.Duty, period time.Duration, inverted bool) *softPWM {
	s := &softPWM{out: out, inverted: inverted, duty: duty, period: period,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *softPWM) Set(duty pgpio.Duty, period time.Duration) error {
	if period > 0 && period < MinSoftPeriod*time.Microsecond {
		return fmt.Errorf("software PWM needs a period of at least %dµs", MinSoftPeriod)
	}
	s.mu.Lock()
	if err := s.err; err != nil {
		s.mu.Unlock()
		return fmt.Errorf("software PWM: %w", err)
	}
	s.duty = duty
	if period > 0 {
		s.period = period
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *softPWM) run() {
	defer close(s.done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	sleep := func(d time.Duration) bool {
		t.Reset(d)
		select {
		case <-t.C:
			return true
		case <-s.stop:
			t.Stop()
			return false
		}
	}
	// out drives the line and keeps the first failure: a line that
	// cannot be written stops the PWM rather than pretending.
	out := func(l pgpio.Level) bool {
		if err := s.out.Out(l); err != nil {
			s.mu.Lock()
			if s.err == nil {
				s.err = err
			}
			s.mu.Unlock()
			return false
		}
		return true
	}
	for {
		s.mu.Lock()
		duty, period, failed := s.duty, s.period, s.err != nil
		s.mu.Unlock()
		high := time.Duration(int64(period) * int64(duty) / int64(pgpio.DutyMax))
		on, off := pgpio.Level(!s.inverted), pgpio.Level(s.inverted)
		if failed || high <= 0 || high >= period {
			if !failed {
				lvl := off
				if high > 0 {
					lvl = on
				}
				out(lvl)
			}
			select {
			case <-s.wake:
				continue
			case <-s.stop:
				return
			}
		}
		if !out(on) {
			continue // failed: wait for Set or Close above
		}
		if !sleep(high) {
			return
		}
		if !out(off) {
			continue
		}
		if !sleep(period - high) {
			return
		}
	}
}

func (s *softPWM) Close() error {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	err = errors.Join(err, s.out.Out(pgpio.Level(s.inverted)))
	if p, ok := s.out.(pgpio.PinIO); ok {
		err = errors.Join(err, release(p))
	}
	return err
}
