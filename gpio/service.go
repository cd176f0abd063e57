package gpio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"

	"github.com/rollcall/rollcall/services"
)

// Name is the service's name: the second level of its topics and its key
// in the agent's configuration file.
const Name = "gpio"

func init() {
	services.Register(services.NewKind(Name, nil, func(env services.Env, cfg Config) (services.Service, error) {
		return New(cfg, Options{Env: env})
	}))
}

// Options are what New needs besides the configuration.
type Options struct {
	Env services.Env
	// Driver overrides the driver named by Config.Driver (tests).
	Driver Driver
}

// Service is the GPIO service: a services.Runtime for the requests, the
// setup transaction, estop and the description, and the pins. See the
// package documentation for its topics and payloads.
type Service struct {
	*services.Runtime[Config]
	driver Driver
	clock  services.Clock

	// Touched only on the runtime's goroutine.
	outs    []*output
	ins     []*input
	follows map[string]bool // topics subscribed for outputs' follow

	// live is what a description shows of an output besides its value,
	// readable while a request is served.
	liveMu sync.Mutex
	live   map[string]liveOutput
}

// liveOutput is an output's state a description shows.
type liveOutput struct {
	pulsing bool
	period  int
}

var (
	_ services.Service             = (*Service)(nil)
	_ services.Device[Config]      = (*Service)(nil)
	_ services.Setter              = (*Service)(nil)
	_ services.Merger[Config]      = (*Service)(nil)
	_ services.Preparer[Config]    = (*Service)(nil)
	_ services.Connector           = (*Service)(nil)
	_ services.Serving             = (*Service)(nil)
	_ services.FailsafeDelayer     = Config{}
	_ interface{ Driver() Driver } = (*Service)(nil)
)

// output is one open output or PWM pin.
type output struct {
	name   string
	spec   any // OutputPin or PWMPin, compared to keep unchanged pins open
	pin    int
	pwm    bool
	active bool // ActiveLow
	safe   float64
	follow string
	line   OutputLine
	pline  PWMLine

	value    float64 // logical level 0/1, or duty in percent
	period   int     // µs, PWM only
	pulsing  bool
	restore  float64
	pulse    services.Timer
	pulseGen uint64
}

// New builds the service from cfg, or from the setup saved in the state
// directory, and picks its driver. Pins are opened by Run.
func New(cfg Config, opts Options) (*Service, error) {
	env := opts.Env.WithDefaults()
	if env.Sim {
		cfg.Driver = DriverSim
	}
	s := &Service{clock: env.Clock, follows: map[string]bool{}, live: map[string]liveOutput{}}
	rt, err := services.NewRuntime(services.RuntimeOptions[Config]{Kind: Name, Env: env, Config: cfg, Schema: schemas()}, s)
	if err != nil {
		return nil, err
	}
	s.Runtime = rt
	start := rt.Config()
	s.driver = opts.Driver
	if s.driver == nil {
		name := start.Driver
		if env.Sim {
			name = DriverSim
		}
		switch name {
		case DriverSim:
			s.driver = NewSim(start.Wiring...)
		default:
			d, err := NewPeriph(PeriphOptions{Logger: rt.Logger(), PWMRoot: env.Sysfs + "/class/pwm"})
			if err != nil {
				return nil, fmt.Errorf("gpio: %w", err)
			}
			s.driver = d
		}
	}
	return s, nil
}

// Driver is the service's driver: under --sim the simulated board, whose
// inputs tests and demos can drive.
func (s *Service) Driver() Driver { return s.driver }

// Prepare implements services.Preparer: the driver cannot change while
// the agent runs.
func (s *Service) Prepare(cur, next Config) (Config, services.Errors) {
	if next.Driver == "" {
		next.Driver = s.driver.Name()
	}
	if next.Driver != s.driver.Name() {
		return next, services.Errors{services.Errorf(services.CodeInvalid, "driver", "the driver is %s and cannot change while the agent runs", s.driver.Name())}
	}
	return next, nil
}

// Merge implements services.Merger.
func (s *Service) Merge(cur, patch Config, present map[string]bool) Config {
	return merge(cur, patch, present)
}

// --- hardware, on the runtime's goroutine ---

// drive sets o to v (level or duty) and, for PWM, periodUS when > 0.
func (s *Service) drive(o *output, v float64, periodUS int) error {
	if o.pwm {
		var period time.Duration
		if periodUS > 0 {
			period = periodOf(periodUS)
		}
		if err := o.pline.Set(dutyOf(v), period); err != nil {
			return fmt.Errorf("gpio %s: GPIO %d: %w", o.name, o.pin, err)
		}
		if periodUS > 0 {
			o.period = periodUS
		}
	} else {
		if err := o.line.Out(physical(v == 1, o.active)); err != nil {
			return fmt.Errorf("gpio %s: GPIO %d: %w", o.name, o.pin, err)
		}
	}
	o.value = v
	s.setLive(o)
	return nil
}

func physical(logical, activeLow bool) pgpio.Level { return pgpio.Level(logical != activeLow) }

func (s *Service) setLive(o *output) {
	s.liveMu.Lock()
	s.live[o.name] = liveOutput{pulsing: o.pulsing, period: o.period}
	s.liveMu.Unlock()
}

func (s *Service) cancelPulse(o *output) {
	if o.pulse != nil {
		o.pulse.Stop()
		o.pulse = nil
	}
	o.pulsing = false
	o.pulseGen++
}

// Failsafe implements services.Device.
func (s *Service) Failsafe() error {
	var errs []error
	for _, o := range s.outs {
		s.cancelPulse(o)
		if err := s.drive(o, o.safe, 0); err != nil {
			errs = append(errs, err)
		}
		s.publishOutput(o)
	}
	return errors.Join(errs...)
}

// Close implements services.Device: outputs to failsafe, every line
// released. It does not publish: the session may be going away with us.
func (s *Service) Close() error {
	var errs []error
	for _, o := range s.outs {
		s.cancelPulse(o)
		if err := s.drive(o, o.safe, 0); err != nil {
			errs = append(errs, fmt.Errorf("failsafe on shutdown: %w", err))
		}
		if err := o.close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, in := range s.ins {
		if err := in.close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.outs, s.ins = nil, nil
	return errors.Join(append(errs, s.driver.Close())...)
}

func (o *output) close() error {
	if o.pwm {
		return o.pline.Close()
	}
	return o.line.Close()
}

func (s *Service) openOutput(spec any, value float64) (*output, error) {
	o := &output{spec: spec}
	var err error
	switch p := spec.(type) {
	case OutputPin:
		o.name, o.pin, o.active, o.safe, o.follow = p.Name, p.Pin, p.ActiveLow, float64(p.Failsafe), p.Follow
		o.line, err = s.driver.Output(p.Pin, physical(value == 1, p.ActiveLow))
	case PWMPin:
		o.name, o.pin, o.pwm, o.safe, o.period, o.follow = p.Name, p.Pin, true, p.Failsafe, p.Period, p.Follow
		if o.period == 0 {
			o.period = DefaultPeriod
		}
		o.pline, err = s.driver.PWM(p.Pin, dutyOf(value), periodOf(p.Period), p.Pol == "inverted")
	}
	if err != nil {
		return nil, fmt.Errorf("gpio %s: GPIO %d: %w", o.name, o.pin, err)
	}
	o.value = value
	s.setLive(o)
	return o, nil
}

func (s *Service) openInput(spec InputPin) (*input, error) {
	line, err := s.driver.Input(spec.Pin, pullOf(spec.Pull))
	if err != nil {
		return nil, fmt.Errorf("gpio %s: GPIO %d: %w", spec.Name, spec.Pin, err)
	}
	topic := s.Topics().Input(spec.Name)
	in := newInput(spec, line, s.clock, func(level int) {
		p := []byte(strconv.Itoa(level))
		s.Values().Publish("input", spec.Name, topic, level, p)
		if spec.OnChange != "" {
			s.Send(spec.OnChange, false, p)
		}
	})
	in.start()
	return in, nil
}

func pullOf(p string) pgpio.Pull {
	switch p {
	case "up":
		return pgpio.PullUp
	case "down":
		return pgpio.PullDown
	case "none":
		return pgpio.Float
	}
	return pgpio.PullNoChange
}

// Apply implements services.Device: it makes next the open configuration,
// all or nothing. Pins whose settings did not change stay open, untouched;
// the rest are closed and opened anew. If opening fails, every change is
// undone and the error returned.
func (s *Service) Apply(prev, next Config, safe bool) error {
	wantOut := map[any]bool{}
	for _, p := range next.Output {
		wantOut[p] = true
	}
	for _, p := range next.PWM {
		wantOut[p] = true
	}
	wantIn := map[InputPin]bool{}
	for _, p := range next.Input {
		wantIn[p] = true
	}
	keptOut := map[any]*output{}
	keptIn := map[InputPin]*input{}
	var closedOut []*output
	var closedIn []InputPin
	for _, o := range s.outs {
		if wantOut[o.spec] {
			keptOut[o.spec] = o
			continue
		}
		s.cancelPulse(o)
		if err := o.close(); err != nil {
			s.Logger().Warn("close", "pin", o.name, "err", err)
		}
		closedOut = append(closedOut, o)
	}
	for _, in := range s.ins {
		if wantIn[in.spec] {
			keptIn[in.spec] = in
			continue
		}
		if err := in.close(); err != nil {
			s.Logger().Warn("close", "pin", in.spec.Name, "err", err)
		}
		closedIn = append(closedIn, in.spec)
	}
	wirer, _ := s.driver.(interface{ SetWiring([]Wire) })
	if wirer != nil {
		wirer.SetWiring(next.Wiring)
	}

	var outs, opened []*output
	var ins, openedIn []*input
	fail := func(err error) error {
		for _, o := range opened {
			_ = o.close()
		}
		for _, in := range openedIn {
			_ = in.close()
		}
		if wirer != nil {
			wirer.SetWiring(prev.Wiring)
		}
		// Reopen what was closed, at the level it had.
		var reopened []*output
		for _, o := range closedOut {
			n, err := s.openOutput(o.spec, o.value)
			if err != nil {
				s.Logger().Error("rollback", "pin", o.name, "err", err)
				s.SetHealth("rollback failed: " + err.Error())
				continue
			}
			reopened = append(reopened, n)
		}
		var reopenedIn []*input
		for _, spec := range closedIn {
			n, err := s.openInput(spec)
			if err != nil {
				s.Logger().Error("rollback", "pin", spec.Name, "err", err)
				s.SetHealth("rollback failed: " + err.Error())
				continue
			}
			reopenedIn = append(reopenedIn, n)
		}
		s.outs = order(prev, append(reopened, mapValues(keptOut)...))
		s.ins = orderIn(prev, append(reopenedIn, mapValues(keptIn)...))
		return err
	}
	openOne := func(spec any, init, safeV float64) error {
		if o, ok := keptOut[spec]; ok {
			outs = append(outs, o)
			return nil
		}
		v := init
		if safe {
			v = safeV
		}
		o, err := s.openOutput(spec, v)
		if err != nil {
			return err
		}
		opened = append(opened, o)
		outs = append(outs, o)
		return nil
	}
	for _, p := range next.Output {
		if err := openOne(p, float64(p.Init), float64(p.Failsafe)); err != nil {
			return fail(err)
		}
	}
	for _, p := range next.PWM {
		if err := openOne(p, p.Init, p.Failsafe); err != nil {
			return fail(err)
		}
	}
	for _, p := range next.Input {
		if in, ok := keptIn[p]; ok {
			ins = append(ins, in)
			continue
		}
		in, err := s.openInput(p)
		if err != nil {
			return fail(err)
		}
		openedIn = append(openedIn, in)
		ins = append(ins, in)
	}
	s.outs, s.ins = outs, ins
	s.liveMu.Lock()
	clear(s.live)
	for _, o := range outs {
		s.live[o.name] = liveOutput{pulsing: o.pulsing, period: o.period}
	}
	s.liveMu.Unlock()
	for _, o := range opened {
		s.publishOutput(o)
	}
	s.follow()
	return nil
}

// follow subscribes to the topics outputs follow, once each.
func (s *Service) follow() {
	bus := s.Bus()
	if bus == nil {
		return
	}
	for _, o := range s.outs {
		if o.follow == "" || s.follows[o.follow] {
			continue
		}
		topic := o.follow
		if err := bus.Subscribe(topic, func(m services.Message) {
			s.Do(func() { s.followed(topic, m.Payload) })
		}); err != nil {
			s.Logger().Error("follow", "topic", topic, "err", err)
			continue
		}
		s.follows[topic] = true
	}
}

// followed drives every output following topic to payload, as a set
// would. A follow topic no output names any more is ignored.
func (s *Service) followed(topic string, payload []byte) {
	if s.Halted() || len(payload) == 0 {
		return
	}
	for _, o := range s.outs {
		if o.follow != topic {
			continue
		}
		c, err := parseSet(payload, o)
		if err != nil {
			s.Logger().Warn("follow: value not usable", "pin", o.name, "topic", topic, "err", err)
			continue
		}
		if _, err := s.Set(c); err != nil {
			s.Logger().Error("follow", "pin", o.name, "err", err)
		}
	}
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// order sorts outs in cfg's order.
func order(cfg Config, outs []*output) []*output {
	by := map[string]*output{}
	for _, o := range outs {
		by[o.name] = o
	}
	var r []*output
	for _, p := range cfg.Output {
		if o := by[p.Name]; o != nil {
			r = append(r, o)
		}
	}
	for _, p := range cfg.PWM {
		if o := by[p.Name]; o != nil {
			r = append(r, o)
		}
	}
	return r
}

func orderIn(cfg Config, ins []*input) []*input {
	by := map[string]*input{}
	for _, in := range ins {
		by[in.spec.Name] = in
	}
	var r []*input
	for _, p := range cfg.Input {
		if in := by[p.Name]; in != nil {
			r = append(r, in)
		}
	}
	return r
}

func (s *Service) publishOutput(o *output) {
	s.Values().Publish("output", o.name, s.Topics().Output(o.name), o.value, []byte(formatValue(o.value)))
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// --- set ---

// SetResult is the data of a successful set result.
type SetResult struct {
	Name  string            `json:"name"`
	Value float64           `json:"value"`
	For   services.Duration `json:"for,omitempty"`
}

// setCmd is a parsed set request for one output.
type setCmd struct {
	o      *output
	value  float64
	period int
	dur    time.Duration
}

// ParseSet implements services.Setter.
func (s *Service) ParseSet(name string, payload []byte) (any, error) {
	var o *output
	for _, c := range s.outs {
		if c.name == name {
			o = c
		}
	}
	if o == nil {
		msg := fmt.Sprintf("no output named %q", services.Truncate(name, 64))
		for _, in := range s.ins {
			if in.spec.Name == name {
				msg = fmt.Sprintf("%q is an input", name)
			}
		}
		return nil, services.Errorf(services.CodeNotFound, "", "%s", msg)
	}
	return parseSet(payload, o)
}

// Set implements services.Setter.
func (s *Service) Set(cmd any) (any, error) {
	c := cmd.(setCmd)
	o := c.o
	restore := o.value
	if o.pulsing {
		restore = o.restore
	}
	s.cancelPulse(o)
	if err := s.drive(o, c.value, c.period); err != nil {
		return nil, err
	}
	if c.dur > 0 {
		o.pulsing, o.restore = true, restore
		s.setLive(o)
		gen := o.pulseGen
		o.pulse = s.clock.AfterFunc(c.dur, func() { s.Do(func() { s.endPulse(o, gen) }) })
	}
	s.publishOutput(o)
	return SetResult{Name: o.name, Value: o.value, For: services.Duration(c.dur)}, nil
}

func (s *Service) endPulse(o *output, gen uint64) {
	if o.pulseGen != gen || !o.pulsing {
		return
	}
	o.pulsing, o.pulse = false, nil
	if err := s.drive(o, o.restore, 0); err != nil {
		s.Logger().Error("end of pulse", "pin", o.name, "err", err)
		return
	}
	s.publishOutput(o)
}

// parseSet reads a set payload for o: a bare word or number, or a JSON
// object {"value":…, "for":…, "period":…, "id":…}.
func parseSet(payload []byte, o *output) (setCmd, error) {
	c := setCmd{o: o}
	b := bytes.TrimSpace(payload)
	bad := func(code, field, format string, a ...any) (setCmd, error) {
		return c, services.Errorf(code, field, format, a...)
	}
	if len(b) == 0 {
		return bad(services.CodeMalformed, "", "empty payload; want 1, 0, on, off, true, false or {\"value\":…}")
	}
	raw := b
	if b[0] == '{' {
		var req struct {
			ID     any                `json:"id"`
			Value  json.RawMessage    `json:"value" rollcall:"required"`
			For    *services.Duration `json:"for"`
			Period *int               `json:"period"`
		}
		if errs := services.Decode(b, 0, &req); errs != nil {
			return c, errs
		}
		raw = req.Value
		if len(raw) > 0 && raw[0] == '"' {
			var str string
			if err := json.Unmarshal(raw, &str); err != nil {
				return bad(services.CodeMalformed, "value", "%v", err)
			}
			raw = []byte(str)
		}
		if req.For != nil {
			if *req.For <= 0 || req.For.D() > MaxFailsafeAfter {
				return bad(services.CodeInvalid, "for", "for must be between 0 and %s", MaxFailsafeAfter)
			}
			c.dur = req.For.D()
		}
		if req.Period != nil {
			if !o.pwm {
				return bad(services.CodeInvalid, "period", "%s is not a pwm output", o.name)
			}
			if msg := checkPeriod(o.pin, *req.Period); msg != "" || *req.Period == 0 {
				if msg == "" {
					msg = "period must be positive"
				}
				return bad(services.CodeInvalid, "period", "%s", msg)
			}
			c.period = *req.Period
		}
	}
	word := strings.ToLower(strings.TrimSpace(string(raw)))
	switch word {
	case "on", "true":
		c.value = 1
	case "off", "false":
		c.value = 0
	default:
		v, err := strconv.ParseFloat(word, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return bad(services.CodeMalformed, "value", "%q is not 1, 0, on, off, true, false or a number", services.Truncate(word, 40))
		}
		c.value = v
	}
	if o.pwm {
		if word == "on" || word == "true" {
			c.value = 100
		}
		if !validDuty(c.value) {
			return bad(services.CodeInvalid, "value", "duty must be 0–100 %%, not %v", c.value)
		}
	} else if c.value != 0 && c.value != 1 {
		return bad(services.CodeInvalid, "value", "%s takes 0 or 1, not %v", o.name, c.value)
	}
	return c, nil
}

// --- description ---

// PinState is one pin as the description's state lists it.
type PinState struct {
	Name  string `json:"name"`
	Mode  string `json:"mode"` // output, pwm, input
	Pin   int    `json:"pin"`
	Topic string `json:"topic"`         // where its value is published
	Set   string `json:"set,omitempty"` // outputs: where it is driven
	// Value is 0/1 (output, input) or the duty in percent (pwm); absent
	// while the pin is not open.
	Value    any    `json:"value,omitempty"`
	Period   int    `json:"period,omitempty"`    // pwm, µs
	Pulse    bool   `json:"pulse,omitempty"`     // a timed pulse is running
	OnChange string `json:"on_change,omitempty"` // inputs: also published there
	Follow   string `json:"follow,omitempty"`    // outputs: driven from there
}

// State is the service's own part of its Description.State, beside the
// runtime's halted, failsafe, config and schema.
type State struct {
	Driver string     `json:"driver"`
	Pins   []PinState `json:"pins"`
}

// Interfaces implements services.Device: every pin of cfg as an input or
// output, with its value and state.
func (s *Service) Interfaces(cfg Config) services.Interfaces {
	st := State{Driver: s.driver.Name(), Pins: []PinState{}}
	var ifs services.Interfaces
	s.liveMu.Lock()
	live := make(map[string]liveOutput, len(s.live))
	for k, v := range s.live {
		live[k] = v
	}
	s.liveMu.Unlock()
	tp := s.Topics()
	addOut := func(name string, pin int, pwm bool, period int, follow string) {
		ps := PinState{Name: name, Mode: "output", Pin: pin, Topic: tp.Output(name), Set: tp.Set(name), Follow: follow}
		it := services.Interface{Name: name, Topic: ps.Topic, Type: "bool", Mode: "output", Set: ps.Set}
		if pwm {
			ps.Mode, ps.Period, it.Type, it.Mode, it.Unit = "pwm", period, "pwm", "pwm", "%"
		}
		if v, ok := s.Values().Get("output", name); ok {
			ps.Value = v
		}
		if l, ok := live[name]; ok {
			ps.Pulse = l.pulsing
			if pwm && l.period > 0 {
				ps.Period = l.period
			}
		}
		st.Pins = append(st.Pins, ps)
		ifs.Outputs = append(ifs.Outputs, it)
	}
	for _, p := range cfg.Output {
		addOut(p.Name, p.Pin, false, 0, p.Follow)
	}
	for _, p := range cfg.PWM {
		period := p.Period
		if period == 0 {
			period = DefaultPeriod
		}
		addOut(p.Name, p.Pin, true, period, p.Follow)
	}
	for _, p := range cfg.Input {
		ps := PinState{Name: p.Name, Mode: "input", Pin: p.Pin, Topic: tp.Input(p.Name), OnChange: p.OnChange}
		it := services.Interface{Name: p.Name, Topic: ps.Topic, Type: "bool", Mode: "input"}
		if v, ok := s.Values().Get("input", p.Name); ok {
			ps.Value = v
		}
		st.Pins = append(st.Pins, ps)
		ifs.Inputs = append(ifs.Inputs, it)
	}
	ifs.State = st
	return ifs
}
