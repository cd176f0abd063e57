package sonar

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/rollcall/rollcall/services"
)

// Config is the sonar service's configuration: the "sonar" block of the
// agent's configuration file and the payload of <host>/sonar/setup.
type Config struct {
	Rangers []RangerConfig `json:"rangers"`
}

// RangerConfig is one HC-SR04 and how it is read.
type RangerConfig struct {
	// Name is the last level of the ranger's input topic.
	Name string `json:"name" rollcall:"required"`
	// Driver is DriverIIO (the default), DriverGPIO or DriverSim. The
	// agent's --sim runs every ranger on DriverSim whatever it says.
	Driver string `json:"driver,omitempty"`
	// Trigger and Echo are BCM GPIOs, both held against every other
	// service. With iio they are the overlay's, which the service checks.
	Trigger int `json:"trigger" rollcall:"required"`
	Echo    int `json:"echo" rollcall:"required"`
	// Device is the kernel's IIO device, for iio: "srf04" (the default)
	// when there is one, "iio:device0" when there are several.
	Device string `json:"device,omitempty"`
	// Samples is how many pings, MinGap apart, make one reading: their
	// median. 0 is DefaultSamples.
	Samples int `json:"samples,omitempty"`
	// Min and Max are the range limits in metres: a reading outside is
	// published as no target. Max 0 is MaxRange.
	Min float64 `json:"min,omitempty"`
	Max float64 `json:"max,omitempty"`
	// Interval is the time between two readings: 0 is DefaultInterval,
	// and it must leave room for Samples pings MinGap apart.
	Interval services.Duration `json:"interval,omitempty"`
	// Deadband is how far (metres) a reading must move from the last one
	// published to be published again; 0 publishes every reading. Going
	// from a target to none and back is always published.
	Deadband float64 `json:"deadband,omitempty"`
	// Temperature compensates the speed of sound with the air's
	// temperature: the name of a dht22 sensor of this host ("air", read
	// from <host>/dht22/input/air_temperature) or any topic carrying °C,
	// as a dht22 reading or a bare number. Empty assumes 20 °C.
	Temperature string `json:"temperature,omitempty"`
	// SimTarget places the simulated target from a topic's value, when
	// the ranger runs on DriverSim; other drivers ignore it.
	SimTarget SimTarget `json:"sim_target,omitzero"`
}

// SimTarget maps a topic's value linearly to the simulated target's
// distance: Low gives Near metres, High gives Far, values beyond are held
// at the ends; until the topic has a value, the target stands at Near. Far beyond MaxRange lets the value take the target out of
// range. The value is a bare number ("42.5", a gpio or dac output) or a
// reading's {"value":…}.
type SimTarget struct {
	Topic string  `json:"topic" rollcall:"required"`
	Low   float64 `json:"low"`
	High  float64 `json:"high" rollcall:"required"`
	Near  float64 `json:"near"`
	Far   float64 `json:"far" rollcall:"required"`
}

// metres maps v to the target's distance.
func (st SimTarget) metres(v float64) float64 {
	f := (v - st.Low) / (st.High - st.Low)
	return st.Near + min(max(f, 0), 1)*(st.Far-st.Near)
}

// Limits of the configuration.
const (
	DefaultSamples  = 5
	MaxSamples      = 15
	DefaultInterval = time.Second
	MaxInterval     = 24 * time.Hour
	// RangeLimit bounds Max: MaxEcho's round trip at 343 m/s.
	RangeLimit = 5.0
	// MaxRangers bounds the rangers of one host: each takes two pins.
	MaxRangers = services.HeaderPins / 2
)

func (c RangerConfig) samples() int {
	if c.Samples == 0 {
		return DefaultSamples
	}
	return c.Samples
}

func (c RangerConfig) maxRange() float64 {
	if c.Max == 0 {
		return MaxRange
	}
	return c.Max
}

func (c RangerConfig) interval() time.Duration {
	if c.Interval == 0 {
		return DefaultInterval
	}
	return c.Interval.D()
}

func (c RangerConfig) device() string {
	if c.Device == "" {
		return DefaultDevice
	}
	return c.Device
}

// temperatureTopic is where the ranger's compensation comes from, or "".
func (c RangerConfig) temperatureTopic(own services.Topics) string {
	if c.Temperature == "" || strings.Contains(c.Temperature, "/") {
		return c.Temperature
	}
	return services.Topics{Prefix: own.Prefix, Host: own.Host, Service: "dht22"}.Input(c.Temperature + "_temperature")
}

var deviceName = regexp.MustCompile(`^[A-Za-z0-9_.:@,-]{1,64}$`)

var drivers = []string{"", DriverIIO, DriverGPIO, DriverSim}

// Check implements services.Setup: names, drivers, pins, samples, range,
// interval, deadband and the topics a ranger follows. Pins held by other
// services are the runtime's to check.
func (c Config) Check(ck services.Checker) services.Errors {
	var errs services.Errors
	add := func(code, field, format string, a ...any) {
		errs = append(errs, services.Errorf(code, field, format, a...))
	}
	if len(c.Rangers) > MaxRangers {
		add(services.CodeInvalid, "rangers", "%d rangers; the header's %d pins make %d", len(c.Rangers), services.HeaderPins, MaxRangers)
		return errs
	}
	names := services.NewNames("")
	for i, r := range c.Rangers {
		f := fmt.Sprintf("rangers[%d]", i)
		errs = append(errs, names.Check(f, r.Name)...)
		if !slices.Contains(drivers, r.Driver) {
			add(services.CodeInvalid, f+".driver", "unknown driver %q (want %s, %s or %s)", services.Truncate(r.Driver, 40), DriverIIO, DriverGPIO, DriverSim)
		}
		for _, p := range []struct {
			field string
			pin   int
		}{{"trigger", r.Trigger}, {"echo", r.Echo}} {
			if p.pin < 0 || p.pin >= services.HeaderPins {
				add(services.CodeInvalid, f+"."+p.field, "GPIO %d is not on the header (BCM 0–27)", p.pin)
			}
		}
		switch {
		case r.Device != "" && r.Driver != "" && r.Driver != DriverIIO:
			add(services.CodeInvalid, f+".device", "device names the kernel's IIO device: only for the %s driver, not %s", DriverIIO, r.Driver)
		case r.Device != "" && !deviceName.MatchString(r.Device):
			add(services.CodeInvalid, f+".device", "%q is not an IIO device name such as srf04 or iio:device0", services.Truncate(r.Device, 70))
		}
		if r.Samples < 0 || r.Samples > MaxSamples {
			add(services.CodeInvalid, f+".samples", "samples %d: want 1 to %d pings per reading (0: %d)", r.Samples, MaxSamples, DefaultSamples)
		}
		switch {
		case r.Min < 0 || r.Min >= RangeLimit:
			add(services.CodeInvalid, f+".min", "min %v m: want 0 to %v m", r.Min, RangeLimit)
		case r.Max < 0 || r.Max > RangeLimit:
			add(services.CodeInvalid, f+".max", "max %v m: want up to %v m (the HC-SR04 reaches %v m), or 0 for %v m", r.Max, RangeLimit, MaxRange, MaxRange)
		case r.Min >= r.maxRange():
			add(services.CodeInvalid, f+".max", "max %v m is not beyond min %v m", r.maxRange(), r.Min)
		}
		if r.Samples >= 0 && r.Samples <= MaxSamples {
			need := time.Duration(r.samples()) * MinGap
			if r.Interval != 0 && (r.Interval.D() < need || r.Interval.D() > MaxInterval) {
				add(services.CodeInvalid, f+".interval", "interval %v: %d pings %v apart need at least %v (at most %v)", r.Interval, r.samples(), MinGap, need, MaxInterval)
			}
		}
		if r.Deadband < 0 || r.Deadband > RangeLimit {
			add(services.CodeInvalid, f+".deadband", "deadband %v m: want 0 (publish every reading) to %v m", r.Deadband, RangeLimit)
		}
		if r.Temperature != "" {
			if !strings.Contains(r.Temperature, "/") && !services.ValidTopicName(r.Temperature+"_temperature") {
				add(services.CodeInvalid, f+".temperature", "%q is neither a dht22 sensor's name nor a topic", services.Truncate(r.Temperature, 70))
			} else if msg := checkFollow(ck.Topics, r.temperatureTopic(ck.Topics)); msg != "" {
				add(services.CodeInvalid, f+".temperature", "%s", msg)
			}
		}
		if st := r.SimTarget; st != (SimTarget{}) {
			if msg := checkFollow(ck.Topics, st.Topic); msg != "" {
				add(services.CodeInvalid, f+".sim_target.topic", "%s", msg)
			}
			if st.High == st.Low {
				add(services.CodeInvalid, f+".sim_target.high", "high and low are both %v: they map values to distances, so they must differ", st.Low)
			}
			for _, m := range []struct {
				field string
				v     float64
			}{{"near", st.Near}, {"far", st.Far}} {
				if m.v < 0 || m.v > 2*RangeLimit {
					add(services.CodeInvalid, f+".sim_target."+m.field, "%s %v m: want 0 to %v m", m.field, m.v, 2*RangeLimit)
				}
			}
		}
	}
	return errs
}

// checkFollow returns why a ranger of the service with topics own may not
// read values from topic, or "": any plain topic but the requests and
// state rollcall keeps, except inputs' and outputs' values (and their
// bare numbers), and never this service's own.
func checkFollow(own services.Topics, topic string) string {
	if !services.ValidTopic(topic) {
		return fmt.Sprintf("%q is not a plain topic (no + # control characters or leading $, at most 256 bytes)", services.Truncate(topic, 70))
	}
	if own.Contains(topic) {
		return fmt.Sprintf("%q is a topic of this service itself", services.Truncate(topic, 70))
	}
	rest, under := own.Prefix.Trim(topic)
	lv := strings.Split(rest, "/")
	if under && (len(lv) == 4 || len(lv) == 5 && lv[4] == "value") && (lv[2] == "input" || lv[2] == "output") {
		return ""
	}
	if own.Prefix.Reserved(topic) {
		return fmt.Sprintf("%q is a topic rollcall uses for requests or state; name %s or a topic of your own", services.Truncate(topic, 70), own.Prefix.Topic("<host>/<service>/input/<name>"))
	}
	return ""
}

// Claims implements services.Setup: every ranger's two pins, and the IIO
// device of those read through the kernel.
func (c Config) Claims() []services.Claim {
	var cl []services.Claim
	for i, r := range c.Rangers {
		cl = append(cl,
			services.PinClaim(fmt.Sprintf("rangers[%d].trigger", i), r.Trigger),
			services.PinClaim(fmt.Sprintf("rangers[%d].echo", i), r.Echo))
		if r.Driver == "" || r.Driver == DriverIIO {
			cl = append(cl, services.IIOClaim(fmt.Sprintf("rangers[%d].device", i), r.device()))
		}
	}
	return cl
}

// merge returns cur with patch's rangers merged by name.
func merge(cur, patch Config) Config {
	return Config{Rangers: services.MergeByName(cur.Rangers, patch.Rangers, func(r RangerConfig) string { return r.Name })}
}
