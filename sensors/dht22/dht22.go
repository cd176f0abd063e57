package dht22

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/rollcall/rollcall/sensors/iio"
)

// Reading is one measurement.
type Reading struct {
	Celsius  float64 // °C, resolution 0.1
	Humidity float64 // %RH, resolution 0.1
}

// A Sensor reads one DHT22 (AM2302). Implementations are safe for
// concurrent use.
type Sensor interface {
	// Read returns the current measurement, or the last one if it is
	// under MinInterval old.
	Read() (Reading, error)
	Close() error
}

// MinInterval is the shortest time between two measurements the sensor
// supports (datasheet: 2 s).
const MinInterval = 2 * time.Second

// Driver names for Options.Driver.
const (
	DriverIIO   = "iio"
	DriverGoDHT = "godht"
	DriverSim   = "sim"
)

// DefaultDevice is the IIO device name of the kernel's dht11 driver.
const DefaultDevice = "dht11"

// The DHT22's datasheet range. A reading outside it passed the checksum
// by chance or came from another sensor.
const (
	minCelsius  = -40
	maxCelsius  = 80
	maxHumidity = 100
)

// errTransient marks failures that the next attempt may not repeat: a
// reading outside the sensor's range, a bad checksum from go-dht.
var errTransient = errors.New("transient")

// Retryable reports whether a Read error is worth retrying after
// MinInterval: the kernel's EIO, ETIMEDOUT and EAGAIN, checksum and
// decoding failures, and implausible values. A missing device, a
// permission problem or an unreadable attribute is not.
func Retryable(err error) bool {
	return iio.Retryable(err) || errors.Is(err, errTransient)
}

// Options selects and configures a driver for Open.
type Options struct {
	// Driver is DriverIIO (also ""), DriverGoDHT or DriverSim.
	Driver string
	// Pin is the BCM GPIO of the data line, for godht. The iio driver's
	// pin is set by the overlay; IIO.Pin tells which.
	Pin int
	// Sysfs is the sysfs root; nil is iio.Dir("/sys").
	Sysfs iio.FS
	// Device is the IIO device, by name or directory; "" is DefaultDevice.
	Device string
	// Seed and Now drive the sim; nil Now is time.Now.
	Seed uint64
	Now  func() time.Time
}

// Open returns the sensor o describes.
func Open(o Options) (Sensor, error) {
	if o.Sysfs == nil {
		o.Sysfs = iio.Dir("/sys")
	}
	switch o.Driver {
	case DriverIIO, "":
		return NewIIO(o.Sysfs, o.Device)
	case DriverGoDHT:
		return openGoDHT(o)
	case DriverSim:
		return NewSim(o.Seed, o.Now), nil
	default:
		return nil, fmt.Errorf("dht22: unknown driver %q (want %q, %q or %q)", o.Driver, DriverIIO, DriverGoDHT, DriverSim)
	}
}

// check rejects readings outside the datasheet's range.
func check(r Reading) (Reading, error) {
	if r.Celsius < minCelsius || r.Celsius > maxCelsius || r.Humidity < 0 || r.Humidity > maxHumidity {
		return Reading{}, fmt.Errorf("implausible reading %.1f °C %.1f %%RH (the DHT22 measures %d to %d °C, 0 to %d %%RH): %w",
			r.Celsius, r.Humidity, minCelsius, maxCelsius, maxHumidity, errTransient)
	}
	return r, nil
}

var errClosed = fmt.Errorf("dht22: sensor closed: %w", fs.ErrClosed)
