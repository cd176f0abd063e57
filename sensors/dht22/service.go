package dht22

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"path"
	"strconv"
	"sync"
	"time"

	"github.com/rollcall/rollcall/sensors/iio"
	"github.com/rollcall/rollcall/services"
)

// Name is the service's name: the second level of its topics and its key
// in the agent's configuration file.
const Name = "dht22"

func init() {
	services.Register(services.NewKind(Name, nil, func(env services.Env, cfg Config) (services.Service, error) {
		return New(cfg, ServiceOptions{Env: env})
	}))
}

// ServiceOptions are what New needs besides the configuration.
type ServiceOptions struct {
	Env services.Env
	// Sysfs, when set, is read instead of the tree at Env.Sysfs (tests
	// give an iiotest.MapFS).
	Sysfs iio.FS
}

// Persist is how many retryable read errors (EIO, ETIMEDOUT, EAGAIN) in a
// row make a sensor failing: the kernel's driver gives a few in normal
// operation, and with retries 2, 4, 8 and 16 s apart five take half a
// minute.
const Persist = 5

// Units of the two inputs.
const (
	UnitCelsius  = "°C"
	UnitHumidity = "%RH"
)

// Service is the dht22 service: a services.Runtime for the requests, the
// setup transaction, estop and the description, and one scan per sensor.
// See the package documentation for its topics and payloads.
type Service struct {
	*services.Runtime[Config]
	sim   bool
	sysfs iio.FS
	clock services.Clock
	// started is set by the first Apply, Run's: touched only on the
	// runtime's goroutine.
	started bool

	// chans are the live sensors, replaced by Apply and read by Health and
	// Interfaces from other goroutines.
	mu    sync.Mutex
	chans []*channel
}

var (
	_ services.Service                   = (*Service)(nil)
	_ services.Device[Config]            = (*Service)(nil)
	_ services.Merger[Config]            = (*Service)(nil)
	_ services.HealthReporter            = (*Service)(nil)
	_ services.Connector                 = (*Service)(nil)
	_ services.Serving                   = (*Service)(nil)
	_ services.Setup                     = Config{}
	_ interface{ Sensor(string) Sensor } = (*Service)(nil)
)

// channel is one sensor being read.
type channel struct {
	spec   SensorConfig
	field  string // "sensors[0]"
	driver string // the driver reading it, sim under --sim
	scan   *services.Scan

	mu     sync.Mutex
	sensor Sensor // nil until opened
	device string // iio: the device found, "iio:device1 (dht11@0)"
	closed bool

	// The last values published, touched only by the scan's publish,
	// which runs one at a time.
	lastC, lastH float64
	hasC, hasH   bool
}

// New builds the service from cfg, or from the setup saved in the state
// directory. Sensors are opened by Run.
func New(cfg Config, opts ServiceOptions) (*Service, error) {
	env := opts.Env.WithDefaults()
	s := &Service{sim: env.Sim, sysfs: opts.Sysfs, clock: env.Clock}
	if s.sysfs == nil {
		s.sysfs = iio.Dir(env.Sysfs)
	}
	rt, err := services.NewRuntime(services.RuntimeOptions[Config]{Kind: Name, Env: env, Config: cfg, Schema: Schemas()}, s)
	if err != nil {
		return nil, err
	}
	s.Runtime = rt
	return s, nil
}

// Merge implements services.Merger: sensors are merged by name.
func (s *Service) Merge(cur, patch Config, present map[string]bool) Config {
	return merge(cur, patch)
}

// Sensor returns the open sensor called name, or nil: under --sim a *Sim,
// whose failures tests and demos can inject.
func (s *Service) Sensor(name string) Sensor {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.chans {
		if c.spec.Name == name {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.sensor
		}
	}
	return nil
}

// Apply implements services.Device. Sensors whose configuration did not
// change keep being read; the others are opened anew, all before any
// scan starts, so that a setup naming a missing device changes nothing.
// On the first call, from Run, a sensor that cannot be opened does not
// hold up the others: it is reported and retried like a failing read.
func (s *Service) Apply(prev, next Config, safe bool) error {
	lenient := !s.started
	s.started = true
	s.mu.Lock()
	old := s.chans
	s.mu.Unlock()
	field := func(i int) string { return fmt.Sprintf("sensors[%d]", i) }
	r := services.Reconcile(old, len(next.Sensors),
		func(c *channel, i int) bool { return c.spec == next.Sensors[i] && c.field == field(i) },
		func(i int) *channel { return s.newChannel(next.Sensors[i], field(i)) })
	if c, err := r.Open(lenient, s.openChannel, s.retry, closeNew); err != nil {
		return services.Errorf(services.CodeHardware, openField(err, c.field), "%s: %v", c.spec.Name, err)
	}
	for _, c := range r.Gone {
		c.scan.Stop()
		if err := c.close(); err != nil {
			s.Logger().Warn("close", "sensor", c.spec.Name, "err", err)
		}
	}
	for _, c := range r.New {
		c.scan = s.Scan(services.ScanOptions{
			Name:     c.spec.Name,
			Field:    c.field,
			Interval: c.spec.interval(),
			Retry:    MinInterval,
			Read:     func() (func(), error) { return s.read(c) },
			Expected: Retryable,
			Persist:  Persist,
		})
	}
	s.mu.Lock()
	s.chans = r.Next
	s.mu.Unlock()
	return nil
}

// newChannel is the channel of sensor spec at field, not yet open.
func (s *Service) newChannel(spec SensorConfig, field string) *channel {
	return &channel{spec: spec, field: field, driver: s.driverOf(spec)}
}

// driverOf is the driver that reads spec: sim under --sim, whatever the
// configuration says.
func (s *Service) driverOf(spec SensorConfig) string {
	switch {
	case s.sim:
		return DriverSim
	case spec.Driver == "":
		return DriverIIO
	}
	return spec.Driver
}

// openChannel opens a new channel's sensor, for Apply.
func (s *Service) openChannel(c *channel) error {
	_, err := s.open(c)
	return err
}

// retry logs a sensor that cannot be opened at start: its scan retries.
func (s *Service) retry(c *channel, err error) {
	s.Logger().Warn("cannot open a sensor; retrying", "sensor", c.spec.Name, "err", err)
}

// closeNew closes a channel a failed setup opened.
func closeNew(c *channel) { _ = c.close() }

// errPin is a configuration naming another pin than the overlay's.
var errPin = errors.New("pin differs from the overlay's")

// openField is the field an open error belongs to.
func openField(err error, field string) string {
	if errors.Is(err, errPin) {
		return field + ".pin"
	}
	return field
}

// open returns c's sensor, opening it first if needed.
func (s *Service) open(c *channel) (Sensor, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if c.sensor != nil {
		return c.sensor, nil
	}
	spec := c.spec
	h := fnv.New64a()
	h.Write([]byte(spec.Name))
	sensor, err := Open(Options{Driver: c.driver, Pin: spec.Pin, Sysfs: s.sysfs, Device: spec.device(), Seed: h.Sum64(), Now: s.clock.Now})
	if err != nil {
		return nil, err
	}
	if d, ok := sensor.(*IIO); ok {
		dev := d.Device()
		c.device = fmt.Sprintf("%s (%s)", path.Base(dev.Dir), dev.Name)
		if pin, perr := d.Pin(); perr == nil && pin != spec.Pin {
			_ = sensor.Close()
			return nil, fmt.Errorf("dht22: %s is the dht11 overlay's sensor on GPIO %d, not GPIO %d: %w; set pin: %d, or dtoverlay=dht11,gpiopin=%d in /boot/firmware/config.txt and reboot",
				c.device, pin, spec.Pin, errPin, pin, spec.Pin)
		}
	}
	c.sensor = sensor
	return sensor, nil
}

// close stops reading c. A read under way finishes first.
func (c *channel) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.sensor == nil {
		return nil
	}
	return c.sensor.Close()
}

// read is a scan's read: it blocks on the sensor, off the runtime's
// goroutine.
func (s *Service) read(c *channel) (func(), error) {
	sensor, err := s.open(c)
	if err != nil {
		return nil, err
	}
	r, err := sensor.Read()
	if err != nil {
		return nil, err
	}
	at := s.clock.Now()
	return func() { s.publish(c, r, at) }, nil
}

// Value is a reading as it is published, retained, on
// <host>/dht22/input/<name>_temperature and <name>_humidity.
type Value struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Raw is the value in thousandths, as the kernel's driver gives it
	// (in_temp_input, in_humidityrelative_input).
	Raw int64 `json:"raw"`
	// TS is when it was read, RFC 3339.
	TS string `json:"ts"`
}

// publish publishes the values of r that moved past their deadband.
func (s *Service) publish(c *channel, r Reading, at time.Time) {
	ts := at.UTC().Format(time.RFC3339)
	db := c.spec.Deadband
	if !c.hasC || moved(r.Celsius, c.lastC, db.Temperature) {
		s.publishValue(c.spec.Name+TemperatureSuffix, Value{Value: r.Celsius, Unit: UnitCelsius, Raw: milli(r.Celsius), TS: ts})
		c.lastC, c.hasC = r.Celsius, true
	}
	if !c.hasH || moved(r.Humidity, c.lastH, db.Humidity) {
		s.publishValue(c.spec.Name+HumiditySuffix, Value{Value: r.Humidity, Unit: UnitHumidity, Raw: milli(r.Humidity), TS: ts})
		c.lastH, c.hasH = r.Humidity, true
	}
}

// moved reports whether v is at least deadband away from last; a reading
// is published at every read with deadband 0. The margin keeps 21.5 −
// 21.3 (0.19999…) at the 0.2 it is meant to be.
func moved(v, last, deadband float64) bool {
	return deadband == 0 || math.Abs(v-last) >= deadband-1e-9
}

func milli(v float64) int64 { return int64(math.Round(v * 1000)) }

func (s *Service) publishValue(name string, v Value) {
	topic := s.Topics().Input(name)
	b, err := json.Marshal(v)
	if err != nil {
		s.Logger().Error("marshal reading", "input", name, "err", err)
		return
	}
	s.Values().PublishEach("input", name, v.Value,
		services.Retained{Topic: topic, Payload: b},
		services.Retained{Topic: topic + "/value", Payload: []byte(strconv.FormatFloat(v.Value, 'f', -1, 64))})
}

// Failsafe implements services.Device: a DHT22 drives nothing. An estop
// leaves the sensors reading; it refuses setups until recover.
func (s *Service) Failsafe() error { return nil }

// Close implements services.Device: every scan stopped, every sensor
// closed.
func (s *Service) Close() error {
	s.mu.Lock()
	chans := s.chans
	s.chans = nil
	s.mu.Unlock()
	var errs []error
	for _, c := range chans {
		c.scan.Stop()
		errs = append(errs, c.close())
	}
	return errors.Join(errs...)
}

// Health implements services.HealthReporter.
func (s *Service) Health() string {
	s.mu.Lock()
	scans := make([]*services.Scan, 0, len(s.chans))
	for _, c := range s.chans {
		scans = append(scans, c.scan)
	}
	s.mu.Unlock()
	return services.ScanHealth(scans)
}

// SensorState is one sensor as the description's state lists it.
type SensorState struct {
	Name string `json:"name"`
	// Driver is the driver reading it: sim under --sim, whatever the
	// configuration says.
	Driver string `json:"driver"`
	Pin    int    `json:"pin"`
	// Device is the IIO device read, once found: "iio:device1 (dht11@0)".
	Device   string            `json:"device,omitempty"`
	Interval services.Duration `json:"interval"`
	// Temperature and Humidity are the topics of its two inputs; each
	// also has a bare number on <topic>/value.
	Temperature string `json:"temperature"`
	Humidity    string `json:"humidity"`
	services.ScanStatus
}

// State is the service's own part of its Description.State, beside the
// runtime's halted, config and schema.
type State struct {
	Sensors []SensorState `json:"sensors"`
}

// Interfaces implements services.Device: two inputs per sensor, with
// their units, the sensor's range and the interval.
func (s *Service) Interfaces(cfg Config) services.Interfaces {
	s.mu.Lock()
	live := make(map[SensorConfig]*channel, len(s.chans))
	for _, c := range s.chans {
		live[c.spec] = c
	}
	s.mu.Unlock()
	st := State{Sensors: []SensorState{}}
	var ifs services.Interfaces
	tp := s.Topics()
	for _, spec := range cfg.Sensors {
		every := services.Duration(spec.interval())
		ss := SensorState{Name: spec.Name, Driver: s.driverOf(spec), Pin: spec.Pin, Interval: every,
			Temperature: tp.Input(spec.Name + TemperatureSuffix), Humidity: tp.Input(spec.Name + HumiditySuffix)}
		if c := live[spec]; c != nil {
			ss.ScanStatus = c.scan.Status()
			c.mu.Lock()
			ss.Device = c.device
			c.mu.Unlock()
		}
		st.Sensors = append(st.Sensors, ss)
		ifs.Inputs = append(ifs.Inputs,
			services.Interface{Name: spec.Name + TemperatureSuffix, Topic: ss.Temperature, Type: "number", Unit: UnitCelsius,
				Mode: "temperature", Min: ptr(float64(minCelsius)), Max: ptr(float64(maxCelsius)), Interval: every},
			services.Interface{Name: spec.Name + HumiditySuffix, Topic: ss.Humidity, Type: "number", Unit: UnitHumidity,
				Mode: "humidity", Min: ptr(0.0), Max: ptr(float64(maxHumidity)), Interval: every})
	}
	ifs.State = st
	return ifs
}

func ptr[T any](v T) *T { return &v }
