package sonar

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"

	"github.com/rollcall/rollcall/sensors/iio"
)

// A Ranger measures the echo round trip of one HC-SR04. Implementations
// are safe for concurrent use; pings are serialized.
type Ranger interface {
	// Ping triggers one measurement and returns the echo's round trip,
	// or ErrNoEcho when nothing echoes (no target in range). Drivers of
	// real modules never trigger sooner than MinGap after the previous
	// ping: they wait.
	Ping() (time.Duration, error)
	Close() error
}

// ErrNoEcho is returned, wrapped, by Ping when no echo came back in
// range: nothing within MaxRange, or a target too soft or too slanted to
// reflect. It is a normal outcome, not a fault.
var ErrNoEcho = errors.New("no echo (no target in range)")

// MinGap is the shortest time between two triggers: the datasheet's
// measurement cycle, long enough for the previous burst's echoes to die
// out and for the module's 38 ms no-target pulse to end.
const MinGap = 60 * time.Millisecond

// MaxRange is the HC-SR04's datasheet range in metres; the simulator
// echoes nothing beyond it.
const MaxRange = 4.0

// MaxEcho is the longest round trip taken as an echo: 5.1 m at 343 m/s,
// beyond the module's range, and well short of the 38 ms pulse it gives
// when nothing echoes, which the kernel driver would report as 6.5 m.
const MaxEcho = 30 * time.Millisecond

// KernelSpeed is the speed of sound (m/s) the kernel's srf04 driver
// assumes, 343.5 m/s (dry air at about 20.5 °C): it computes millimetres
// as nanoseconds × 106 / 617176.
const KernelSpeed = 2 * 106 / 617176.0 * 1e6

// Driver names for Options.Driver.
const (
	DriverIIO  = "iio"
	DriverGPIO = "gpio"
	DriverSim  = "sim"
)

// Distance converts an echo round trip to metres for a speed of sound
// (m/s): the sound goes there and back.
func Distance(echo time.Duration, speed float64) float64 {
	return echo.Seconds() * speed / 2
}

// echoFor is the inverse of Distance.
func echoFor(metres, speed float64) time.Duration {
	return time.Duration(math.Round(2 * metres / speed * float64(time.Second)))
}

// SpeedOfSound returns the speed of sound (m/s) in dry air at a
// temperature (°C), for compensation from a dht22: 331.3 m/s at 0 °C,
// growing with the square root of the absolute temperature (343.2 m/s at
// 20 °C). Humidity adds at most about 0.5 % and is left out. Below
// absolute zero it returns NaN.
func SpeedOfSound(celsius float64) float64 {
	const zeroC = 273.15
	if celsius <= -zeroC {
		return math.NaN()
	}
	return 331.3 * math.Sqrt(1+celsius/zeroC)
}

// Options selects and configures a driver for Open.
type Options struct {
	// Driver is DriverIIO (also ""), DriverGPIO or DriverSim.
	Driver string
	// Trigger and Echo are BCM GPIO numbers, for the gpio driver. The iio
	// driver's pins are set by its overlay.
	Trigger, Echo int
	// Sysfs is the sysfs root for iio; nil is iio.Dir("/sys").
	Sysfs iio.FS
	// Device is the IIO device, by name or directory; "" is "srf04".
	Device string
	// Seed and Now drive the sim; nil Now is time.Now. The gpio driver
	// always uses the real clock.
	Seed uint64
	Now  func() time.Time
	// Lookup finds a pin by its periph name, "GPIO23", for the gpio
	// driver. nil runs host.Init and uses gpioreg.ByName; tests pass
	// doubles.
	Lookup func(name string) gpio.PinIO
}

// Open returns the ranger o describes.
func Open(o Options) (Ranger, error) {
	switch o.Driver {
	case DriverIIO, "":
		if o.Sysfs == nil {
			o.Sysfs = iio.Dir("/sys")
		}
		return NewIIO(o.Sysfs, o.Device)
	case DriverGPIO:
		return openGPIO(o)
	case DriverSim:
		return NewSim(o.Seed, o.Now), nil
	default:
		return nil, fmt.Errorf("sonar: unknown driver %q (want %q, %q or %q)", o.Driver, DriverIIO, DriverGPIO, DriverSim)
	}
}

func openGPIO(o Options) (*GPIO, error) {
	if o.Trigger < 0 || o.Echo < 0 {
		return nil, fmt.Errorf("sonar: trigger GPIO%d, echo GPIO%d: pin numbers start at 0", o.Trigger, o.Echo)
	}
	if o.Trigger == o.Echo {
		return nil, fmt.Errorf("sonar: trigger and echo are both GPIO%d: the HC-SR04 needs two pins", o.Trigger)
	}
	lookup := o.Lookup
	if lookup == nil {
		if _, err := host.Init(); err != nil {
			return nil, fmt.Errorf("sonar: periph host init: %w", err)
		}
		lookup = gpioreg.ByName
	}
	trig, err := findPin(lookup, "trigger", o.Trigger)
	if err != nil {
		return nil, err
	}
	echo, err := findPin(lookup, "echo", o.Echo)
	if err != nil {
		return nil, err
	}
	g, err := NewGPIO(trig, echo, GPIOOptions{})
	if err != nil {
		return nil, errors.Join(err, release(trig), release(echo))
	}
	g.release = func() error { return errors.Join(release(trig), release(echo)) }
	return g, nil
}

func findPin(lookup func(string) gpio.PinIO, role string, n int) (gpio.PinIO, error) {
	name := "GPIO" + strconv.Itoa(n)
	p := lookup(name)
	if p == nil {
		return nil, fmt.Errorf("sonar: %s %s not found (no such line on this machine's GPIO chips: is this a Raspberry Pi, and can this user open /dev/gpiochip0?)", role, name)
	}
	return p, nil
}

// release halts p and, when it is a character-device line, gives the line
// back to the kernel.
func release(p gpio.PinIO) error {
	err := p.Halt()
	switch c := p.(type) {
	case interface{ Close() }:
		c.Close()
	case interface{ Close() error }:
		err = errors.Join(err, c.Close())
	}
	return err
}

// pacer keeps triggers at least MinGap apart.
type pacer struct {
	now   func() time.Time
	sleep func(time.Duration)
	last  time.Time
}

// wait sleeps until MinGap after the previous trigger and records this
// one.
func (p *pacer) wait() {
	if !p.last.IsZero() {
		if d := MinGap - p.now().Sub(p.last); d > 0 {
			p.sleep(d)
		}
	}
	p.last = p.now()
}

var errClosed = fmt.Errorf("sonar: ranger closed: %w", fs.ErrClosed)
