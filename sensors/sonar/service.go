package sonar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/rollcall/rollcall/sensors/iio"
	"github.com/rollcall/rollcall/services"
)

// Name is the service's name: the second level of its topics and its key
// in the agent's configuration file.
const Name = "sonar"

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
	// Lookup finds the gpio driver's pins; nil is periph's registry
	// (see Options.Lookup).
	Lookup func(name string) gpio.PinIO
}

// DefaultCelsius is the air temperature assumed by a ranger without
// compensation, or before its temperature topic has said anything.
const DefaultCelsius = 20.0

// UnitMetre is the unit of the rangers' inputs.
const UnitMetre = "m"

// StatusNoTarget marks a reading with nothing in range.
const StatusNoTarget = "no_target"

// Service is the sonar service: a services.Runtime for the requests, the
// setup transaction, estop and the description, and one scan per ranger.
// See the package documentation for its topics and payloads.
type Service struct {
	*services.Runtime[Config]
	sim    bool
	sysfs  iio.FS
	lookup func(string) gpio.PinIO
	clock  services.Clock

	// Touched only on the runtime's goroutine.
	started bool            // the first Apply, Run's, has run
	watched map[string]bool // topics subscribed for temperatures and sim targets

	mu     sync.Mutex
	chans  []*channel
	latest map[string]float64 // the last number on each watched topic
}

var (
	_ services.Service                      = (*Service)(nil)
	_ services.Device[Config]               = (*Service)(nil)
	_ services.Merger[Config]               = (*Service)(nil)
	_ services.HealthReporter               = (*Service)(nil)
	_ services.Connector                    = (*Service)(nil)
	_ services.Serving                      = (*Service)(nil)
	_ services.Setup                        = Config{}
	_ interface{ Ranger(string) Ranger }    = (*Service)(nil)
	_ interface{ Celsius(string) *float64 } = (*Service)(nil)
)

// channel is one ranger being read.
type channel struct {
	spec   RangerConfig
	field  string // "rangers[0]"
	driver string // the driver reading it, sim under --sim
	temp   string // the compensation's topic, or ""
	scan   *services.Scan

	mu     sync.Mutex
	ranger Ranger // nil until opened
	device string // iio: the device found, "iio:device0 (srf04)"
	closed bool

	// The last reading published, touched only by the scan's publish,
	// which runs one at a time.
	last    *float64
	hasLast bool
}

// New builds the service from cfg, or from the setup saved in the state
// directory. Rangers are opened by Run.
func New(cfg Config, opts ServiceOptions) (*Service, error) {
	env := opts.Env.WithDefaults()
	s := &Service{sim: env.Sim, sysfs: opts.Sysfs, lookup: opts.Lookup, clock: env.Clock,
		watched: map[string]bool{}, latest: map[string]float64{}}
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

// Merge implements services.Merger: rangers are merged by name.
func (s *Service) Merge(cur, patch Config, present map[string]bool) Config {
	return merge(cur, patch)
}

// Ranger returns the open ranger called name, or nil: under --sim a *Sim,
// whose target tests and demos can place.
func (s *Service) Ranger(name string) Ranger {
	if c := s.channel(name); c != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.ranger
	}
	return nil
}

// Celsius returns the air temperature the ranger called name compensates
// with, or nil while it has none.
func (s *Service) Celsius(name string) *float64 {
	c := s.channel(name)
	if c == nil {
		return nil
	}
	if v, ok := s.celsius(c); ok {
		return &v
	}
	return nil
}

func (s *Service) channel(name string) *channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.chans {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

// Apply implements services.Device. Rangers whose configuration did not
// change keep being read; the others are opened anew, all before any scan
// starts. When one cannot be opened, the setup changes nothing, but for
// the read counts of rangers on the gpio driver that had to be closed to
// free their pins and are opened again. On the first call, from Run, a
// ranger that cannot be opened does not hold up the others: it is
// reported and retried like a failing read.
func (s *Service) Apply(prev, next Config, safe bool) error {
	lenient := !s.started
	s.started = true
	s.mu.Lock()
	old := s.chans
	s.mu.Unlock()
	field := func(i int) string { return fmt.Sprintf("rangers[%d]", i) }
	r := services.Reconcile(old, len(next.Rangers),
		func(c *channel, i int) bool { return c.spec == next.Rangers[i] && c.field == field(i) },
		func(i int) *channel { return s.newChannel(next.Rangers[i], field(i)) })
	fail := func(c *channel, err error) error {
		return services.Errorf(services.CodeHardware, c.field+fieldOf(err), "%s: %v", c.spec.Name, err)
	}
	// Rangers on the kernel's driver or simulated hold nothing
	// exclusively: they open before anything closes, so that a setup
	// naming a missing device or other pins than the overlay's changes
	// nothing. Those that go then release their pins, which the gpio
	// driver's rangers may take again.
	if c, err := r.Open(lenient, s.opener(false), s.retry, closeNew); err != nil {
		return fail(c, err)
	}
	for _, c := range r.Gone {
		c.scan.Stop()
		if err := c.close(); err != nil {
			s.Logger().Warn("close", "ranger", c.spec.Name, "err", err)
		}
	}
	if c, err := r.Open(lenient, s.opener(true), s.retry, closeNew); err != nil {
		err = fail(c, err)
		s.reopen(old, r.Gone)
		return err
	}
	for _, c := range r.Next {
		s.watch(c.temp)
		s.watch(c.spec.SimTarget.Topic)
	}
	for _, c := range r.New {
		c.scan = s.scan(c)
	}
	s.mu.Lock()
	s.chans = r.Next
	s.mu.Unlock()
	return nil
}

// newChannel is the channel of ranger spec at field, not yet open.
func (s *Service) newChannel(spec RangerConfig, field string) *channel {
	return &channel{spec: spec, field: field, driver: s.driverOf(spec), temp: spec.temperatureTopic(s.Topics())}
}

// driverOf is the driver that reads spec: sim under --sim, whatever the
// configuration says.
func (s *Service) driverOf(spec RangerConfig) string {
	switch {
	case s.sim:
		return DriverSim
	case spec.Driver == "":
		return DriverIIO
	}
	return spec.Driver
}

// opener opens, for Apply, the new channels on the gpio driver (gpio) or
// on the others, and passes over the rest.
func (s *Service) opener(gpio bool) func(*channel) error {
	return func(c *channel) error {
		if (c.driver == DriverGPIO) != gpio {
			return nil
		}
		_, err := s.open(c)
		return err
	}
}

// retry logs a ranger that cannot be opened at start: its scan retries.
func (s *Service) retry(c *channel, err error) {
	s.Logger().Warn("cannot open a ranger; retrying", "ranger", c.spec.Name, "err", err)
}

// closeNew closes a channel a failed setup opened.
func closeNew(c *channel) { _ = c.close() }

// reopen puts back the rangers of old a failed Apply closed, gone.
func (s *Service) reopen(old, gone []*channel) {
	chans := slices.Clone(old)
	for _, c := range gone {
		n := &channel{spec: c.spec, field: c.field, driver: c.driver, temp: c.temp}
		if _, err := s.open(n); err != nil {
			s.Logger().Error("rollback: cannot reopen; retrying", "ranger", c.spec.Name, "err", err)
		}
		n.scan = s.scan(n)
		chans[slices.Index(chans, c)] = n
	}
	s.mu.Lock()
	s.chans = chans
	s.mu.Unlock()
}

func (s *Service) scan(c *channel) *services.Scan {
	return s.Scan(services.ScanOptions{
		Name:     c.spec.Name,
		Field:    c.field,
		Interval: c.spec.interval(),
		Read:     func() (func(), error) { return s.read(c) },
	})
}

// pinError is a configuration naming other pins than the overlay's.
type pinError struct {
	field string // ".trigger", ".echo"
	err   error
}

func (e pinError) Error() string { return e.err.Error() }

func fieldOf(err error) string {
	var pe pinError
	if errors.As(err, &pe) {
		return pe.field
	}
	return ""
}

// open returns c's ranger, opening it first if needed.
func (s *Service) open(c *channel) (Ranger, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if c.ranger != nil {
		return c.ranger, nil
	}
	spec := c.spec
	h := fnv.New64a()
	h.Write([]byte(spec.Name))
	r, err := Open(Options{Driver: c.driver, Trigger: spec.Trigger, Echo: spec.Echo, Sysfs: s.sysfs, Device: spec.device(),
		Seed: h.Sum64(), Now: s.clock.Now, Lookup: s.lookup})
	if err != nil {
		return nil, err
	}
	switch d := r.(type) {
	case *IIO:
		dev := d.Device()
		c.device = fmt.Sprintf("%s (%s)", path.Base(dev.Dir), dev.Name)
		if trig, echo, perr := d.Pins(); perr == nil && (trig != spec.Trigger || echo != spec.Echo) {
			_ = r.Close()
			field := ".trigger"
			if trig == spec.Trigger {
				field = ".echo"
			}
			return nil, pinError{field, fmt.Errorf("sonar: %s is the srf04 overlay's ranger on trigger GPIO %d and echo GPIO %d, not %d and %d; set trigger: %d, echo: %d, or dtoverlay=srf04,trig=%d,echo=%d in /boot/firmware/config.txt and reboot",
				c.device, trig, echo, spec.Trigger, spec.Echo, trig, echo, spec.Trigger, spec.Echo)}
		}
	}
	c.ranger = r
	return r, nil
}

// close stops pinging: a ping under way is interrupted where the driver
// can, and the pins are released.
func (c *channel) close() error {
	c.mu.Lock()
	r := c.ranger
	c.closed = true
	c.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.Close()
}

// watch subscribes, once, to a topic rangers take numbers from: an air
// temperature, a simulated target's place.
func (s *Service) watch(topic string) {
	bus := s.Bus()
	if topic == "" || s.watched[topic] || bus == nil {
		return
	}
	if err := bus.Subscribe(topic, func(m services.Message) { s.heard(topic, m.Payload) }); err != nil {
		s.Logger().Error("subscribe", "topic", topic, "err", err)
		return
	}
	s.watched[topic] = true
}

// heard takes a number from a watched topic, on the session's goroutine:
// the next reading of every ranger taking its air temperature or its
// simulated target from there uses it. An empty payload (a cleared
// retained value) forgets it.
func (s *Service) heard(topic string, payload []byte) {
	if len(bytes.TrimSpace(payload)) == 0 {
		s.mu.Lock()
		delete(s.latest, topic)
		s.mu.Unlock()
		return
	}
	v, err := parseNumber(payload)
	if err != nil {
		s.Logger().Warn("not a number", "topic", topic, "err", err)
		return
	}
	s.mu.Lock()
	s.latest[topic] = v
	s.mu.Unlock()
}

// number is the last number heard on topic.
func (s *Service) number(topic string) (float64, bool) {
	if topic == "" {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.latest[topic]
	return v, ok
}

// parseNumber reads a bare number ("21.4") or a reading ({"value":21.4}).
func parseNumber(b []byte) (float64, error) {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, "{") {
		var r struct {
			Value *float64 `json:"value"`
		}
		if err := json.Unmarshal([]byte(s), &r); err != nil || r.Value == nil {
			return 0, fmt.Errorf("%.40q has no number in \"value\"", s)
		}
		return *r.Value, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%.40q is not a number", s)
	}
	return v, nil
}

// Air temperatures a ranger compensates with; beyond them a reading is
// a fault (a sensor's garbled answer, the wrong topic), not weather.
const (
	minCelsius = -60
	maxCelsius = 100
)

// celsius is the air temperature c compensates with, if it has one.
func (s *Service) celsius(c *channel) (float64, bool) {
	v, ok := s.number(c.temp)
	if !ok || v < minCelsius || v > maxCelsius {
		return 0, false
	}
	return v, true
}

// Value is a reading as it is published, retained, on
// <host>/sonar/input/<name>.
type Value struct {
	// Value is the distance in metres, to the millimetre; null when no
	// target is in range.
	Value *float64 `json:"value"`
	Unit  string   `json:"unit"`
	// Raw is the median echo round trip in microseconds; null when
	// nothing echoed.
	Raw *int64 `json:"raw"`
	// TS is when it was read, RFC 3339.
	TS string `json:"ts"`
	// Status is StatusNoTarget when nothing is in range (no echo, or an
	// echo from beyond max or nearer than min).
	Status string `json:"status,omitempty"`
	// Celsius is the air temperature the speed of sound was taken at,
	// when the ranger is compensated.
	Celsius *float64 `json:"celsius,omitempty"`
}

// read is a scan's read: Samples pings, off the runtime's goroutine, and
// their median. A majority of pings without echo is no target; a
// majority of failed pings is a read error.
func (s *Service) read(c *channel) (func(), error) {
	r, err := s.open(c)
	if err != nil {
		return nil, err
	}
	celsius, compensated := s.celsius(c)
	air := celsius
	if !compensated {
		air = DefaultCelsius
	}
	if sim, ok := r.(*Sim); ok {
		// The simulated air is the one the compensation reads, and the
		// target where the followed value puts it.
		sim.SetCelsius(air)
		if st := c.spec.SimTarget; st != (SimTarget{}) {
			// Until the topic has said anything, the target stands at
			// Near, as Low puts it: a lamp not heard yet is a lamp off.
			// Left to wander, it could start where the topic's first
			// value then puts it, and that first move would be within
			// the deadband and never published.
			v, ok := s.number(st.Topic)
			if !ok {
				v = st.Low
			}
			sim.Follow(st.metres(v))
		}
	}
	k := c.spec.samples()
	var echoes []time.Duration
	none := 0
	var perr error
	for range k {
		e, err := r.Ping()
		switch {
		case err == nil:
			echoes = append(echoes, e)
		case errors.Is(err, ErrNoEcho):
			none++
		case errors.Is(err, fs.ErrClosed):
			return nil, err
		default:
			perr = err
		}
	}
	if 2*(len(echoes)+none) <= k {
		return nil, fmt.Errorf("%d of %d pings failed: %w", k-len(echoes)-none, k, perr)
	}
	v := Value{Unit: UnitMetre, TS: s.clock.Now().UTC().Format(time.RFC3339)}
	if compensated {
		v.Celsius = &celsius
	}
	if none > len(echoes) {
		v.Status = StatusNoTarget
	} else {
		echo := median(echoes)
		raw := echo.Microseconds()
		v.Raw = &raw
		m := math.Round(Distance(echo, SpeedOfSound(air))*1000) / 1000
		if m < c.spec.Min || m > c.spec.maxRange() {
			v.Status = StatusNoTarget
		} else {
			v.Value = &m
		}
	}
	return func() { s.publish(c, v) }, nil
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	n := len(d)
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}

// publish publishes v unless it is within the deadband of the last
// reading published.
func (s *Service) publish(c *channel, v Value) {
	if c.hasLast && c.spec.Deadband > 0 {
		switch {
		case (v.Value == nil) != (c.last == nil):
		case v.Value == nil:
			return
		case math.Abs(*v.Value-*c.last) < c.spec.Deadband-1e-9:
			return
		}
	}
	c.last, c.hasLast = v.Value, true
	topic := s.Topics().Input(c.spec.Name)
	b, err := json.Marshal(v)
	if err != nil {
		s.Logger().Error("marshal reading", "ranger", c.spec.Name, "err", err)
		return
	}
	var bare []byte // no target: the bare number's retained value is cleared
	var value any
	if v.Value != nil {
		bare = []byte(strconv.FormatFloat(*v.Value, 'f', -1, 64))
		value = *v.Value
	}
	s.Values().PublishEach("input", c.spec.Name, value,
		services.Retained{Topic: topic, Payload: b},
		services.Retained{Topic: topic + "/value", Payload: bare})
}

// Failsafe implements services.Device: a ranger drives nothing but its
// trigger, which rests low between pings. An estop leaves the rangers
// reading; it refuses setups until recover.
func (s *Service) Failsafe() error { return nil }

// Close implements services.Device: every scan stopped, every ranger
// closed and its pins released.
func (s *Service) Close() error {
	s.mu.Lock()
	chans := s.chans
	s.chans = nil
	s.mu.Unlock()
	var errs []error
	for _, c := range chans {
		if c.scan != nil {
			c.scan.Stop()
		}
		errs = append(errs, c.close())
	}
	return errors.Join(errs...)
}

// Health implements services.HealthReporter.
func (s *Service) Health() string {
	s.mu.Lock()
	scans := make([]*services.Scan, 0, len(s.chans))
	for _, c := range s.chans {
		if c.scan != nil {
			scans = append(scans, c.scan)
		}
	}
	s.mu.Unlock()
	return services.ScanHealth(scans)
}

// RangerState is one ranger as the description's state lists it.
type RangerState struct {
	Name string `json:"name"`
	// Driver is the driver reading it: sim under --sim, whatever the
	// configuration says.
	Driver  string `json:"driver"`
	Trigger int    `json:"trigger"`
	Echo    int    `json:"echo"`
	// Device is the IIO device pinged, once found: "iio:device0 (srf04)".
	Device   string            `json:"device,omitempty"`
	Interval services.Duration `json:"interval"`
	Samples  int               `json:"samples"`
	Min      float64           `json:"min"`
	Max      float64           `json:"max"`
	// Topic is the input's topic; the bare number is on <topic>/value.
	Topic string `json:"topic"`
	// Temperature is where the compensation comes from, Celsius what it
	// last said (absent until then), Speed the speed of sound in m/s
	// the next reading takes.
	Temperature string   `json:"temperature,omitempty"`
	Celsius     *float64 `json:"celsius,omitempty"`
	Speed       float64  `json:"speed_of_sound"`
	services.ScanStatus
}

// State is the service's own part of its Description.State, beside the
// runtime's halted, config and schema.
type State struct {
	Rangers []RangerState `json:"rangers"`
}

// Interfaces implements services.Device: one input per ranger, in metres,
// with its range and interval.
func (s *Service) Interfaces(cfg Config) services.Interfaces {
	s.mu.Lock()
	live := make(map[RangerConfig]*channel, len(s.chans))
	for _, c := range s.chans {
		live[c.spec] = c
	}
	s.mu.Unlock()
	st := State{Rangers: []RangerState{}}
	var ifs services.Interfaces
	tp := s.Topics()
	for _, spec := range cfg.Rangers {
		every := services.Duration(spec.interval())
		rs := RangerState{Name: spec.Name, Driver: s.driverOf(spec), Trigger: spec.Trigger, Echo: spec.Echo, Interval: every,
			Samples: spec.samples(), Min: spec.Min, Max: spec.maxRange(), Topic: tp.Input(spec.Name),
			Temperature: spec.temperatureTopic(tp), Speed: SpeedOfSound(DefaultCelsius)}
		if c := live[spec]; c != nil {
			if c.scan != nil {
				rs.ScanStatus = c.scan.Status()
			}
			if v, ok := s.celsius(c); ok {
				rs.Celsius, rs.Speed = &v, SpeedOfSound(v)
			}
			c.mu.Lock()
			rs.Device = c.device
			c.mu.Unlock()
		}
		rs.Speed = math.Round(rs.Speed*10) / 10
		st.Rangers = append(st.Rangers, rs)
		ifs.Inputs = append(ifs.Inputs, services.Interface{Name: spec.Name, Topic: rs.Topic, Type: "number", Unit: UnitMetre,
			Mode: "distance", Min: &rs.Min, Max: &rs.Max, Interval: every})
	}
	ifs.State = st
	return ifs
}
