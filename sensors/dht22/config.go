package dht22

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/rollcall/rollcall/services"
)

// Config is the dht22 service's configuration: the "dht22" block of the
// agent's configuration file and the payload of <host>/dht22/setup.
type Config struct {
	Sensors []SensorConfig `json:"sensors"`
}

// SensorConfig is one DHT22 and how it is read.
type SensorConfig struct {
	// Name names the sensor's inputs, <name>_temperature and
	// <name>_humidity, so it is at most 52 bytes.
	Name string `json:"name" rollcall:"required"`
	// Driver is DriverIIO (the default), DriverGoDHT or DriverSim. The
	// agent's --sim runs every sensor on DriverSim whatever it says.
	Driver string `json:"driver,omitempty"`
	// Pin is the BCM GPIO of the data line, held against every other
	// service. With iio it is the overlay's gpiopin, which the service
	// checks: moving the sensor takes an overlay edit and a reboot.
	Pin int `json:"pin" rollcall:"required"`
	// Device is the kernel's IIO device, for iio: "dht11" (the
	// default) when there is one, "dht11@0" or "iio:device1" when there
	// are several.
	Device string `json:"device,omitempty"`
	// Interval is the time between two reads: 0 is DefaultInterval, and
	// the sensor cannot be read more often than MinInterval.
	Interval services.Duration `json:"interval,omitempty"`
	// Deadband holds back readings too close to the last one published.
	Deadband Deadband `json:"deadband,omitzero"`
}

// Deadband is how far a reading must move from the last one published to
// be published again; 0 publishes every reading.
type Deadband struct {
	Temperature float64 `json:"temperature,omitempty"` // °C
	Humidity    float64 `json:"humidity,omitempty"`    // %RH
}

// Limits of the configuration.
const (
	// DefaultInterval is the interval of a sensor that names none.
	DefaultInterval = 10 * time.Second
	// MaxInterval bounds a sensor's interval.
	MaxInterval = 24 * time.Hour
	// MaxSensors bounds the sensors of one host: each takes a header pin.
	MaxSensors = services.HeaderPins
)

// Suffixes of a sensor's two inputs.
const (
	TemperatureSuffix = "_temperature"
	HumiditySuffix    = "_humidity"
)

// interval is the sensor's interval with the default filled in.
func (c SensorConfig) interval() time.Duration {
	if c.Interval == 0 {
		return DefaultInterval
	}
	return c.Interval.D()
}

// device is the IIO device the sensor names, with the default filled in.
func (c SensorConfig) device() string {
	if c.Device == "" {
		return DefaultDevice
	}
	return c.Device
}

// deviceName is what an IIO device may be called in a configuration: a
// name file's content ("dht11", "dht11@0") or a directory ("iio:device1").
var deviceName = regexp.MustCompile(`^[A-Za-z0-9_.:@,-]{1,64}$`)

var drivers = []string{"", DriverIIO, DriverGoDHT, DriverSim}

// Check implements services.Setup: names, drivers, pins, intervals and
// deadbands. Pins held by other services are the runtime's to check.
func (c Config) Check(services.Checker) services.Errors {
	var errs services.Errors
	add := func(code, field, format string, a ...any) {
		errs = append(errs, services.Errorf(code, field, format, a...))
	}
	if len(c.Sensors) > MaxSensors {
		add(services.CodeInvalid, "sensors", "%d sensors; the header has %d pins", len(c.Sensors), MaxSensors)
		return errs
	}
	names := map[string]string{}
	for i, s := range c.Sensors {
		f := fmt.Sprintf("sensors[%d]", i)
		switch {
		case !services.ValidTopicName(s.Name) || !services.ValidTopicName(s.Name+TemperatureSuffix):
			add(services.CodeInvalid, f+".name", "name %q cannot name the inputs %s%s and %s%s (1–52 bytes, no / + # control characters or leading $)",
				services.Truncate(s.Name, 70), services.Truncate(s.Name, 70), TemperatureSuffix, services.Truncate(s.Name, 70), HumiditySuffix)
		case names[s.Name] != "":
			add(services.CodeConflict, f+".name", "duplicate name %q (also %s)", s.Name, names[s.Name])
		default:
			names[s.Name] = f
		}
		if !slices.Contains(drivers, s.Driver) {
			add(services.CodeInvalid, f+".driver", "unknown driver %q (want %s, %s or %s)", services.Truncate(s.Driver, 40), DriverIIO, DriverGoDHT, DriverSim)
		}
		if s.Pin < 0 || s.Pin >= services.HeaderPins {
			add(services.CodeInvalid, f+".pin", "GPIO %d is not on the header (BCM 0–27)", s.Pin)
		}
		switch {
		case s.Device != "" && s.Driver != "" && s.Driver != DriverIIO:
			add(services.CodeInvalid, f+".device", "device names the kernel's IIO device: only for the %s driver, not %s", DriverIIO, s.Driver)
		case s.Device != "" && !deviceName.MatchString(s.Device):
			add(services.CodeInvalid, f+".device", "%q is not an IIO device name such as dht11, dht11@0 or iio:device1", services.Truncate(s.Device, 70))
		}
		if s.Interval != 0 && (s.Interval.D() < MinInterval || s.Interval.D() > MaxInterval) {
			add(services.CodeInvalid, f+".interval", "interval %v: a DHT22 cannot be read more often than every %v (at most %v)", s.Interval, MinInterval, MaxInterval)
		}
		if d := s.Deadband.Temperature; d < 0 || d > maxCelsius-minCelsius {
			add(services.CodeInvalid, f+".deadband.temperature", "deadband %v °C: want 0 (publish every reading) to %d °C", d, maxCelsius-minCelsius)
		}
		if d := s.Deadband.Humidity; d < 0 || d > maxHumidity {
			add(services.CodeInvalid, f+".deadband.humidity", "deadband %v %%RH: want 0 (publish every reading) to %d %%RH", d, maxHumidity)
		}
	}
	return errs
}

// Claims implements services.Setup: every sensor's data pin, and the IIO
// device of those read through the kernel.
func (c Config) Claims() []services.Claim {
	var cl []services.Claim
	for i, s := range c.Sensors {
		cl = append(cl, services.PinClaim(fmt.Sprintf("sensors[%d].pin", i), s.Pin))
		if s.Driver == "" || s.Driver == DriverIIO {
			cl = append(cl, services.IIOClaim(fmt.Sprintf("sensors[%d].device", i), s.device()))
		}
	}
	return cl
}

// merge returns cur with patch's sensors merged by name: a sensor of the
// same name is replaced, new names are added.
func merge(cur, patch Config) Config {
	return Config{Sensors: services.MergeByName(cur.Sensors, patch.Sensors, func(s SensorConfig) string { return s.Name })}
}
