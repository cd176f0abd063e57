package ain

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"sync"

	"github.com/rollcall/rollcall/sensors/iio"
	"github.com/rollcall/rollcall/services"
)

// Name is the service's name: the second level of its topics and its key
// in the agent's configuration file.
const Name = "ain"

func init() {
	services.Register(services.NewKind(Name, nil, func(env services.Env, cfg Config) (services.Service, error) {
		return New(cfg, ServiceOptions{Env: env})
	}))
}

// ServiceOptions are what New needs besides the configuration.
type ServiceOptions struct {
	Env services.Env
	// Open opens a chip's converter. nil opens the hardware the chip
	// names (see the package Open), or a Sim for every chip under Env.Sim;
	// tests pass converters of their own.
	Open func(ChipConfig) (Converter, error)
}

// Service is the ain service: a services.Runtime for the requests, the
// setup transaction and the description, and a scanner per channel that
// reads it on its own timer and publishes what it reads. See the package
// documentation for its topics and payloads.
type Service struct {
	*services.Runtime[Config]
	env   services.Env
	clock services.Clock
	open  func(ChipConfig) (Converter, error)

	started bool // the first Apply is done; runtime goroutine only

	// mu guards the maps, which Apply replaces on the runtime's
	// goroutine and Interfaces and Health read from any.
	mu    sync.Mutex
	chips map[string]*chip
	scans map[string]*scanner
}

var (
	_ services.Service          = (*Service)(nil)
	_ services.Device[Config]   = (*Service)(nil)
	_ services.HealthReporter   = (*Service)(nil)
	_ services.Merger[Config]   = (*Service)(nil)
	_ services.Preparer[Config] = (*Service)(nil)
	_ services.Serving          = (*Service)(nil)
)

// simChip is the chip a setup gets under --sim when it names none, so
// that {"channels":[{"name":"soil","channel":0}]} works on any machine.
var simChip = ChipConfig{Name: "sim", Chip: ChipSim}

// New builds the service from cfg, or from the setup saved in the state
// directory. Chips are opened and channels read from Run on.
func New(cfg Config, opts ServiceOptions) (*Service, error) {
	env := opts.Env.WithDefaults()
	s := &Service{env: env, clock: env.Clock, open: opts.Open, chips: map[string]*chip{}, scans: map[string]*scanner{}}
	if env.Sim && len(cfg.Chips) == 0 {
		cfg.Chips = []ChipConfig{simChip}
	}
	rt, err := services.NewRuntime(services.RuntimeOptions[Config]{Kind: Name, Env: env, Config: cfg, Schema: schemas()}, s)
	if err != nil {
		return nil, err
	}
	s.Runtime = rt
	return s, nil
}

// Prepare implements services.Preparer: a setup without "chips" keeps the
// chips there are, and under --sim a setup with none gets a sim chip.
func (s *Service) Prepare(cur, next Config) (Config, services.Errors) {
	if next.Chips == nil {
		next.Chips = cur.Chips
	}
	if s.env.Sim && len(next.Chips) == 0 {
		next.Chips = []ChipConfig{simChip}
	}
	return next, nil
}

// Merge implements services.Merger: chips and channels by name.
func (s *Service) Merge(cur, patch Config, present map[string]bool) Config {
	return merge(cur, patch)
}

// Sim returns the simulated converter of the chip called name, when the
// chip is a sim or the service runs under --sim and the chip is open:
// tests and demos pin its inputs.
func (s *Service) Sim(name string) (*Sim, bool) {
	s.mu.Lock()
	c := s.chips[name]
	s.mu.Unlock()
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sim, ok := c.conv.(*Sim)
	return sim, ok
}

// openerFor returns how to open the chip spec describes.
func (s *Service) openerFor(spec ChipConfig) func() (Converter, error) {
	switch {
	case s.open != nil:
		return func() (Converter, error) { return s.open(spec) }
	case s.env.Sim || spec.Chip == ChipSim:
		h := fnv.New64a()
		h.Write([]byte(spec.Name))
		seed := h.Sum64()
		return func() (Converter, error) { return NewSim(seed, s.clock.Now), nil }
	}
	return func() (Converter, error) {
		return Open(Options{
			Chip: spec.Chip, Bus: periphBus(spec), Addr: uint16(spec.addr()), VRef: spec.VRef,
			SpeedHz: spec.SpeedHz, Sysfs: iio.Dir(s.env.Sysfs), Device: spec.Device,
		})
	}
}

// periphBus is periph's name for the chip's bus: "1" for i2c1, "SPI0.1"
// for chip select 1 of spi0.
func periphBus(spec ChipConfig) string {
	m := busName.FindStringSubmatch(spec.bus())
	switch {
	case m == nil:
		return ""
	case m[1] == "spi":
		return fmt.Sprintf("SPI%s.%d", m[2], spec.CS)
	}
	return m[2]
}

// Apply implements services.Device. Chips whose configuration did not
// change stay open and channels that did not change keep reading, their
// deadband and counts intact; the rest are opened anew. On a setup, a
// chip that cannot be opened (or an iio device without a channel's
// input) fails the setup and nothing changes. At start, the first
// Apply, it does not: the chip's channels report read errors and retry,
// so that a sensor unplugged at boot comes back when it is plugged in.
func (s *Service) Apply(prev, next Config, safe bool) error {
	s.mu.Lock()
	oldChips, oldScans := s.chips, s.scans
	s.mu.Unlock()

	chips := services.Reconcile(slices.Collect(maps.Values(oldChips)), len(next.Chips),
		func(c *chip, i int) bool { return c.spec == next.Chips[i] },
		func(i int) *chip { return &chip{spec: next.Chips[i], open: s.openerFor(next.Chips[i])} })
	if c, err := chips.Open(!s.started, (*chip).ensure, s.retry, closeNew); err != nil {
		return services.Errorf(services.CodeHardware, fmt.Sprintf("chips[%d]", slices.Index(chips.Next, c)), "chip %s: %v", c.spec.Name, err)
	}
	byName := make(map[string]*chip, len(chips.Next))
	for _, c := range chips.Next {
		byName[c.spec.Name] = c
	}
	if errs := s.checkDevices(next, byName); errs != nil && s.started {
		chips.Discard(closeNew)
		return errs
	}

	// A channel that moved in the list starts again: its read errors must
	// name its new place.
	chipOf := func(i int) *chip {
		cc, _ := next.chipOf(next.Channels[i])
		return byName[cc.Name]
	}
	field := func(i int) string { return fmt.Sprintf("channels[%d]", i) }
	scans := services.Reconcile(slices.Collect(maps.Values(oldScans)), len(next.Channels),
		func(sc *scanner, i int) bool {
			return sc.chip == chipOf(i) && sc.spec.equal(next.Channels[i]) && sc.field == field(i)
		},
		func(i int) *scanner { return s.newScanner(next.Channels[i], field(i), chipOf(i)) })
	for _, sc := range scans.Gone {
		sc.stop()
	}
	for _, c := range chips.Gone {
		c.close()
	}
	// Started before they are shown, so the description never sees a
	// channel without its scan.
	for _, sc := range scans.New {
		sc.start()
	}
	byChannel := make(map[string]*scanner, len(scans.Next))
	for _, sc := range scans.Next {
		byChannel[sc.spec.Name] = sc
	}
	s.mu.Lock()
	s.chips, s.scans = byName, byChannel
	s.mu.Unlock()
	s.started = true
	return nil
}

// retry logs a chip that cannot be opened at start: its channels' reads
// try again.
func (s *Service) retry(c *chip, err error) {
	s.Logger().Error("cannot open chip; its channels will retry", "chip", c.spec.Name, "err", err)
}

// closeNew closes a chip a failed setup opened.
func closeNew(c *chip) { _ = c.close() }

// checkDevices checks the channels of iio chips against the inputs their
// device really has, once it is open.
func (s *Service) checkDevices(cfg Config, chips map[string]*chip) services.Errors {
	var errs services.Errors
	for i, spec := range cfg.Channels {
		cc, _ := cfg.chipOf(spec)
		c := chips[cc.Name]
		if c == nil {
			continue
		}
		c.mu.Lock()
		d, ok := c.conv.(*IIO)
		c.mu.Unlock()
		if !ok {
			continue
		}
		if err := d.Chip().Check(spec.channel()); err != nil {
			field, msg := "", err.Error()
			var fe *FieldError
			if errors.As(err, &fe) {
				field, msg = fe.Field, fe.Msg
			}
			if field == "input" {
				field = "channel"
			}
			errs = append(errs, services.Errorf(services.CodeInvalid, join(fmt.Sprintf("channels[%d]", i), field), "%s: %s", d.name(), msg))
		}
	}
	return errs
}

// Failsafe implements services.Device: the service drives nothing.
func (s *Service) Failsafe() error { return nil }

// Close implements services.Device: every channel stops reading and every
// chip is released.
func (s *Service) Close() error {
	s.mu.Lock()
	chips, scans := s.chips, s.scans
	s.chips, s.scans = map[string]*chip{}, map[string]*scanner{}
	s.mu.Unlock()
	for _, sc := range scans {
		sc.stop()
	}
	var errs []error
	for _, c := range chips {
		errs = append(errs, c.close())
	}
	return errors.Join(errs...)
}

// Health implements services.HealthReporter: the channels failing to
// read, with their counts and last errors.
func (s *Service) Health() string {
	s.mu.Lock()
	scans := make([]*services.Scan, 0, len(s.scans))
	for _, name := range slices.Sorted(maps.Keys(s.scans)) {
		if sc := s.scans[name]; sc.scan != nil {
			scans = append(scans, sc.scan)
		}
	}
	s.mu.Unlock()
	return services.ScanHealth(scans)
}

// ChipState is one chip as the description's state lists it.
type ChipState struct {
	Name string `json:"name"`
	Chip string `json:"chip"`
	// Driver is what converts: the chip, or sim under --sim.
	Driver string `json:"driver"`
	Open   bool   `json:"open"`
	// Error is why the chip could not be opened; its channels retry.
	Error string `json:"error,omitempty"`
}

// ChannelState is one channel as the description's state lists it.
type ChannelState struct {
	Name    string `json:"name"`
	Chip    string `json:"chip"`
	Channel int    `json:"channel"`
	Neg     *int   `json:"neg,omitempty"`
	// Topic carries the reading as JSON, ValueTopic the value alone.
	Topic      string `json:"topic"`
	ValueTopic string `json:"value_topic"`
	Unit       string `json:"unit"`
	// Min and Max are the values the chip's range gives, where known.
	Min      *float64          `json:"min,omitempty"`
	Max      *float64          `json:"max,omitempty"`
	Interval services.Duration `json:"interval"`
	Deadband float64           `json:"deadband"`
	// Value is the last value published, absent before the first.
	Value any `json:"value,omitempty"`
	// Published counts the readings that went out; the deadband holds
	// back the rest of the reads.
	Published uint64 `json:"published"`
	// ScanStatus counts the reads, errors and missed reads since the
	// channel started, and has the last error.
	services.ScanStatus
}

// State is the service's own part of its Description.State, beside the
// runtime's halted, config and schema.
type State struct {
	Chips    []ChipState    `json:"chips"`
	Channels []ChannelState `json:"channels"`
}

// Interfaces implements services.Device: every channel of cfg as an input
// with its unit, range and interval, and the chips' and channels' state.
func (s *Service) Interfaces(cfg Config) services.Interfaces {
	s.mu.Lock()
	chips := make(map[string]*chip, len(s.chips))
	for k, v := range s.chips {
		chips[k] = v
	}
	scans := make(map[string]*scanner, len(s.scans))
	for k, v := range s.scans {
		scans[k] = v
	}
	s.mu.Unlock()
	tp := s.Topics()
	st := State{Chips: []ChipState{}, Channels: []ChannelState{}}
	for _, spec := range cfg.Chips {
		cs := ChipState{Name: spec.Name, Chip: spec.Chip, Driver: spec.Chip}
		if s.env.Sim {
			cs.Driver = ChipSim
		}
		if c := chips[spec.Name]; c != nil && c.spec == spec {
			c.mu.Lock()
			cs.Open = c.conv != nil
			if c.err != nil {
				cs.Error = c.err.Error()
			}
			c.mu.Unlock()
		}
		st.Chips = append(st.Chips, cs)
	}
	var ifs services.Interfaces
	for _, spec := range cfg.Channels {
		cc, _ := cfg.chipOf(spec)
		topic := tp.Input(spec.Name)
		cs := ChannelState{
			Name: spec.Name, Chip: cc.Name, Channel: spec.Channel, Neg: spec.Neg,
			Topic: topic, ValueTopic: topic + "/value", Unit: spec.unit(),
			Interval: services.Duration(spec.interval()), Deadband: spec.Deadband,
		}
		if lo, hi, ok := valueRange(cc, spec); ok {
			cs.Min, cs.Max = &lo, &hi
		}
		if v, ok := s.Values().Get("input", spec.Name); ok {
			cs.Value = v
		}
		if sc := scans[spec.Name]; sc != nil && sc.spec.equal(spec) {
			cs.ScanStatus, cs.Published = sc.status()
		}
		st.Channels = append(st.Channels, cs)
		ifs.Inputs = append(ifs.Inputs, services.Interface{
			Name: spec.Name, Topic: topic, Type: "number", Unit: cs.Unit, Mode: "channel",
			Min: cs.Min, Max: cs.Max, Interval: cs.Interval,
		})
	}
	ifs.State = st
	return ifs
}

// valueRange is the range of a channel's value: the chip's range in
// volts through scale and offset; false where the chip does not say (an
// iio device without vref).
func valueRange(cc ChipConfig, ch ChannelConfig) (lo, hi float64, ok bool) {
	diff := ch.Neg != nil
	switch cc.Chip {
	case ChipMCP3008:
		// A pseudo-differential pair reads 0 when + is below −.
		lo, hi = 0, cc.vref()*1023/1024
	case ChipPCF8591:
		lo, hi = 0, cc.vref()*255/256
		if diff {
			lo, hi = -cc.vref()/2, cc.vref()*127/256
		}
	case ChipADS1115, ChipADS1015:
		model, _ := LookupChip(cc.Chip)
		r := model.WithDefaults(ch.channel()).Range
		lo, hi = 0, r
		if diff {
			lo = -r
		}
	case ChipSim:
		lo, hi = 0, simVRef
		if diff {
			lo = -simVRef
		}
	case ChipIIO:
		if cc.VRef == 0 {
			return 0, 0, false
		}
		lo, hi = 0, cc.VRef
	default:
		return 0, 0, false
	}
	lo, hi = lo*ch.scale()+ch.Offset, hi*ch.scale()+ch.Offset
	if lo > hi {
		lo, hi = hi, lo
	}
	return round(lo), round(hi), true
}

// round drops the float noise of scale and offset: 9 significant
// digits are more than any ADC here resolves.
func round(v float64) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	p := math.Pow(10, 8-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}
