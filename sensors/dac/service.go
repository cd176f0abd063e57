package dac

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/rollcall/rollcall/sensors/iio"
	"github.com/rollcall/rollcall/services"
)

// Name is the service's name: the second level of its topics and its key
// in the agent's configuration file.
const Name = "dac"

func init() {
	services.Register(services.NewKind(Name, nil, func(env services.Env, cfg Config) (services.Service, error) {
		return New(cfg, ServiceOptions{Env: env})
	}))
}

// ServiceOptions are what New needs besides the configuration.
type ServiceOptions struct {
	Env services.Env
	// Open opens one output of a chip. nil opens the hardware the chip
	// names (see the package Open), or a Sim under Env.Sim; tests pass
	// outputs of their own.
	Open func(chip ChipConfig, channel int) (Output, error)
}

// ValuesFile is the file, in the state directory, that keeps the value
// of every output, so that a restart comes back to it.
const ValuesFile = "dac-outputs.json"

// saveEvery bounds how often values taken from a followed topic are
// written to ValuesFile; a set is written at once.
const saveEvery = time.Second

// Service is the dac service: a services.Runtime for the requests, the
// setup transaction, estop and the description, and the outputs. See
// the package documentation for its topics and payloads.
type Service struct {
	*services.Runtime[Config]
	env   services.Env
	clock services.Clock
	open  func(ChipConfig, int) (Output, error)
	store services.Store[savedValues]

	// Touched only on the runtime's goroutine.
	restore     map[string]savedValue // ValuesFile as found at start
	started     bool
	outs        []*output
	follows     map[string]bool // topics subscribed for outputs' follow
	saveTimer   services.Timer
	saveGen     uint64
	savePending bool

	// live is what a description shows of an output, readable while a
	// request is served.
	liveMu sync.Mutex
	live   map[string]liveOutput
}

var (
	_ services.Service          = (*Service)(nil)
	_ services.Device[Config]   = (*Service)(nil)
	_ services.Setter           = (*Service)(nil)
	_ services.Merger[Config]   = (*Service)(nil)
	_ services.Preparer[Config] = (*Service)(nil)
	_ services.Connector        = (*Service)(nil)
	_ services.Serving          = (*Service)(nil)
	_ services.FailsafeDelayer  = Config{}
)

// savedValues is ValuesFile: each output's code by name.
type savedValues struct {
	Outputs map[string]savedValue `json:"outputs"`
}

type savedValue struct {
	Raw int `json:"raw"`
	// Chip and Bits say what the code was for: a code is restored only
	// to an output of the same kind of chip.
	Chip string `json:"chip"`
	Bits int    `json:"bits"`
	// Volts is for whoever reads the file.
	Volts float64 `json:"volts"`
}

// output is one open output.
type output struct {
	spec  OutputConfig
	chip  ChipConfig
	dev   Output
	bits  int
	vref  float64
	raw   int
	field string
}

// liveOutput is an output's state a description shows.
type liveOutput struct {
	raw  int
	bits int
	vref float64
	dev  Output
}

// simChip is the chip a setup gets under --sim when it names none.
var simChip = ChipConfig{Name: "sim", Chip: "sim"}

// New builds the service from cfg, or from the setup saved in the state
// directory, and reads the outputs' last values. Outputs are opened by
// Run.
func New(cfg Config, opts ServiceOptions) (*Service, error) {
	env := opts.Env.WithDefaults()
	if env.Sim && len(cfg.Chips) == 0 {
		cfg.Chips = []ChipConfig{simChip}
	}
	s := &Service{env: env, clock: env.Clock, open: opts.Open, follows: map[string]bool{}, live: map[string]liveOutput{}}
	if env.StateDir != "" {
		s.store = services.Store[savedValues]{Path: filepath.Join(env.StateDir, ValuesFile)}
	}
	rt, err := services.NewRuntime(services.RuntimeOptions[Config]{Kind: Name, Env: env, Config: cfg, Schema: schemas()}, s)
	if err != nil {
		return nil, err
	}
	s.Runtime = rt
	saved, err := s.store.Load()
	switch {
	case err == nil:
		s.restore = saved.Outputs
	case errors.Is(err, fs.ErrNotExist):
	default:
		// The values are a convenience, not a safety matter like the halt:
		// start from init, keep the file for the operator.
		msg := "outputs start at init"
		if aside, aerr := s.store.SetAside(env.Clock.Now()); aerr == nil {
			msg += "; the file is kept as " + aside
		}
		rt.Logger().Error("output values unreadable", "err", err, "then", msg)
	}
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

// Merge implements services.Merger: chips and outputs by name.
func (s *Service) Merge(cur, patch Config, present map[string]bool) Config {
	return merge(cur, patch, present)
}

// Sim returns the simulated chip behind output name, when the service
// runs under --sim or the output's chip is a sim: tests and the demo
// read what was written and hook a simulated input to it.
func (s *Service) Sim(name string) (*Sim, bool) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	sim, ok := s.live[name].dev.(*Sim)
	return sim, ok
}

// openOutput opens channel of chip.
func (s *Service) openOutput(chip ChipConfig, channel int) (Output, error) {
	m, _ := chip.model()
	switch {
	case s.open != nil:
		return s.open(chip, channel)
	case s.env.Sim || m.Bus == "sim":
		return NewSim(m.Bits), nil
	}
	var bus string
	if sub := i2cBus.FindStringSubmatch(chip.bus()); sub != nil {
		bus = sub[1]
	}
	return Open(Options{
		Chip: chip.Chip, Bus: bus, Addr: uint16(chip.addr()),
		Sysfs: iio.Dir(s.env.Sysfs), Device: chip.device(), Channel: channel,
	})
}

// vrefOf is an open output's full scale: the configured one, or for an
// iio chip without one the driver's, when it knows it.
func vrefOf(chip ChipConfig, dev Output) float64 {
	if d, ok := dev.(*IIO); ok && chip.VRef == 0 && d.VRef() > 0 {
		return d.VRef()
	}
	return chip.vref()
}

// rawFor is the code for value on o, or an error at field naming the
// output's range.
func rawFor(o *output, value float64, field string) (int, error) {
	raw, err := Raw(o.spec.volts(value), o.bits, o.vref)
	if err != nil {
		return 0, services.Errorf(services.CodeInvalid, field, "%s", rangeMessage(o.spec, o.vref, value))
	}
	return raw, nil
}

// Apply implements services.Device: it makes next the open
// configuration, all or nothing. An output whose chip and channel did not
// change stays open at its value, whatever else of it changed; the
// others are opened and set to their init value (failsafe when safe),
// or at start to the value they had when the agent stopped. Outputs that
// leave the setup are released where they are.
func (s *Service) Apply(prev, next Config, safe bool) error {
	kept := map[string]*output{}
	for _, o := range s.outs {
		kept[o.spec.Name] = o
	}
	var outs, opened []*output
	fail := func(err error) error {
		for _, o := range opened {
			_ = o.dev.Close()
		}
		return err
	}
	for i, spec := range next.Outputs {
		chip, _ := next.chipOf(spec)
		field := fmt.Sprintf("outputs[%d]", i)
		if o, ok := kept[spec.Name]; ok && o.chip == chip && o.spec.Channel == spec.Channel {
			outs = append(outs, &output{spec: spec, chip: chip, dev: o.dev, bits: o.bits, vref: o.vref, raw: o.raw, field: field})
			continue
		}
		dev, err := s.openOutput(chip, spec.Channel)
		if err != nil {
			return fail(services.Errorf(services.CodeHardware, field, "%s: chip %s: %v", spec.Name, chip.Name, err))
		}
		m, _ := chip.model()
		o := &output{spec: spec, chip: chip, dev: dev, bits: m.Bits, vref: vrefOf(chip, dev), field: field}
		opened = append(opened, o)
		outs = append(outs, o)
		v, vfield := spec.Init, field+".init"
		if safe {
			v, vfield = spec.Failsafe, field+".failsafe"
		}
		raw, err := rawFor(o, v, vfield)
		if err != nil {
			return fail(err)
		}
		if _, err := rawFor(o, spec.Failsafe, field+".failsafe"); err != nil {
			return fail(err)
		}
		if sv, ok := s.restore[spec.Name]; ok && !s.started && !safe {
			if sv.Chip == chip.Chip && sv.Bits == o.bits && sv.Raw >= 0 && sv.Raw < 1<<o.bits {
				raw = sv.Raw
				s.Logger().Info("output restored to its last value", "output", spec.Name, "raw", raw)
			}
		}
		o.raw = raw
	}
	for _, o := range opened {
		if err := o.dev.Write(o.raw); err != nil {
			return fail(services.Errorf(services.CodeHardware, o.field, "%s: %v", o.spec.Name, err))
		}
	}
	for _, o := range s.outs {
		if n := findOutput(outs, o.spec.Name); n == nil || n.dev != o.dev {
			if err := o.dev.Close(); err != nil {
				s.Logger().Warn("close", "output", o.spec.Name, "err", err)
			}
		}
	}
	s.outs = outs
	s.liveMu.Lock()
	clear(s.live)
	s.liveMu.Unlock()
	for _, o := range outs {
		s.setLive(o)
	}
	for _, o := range opened {
		s.publish(o)
	}
	s.started = true
	s.restore = nil
	s.follow()
	if len(opened) > 0 {
		if err := s.saveNow(); err != nil {
			s.Logger().Error("cannot keep the outputs' values", "err", err)
		}
	}
	return nil
}

func findOutput(outs []*output, name string) *output {
	for _, o := range outs {
		if o.spec.Name == name {
			return o
		}
	}
	return nil
}

func (s *Service) setLive(o *output) {
	s.liveMu.Lock()
	s.live[o.spec.Name] = liveOutput{raw: o.raw, bits: o.bits, vref: o.vref, dev: o.dev}
	s.liveMu.Unlock()
}

// write drives o to raw and publishes it.
func (s *Service) write(o *output, raw int) error {
	if err := o.dev.Write(raw); err != nil {
		return fmt.Errorf("dac %s: %w", o.spec.Name, err)
	}
	o.raw = raw
	s.setLive(o)
	s.publish(o)
	return nil
}

// publish sends o's value, retained: JSON on output/<name>, the value
// alone on output/<name>/value.
func (s *Service) publish(o *output) {
	volts := Volts(o.raw, o.bits, o.vref)
	v := round(o.spec.value(volts))
	value := strconv.AppendFloat(nil, v, 'g', 9, 64)
	unit, _ := json.Marshal(o.spec.unit())
	var b bytes.Buffer
	b.WriteString(`{"value":`)
	b.Write(value)
	b.WriteString(`,"unit":`)
	b.Write(unit)
	b.WriteString(`,"raw":`)
	b.WriteString(strconv.Itoa(o.raw))
	b.WriteString(`,"volts":`)
	b.Write(strconv.AppendFloat(nil, round(volts), 'g', 9, 64))
	b.WriteString(`,"ts":"`)
	b.WriteString(s.clock.Now().UTC().Format(tsLayout))
	b.WriteString(`"}`)
	topic := s.Topics().Output(o.spec.Name)
	s.Values().PublishEach("output", o.spec.Name, v, services.Retained{Topic: topic, Payload: b.Bytes()}, services.Retained{Topic: topic + "/value", Payload: value})
}

// tsLayout is RFC 3339 with milliseconds, as ain's readings have it.
const tsLayout = "2006-01-02T15:04:05.000Z07:00"

// round drops float noise: 9 significant digits.
func round(v float64) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	p := math.Pow(10, 8-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}

// saveNow writes every output's value to ValuesFile.
func (s *Service) saveNow() error {
	s.savePending = false
	s.saveGen++
	if s.saveTimer != nil {
		s.saveTimer.Stop()
		s.saveTimer = nil
	}
	sv := savedValues{Outputs: map[string]savedValue{}}
	for _, o := range s.outs {
		sv.Outputs[o.spec.Name] = savedValue{Raw: o.raw, Chip: o.chip.Chip, Bits: o.bits, Volts: round(Volts(o.raw, o.bits, o.vref))}
	}
	return s.store.Save(sv)
}

// saveLater writes ValuesFile once saveEvery has passed, for values
// that come faster than a disk should be written.
func (s *Service) saveLater() {
	if s.savePending {
		return
	}
	s.savePending = true
	gen := s.saveGen
	s.saveTimer = s.clock.AfterFunc(saveEvery, func() {
		s.Do(func() {
			if s.savePending && s.saveGen == gen {
				if err := s.saveNow(); err != nil {
					s.Logger().Error("cannot keep the outputs' values", "err", err)
				}
			}
		})
	})
}

// Failsafe implements services.Device: every output to its failsafe
// value, kept in ValuesFile, so that a restart comes back there.
func (s *Service) Failsafe() error {
	var errs []error
	for _, o := range s.outs {
		raw, err := rawFor(o, o.spec.Failsafe, o.field+".failsafe")
		if err == nil {
			err = s.write(o, raw)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.saveNow(); err != nil {
		errs = append(errs, fmt.Errorf("keep the failsafe values: %w", err))
	}
	return errors.Join(errs...)
}

// Close implements services.Device: outputs to failsafe and released.
// ValuesFile keeps the values they had, so that a restart (an upgrade, a
// reboot) comes back to them rather than to failsafe. It does not
// publish: the session may be going away with us.
func (s *Service) Close() error {
	var errs []error
	if s.savePending {
		if err := s.saveNow(); err != nil {
			errs = append(errs, fmt.Errorf("keep the outputs' values: %w", err))
		}
	}
	if s.saveTimer != nil {
		s.saveTimer.Stop()
	}
	for _, o := range s.outs {
		raw, err := Raw(o.spec.volts(o.spec.Failsafe), o.bits, o.vref)
		if err == nil {
			err = o.dev.Write(raw)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("dac %s: failsafe on shutdown: %w", o.spec.Name, err))
		}
		if err := o.dev.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.outs = nil
	return errors.Join(errs...)
}

// follow subscribes to the topics outputs follow, once each.
func (s *Service) follow() {
	bus := s.Bus()
	if bus == nil {
		return
	}
	for _, o := range s.outs {
		if o.spec.Follow == "" || s.follows[o.spec.Follow] {
			continue
		}
		topic := o.spec.Follow
		if err := bus.Subscribe(topic, func(m services.Message) {
			s.Do(func() { s.followed(topic, m.Payload) })
		}); err != nil {
			s.Logger().Error("follow", "topic", topic, "err", err)
			continue
		}
		s.follows[topic] = true
	}
}

// followed drives every output following topic to the value in payload:
// a plain number, or a JSON object with a numeric "value" (an ain
// reading; its other members are ignored). The value is clamped to the
// output's range. Nothing changes while halted.
func (s *Service) followed(topic string, payload []byte) {
	if s.Halted() || len(bytes.TrimSpace(payload)) == 0 {
		return
	}
	v, err := followValue(payload)
	if err != nil {
		s.Logger().Warn("follow: value not usable", "topic", topic, "err", err)
		return
	}
	for _, o := range s.outs {
		if o.spec.Follow != topic {
			continue
		}
		volts := min(max(o.spec.volts(v), 0), o.vref)
		raw, err := Raw(volts, o.bits, o.vref)
		if err != nil || raw == o.raw {
			continue
		}
		if err := s.write(o, raw); err != nil {
			s.Logger().Error("follow", "output", o.spec.Name, "err", err)
			continue
		}
		s.saveLater()
	}
}

// followValue reads a followed topic's payload.
func followValue(payload []byte) (float64, error) {
	b := bytes.TrimSpace(payload)
	if b[0] == '{' {
		var r struct {
			Value *float64 `json:"value"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Value == nil {
			return 0, fmt.Errorf("%q has no numeric \"value\"", services.Truncate(string(b), 60))
		}
		return *r.Value, nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a number", services.Truncate(string(b), 60))
	}
	return v, nil
}

// --- set ---

// SetResult is the data of a successful set result.
type SetResult struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Volts float64 `json:"volts"`
	Raw   int     `json:"raw"`
}

type setCmd struct {
	o   *output
	raw int
}

// ParseSet implements services.Setter: a plain number (the value, in the
// output's unit), {"value": n} or {"raw": code}, with an optional "id".
func (s *Service) ParseSet(name string, payload []byte) (any, error) {
	o := findOutput(s.outs, name)
	if o == nil {
		return nil, services.Errorf(services.CodeNotFound, "", "no output named %q", services.Truncate(name, 64))
	}
	b := bytes.TrimSpace(payload)
	if len(b) == 0 {
		return nil, services.Errorf(services.CodeMalformed, "", "empty payload; want a value such as 1.5, {\"value\":1.5} or {\"raw\":2048}")
	}
	if b[0] != '{' {
		v, err := strconv.ParseFloat(string(b), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, services.Errorf(services.CodeMalformed, "value", "%q is not a number; want a value such as 1.5, {\"value\":1.5} or {\"raw\":2048}", services.Truncate(string(b), 40))
		}
		raw, err := rawFor(o, v, "value")
		return setCmd{o: o, raw: raw}, err
	}
	var req struct {
		ID    any      `json:"id"`
		Value *float64 `json:"value"`
		Raw   *int     `json:"raw"`
	}
	if errs := services.Decode(b, 0, &req); errs != nil {
		return nil, errs
	}
	switch {
	case req.Value != nil && req.Raw != nil:
		return nil, services.Errorf(services.CodeInvalid, "raw", "give value or raw, not both")
	case req.Raw != nil:
		if *req.Raw < 0 || *req.Raw >= 1<<o.bits {
			return nil, services.Errorf(services.CodeInvalid, "raw", "%d is outside 0–%d, the %d-bit codes of the %s", *req.Raw, 1<<o.bits-1, o.bits, o.chip.Chip)
		}
		return setCmd{o: o, raw: *req.Raw}, nil
	case req.Value != nil:
		raw, err := rawFor(o, *req.Value, "value")
		return setCmd{o: o, raw: raw}, err
	}
	return nil, services.Errorf(services.CodeMalformed, "value", "want {\"value\":…} or {\"raw\":…}")
}

// Set implements services.Setter: the output takes the code, which is
// published and written to ValuesFile before the result says ok.
func (s *Service) Set(cmd any) (any, error) {
	c := cmd.(setCmd)
	o := c.o
	if err := s.write(o, c.raw); err != nil {
		return nil, err
	}
	volts := Volts(o.raw, o.bits, o.vref)
	res := SetResult{Name: o.spec.Name, Value: round(o.spec.value(volts)), Unit: o.spec.unit(), Volts: round(volts), Raw: o.raw}
	if err := s.saveNow(); err != nil {
		return nil, services.Errorf(services.CodeStorage, "", "%s is set to %g %s, but the value could not be kept for a restart: %v", o.spec.Name, res.Value, res.Unit, err)
	}
	return res, nil
}

// --- description ---

// ChipState is one chip as the description's state lists it.
type ChipState struct {
	Name string `json:"name"`
	Chip string `json:"chip"`
	// Driver is what is driven: the chip, or sim under --sim.
	Driver string  `json:"driver"`
	Bits   int     `json:"bits"`
	VRef   float64 `json:"vref"`
}

// OutputState is one output as the description's state lists it.
type OutputState struct {
	Name    string `json:"name"`
	Chip    string `json:"chip"`
	Channel int    `json:"channel"`
	// Topic carries the value as JSON, ValueTopic the value alone; Set
	// drives it.
	Topic      string   `json:"topic"`
	ValueTopic string   `json:"value_topic"`
	Set        string   `json:"set"`
	Unit       string   `json:"unit"`
	Min        *float64 `json:"min,omitempty"`
	Max        *float64 `json:"max,omitempty"`
	Init       float64  `json:"init"`
	Failsafe   float64  `json:"failsafe"`
	Follow     string   `json:"follow,omitempty"`
	// Value, Volts and Raw are what the output is driven to; absent while
	// it is not open.
	Value *float64 `json:"value,omitempty"`
	Volts *float64 `json:"volts,omitempty"`
	Raw   *int     `json:"raw,omitempty"`
}

// State is the service's own part of its Description.State, beside the
// runtime's halted, failsafe, config and schema.
type State struct {
	Chips   []ChipState   `json:"chips"`
	Outputs []OutputState `json:"outputs"`
}

// Interfaces implements services.Device: every output of cfg with its
// unit, range and topics, and the chips' and outputs' state.
func (s *Service) Interfaces(cfg Config) services.Interfaces {
	s.liveMu.Lock()
	live := make(map[string]liveOutput, len(s.live))
	for k, v := range s.live {
		live[k] = v
	}
	s.liveMu.Unlock()
	tp := s.Topics()
	st := State{Chips: []ChipState{}, Outputs: []OutputState{}}
	vrefs := map[string]float64{} // by chip name, as the outputs found them
	var ifs services.Interfaces
	for _, o := range cfg.Outputs {
		chip, _ := cfg.chipOf(o)
		m, _ := chip.model()
		vref := chip.vref()
		l, open := live[o.Name]
		if open {
			vref = l.vref
			vrefs[chip.Name] = l.vref
		}
		topic := tp.Output(o.Name)
		ost := OutputState{Name: o.Name, Chip: chip.Name, Channel: o.Channel, Topic: topic, ValueTopic: topic + "/value",
			Set: tp.Set(o.Name), Unit: o.unit(), Init: o.Init, Failsafe: o.Failsafe, Follow: o.Follow}
		if m.Bits > 0 {
			lo, hi := o.value(0), o.value(Volts(1<<m.Bits-1, m.Bits, vref))
			if lo > hi {
				lo, hi = hi, lo
			}
			lo, hi = round(lo), round(hi)
			ost.Min, ost.Max = &lo, &hi
		}
		if open {
			volts := round(Volts(l.raw, l.bits, l.vref))
			value := round(o.value(volts))
			raw := l.raw
			ost.Value, ost.Volts, ost.Raw = &value, &volts, &raw
		}
		st.Outputs = append(st.Outputs, ost)
		ifs.Outputs = append(ifs.Outputs, services.Interface{
			Name: o.Name, Topic: topic, Type: "number", Unit: ost.Unit, Mode: "output", Set: ost.Set, Min: ost.Min, Max: ost.Max,
		})
	}
	for _, c := range cfg.Chips {
		m, _ := c.model()
		cs := ChipState{Name: c.Name, Chip: c.Chip, Driver: c.Chip, Bits: m.Bits, VRef: c.vref()}
		if s.env.Sim {
			cs.Driver = "sim"
		}
		if v, ok := vrefs[c.Name]; ok {
			cs.VRef = v
		}
		st.Chips = append(st.Chips, cs)
	}
	ifs.State = st
	return ifs
}
