package gpio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"

	"github.com/rollcall/rollcall/services"
)

// owner is the name the service reserves its pins under.
const owner = "gpio"

// Options are what New needs besides the configuration.
type Options struct {
	// Host is this host's name, the first level of every topic.
	Host string
	// StateDir holds gpio.json, the last applied setup; "" keeps nothing.
	StateDir string
	Logger   *slog.Logger
	// Pins is the host's pin registry; nil gives the service its own.
	Pins *services.PinRegistry
	// Driver overrides the driver named by Config.Driver (tests).
	Driver Driver
	// Clock drives debounce, pulses, scans and the failsafe delay; nil
	// is the real clock.
	Clock Clock
}

// Service is the GPIO service. See the package documentation for its
// topics and payloads.
type Service struct {
	topics   services.Topics
	log      *slog.Logger
	pins     *services.PinRegistry
	stateDir string
	driver   Driver
	clock    Clock
	out      *outbox

	mu        sync.Mutex
	cfg       Config
	halted    bool
	failsafe  bool   // outputs forced to failsafe by broker loss
	health    string // why the pins could not be opened, or ""
	outs      []*output
	ins       []*input
	running   bool
	closed    bool
	connected bool
	lossTimer Timer
	lossGen   uint64
	// serving is closed once Run has subscribed to every topic.
	serving chan struct{}
}

var _ services.Service = (*Service)(nil)

// output is one open output or PWM pin.
type output struct {
	name   string
	spec   any // OutputPin or PWMPin, compared to keep unchanged pins open
	pin    int
	pwm    bool
	active bool // ActiveLow
	safe   float64
	topic  string
	line   OutputLine
	pline  PWMLine

	value    float64 // logical level 0/1, or duty in percent
	period   int     // µs, PWM only
	pulsing  bool
	restore  float64
	pulse    Timer
	pulseGen uint64
}

// New builds the service from cfg, or from the setup saved in
// opts.StateDir when there is one, reserves its pins and its driver. Pins
// are opened by Run.
func New(cfg Config, opts Options) (*Service, error) {
	if !services.ValidTopicName(opts.Host) {
		return nil, fmt.Errorf("gpio: host name %q cannot stand as a topic level", opts.Host)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", owner)
	s := &Service{
		serving:   make(chan struct{}),
		topics:    services.Topics{Host: opts.Host, Service: owner},
		log:       log,
		pins:      opts.Pins,
		stateDir:  opts.StateDir,
		clock:     opts.Clock,
		out:       newOutbox(log),
		connected: true,
	}
	if s.pins == nil {
		s.pins = services.NewPinRegistry()
	}
	if s.clock == nil {
		s.clock = realClock{}
	}
	if s.stateDir != "" {
		st, err := loadState(filepath.Join(s.stateDir, stateFile))
		switch {
		case err == nil:
			if cfg.Driver != "" {
				st.Config.Driver = cfg.Driver
			}
			if errs := st.Config.Validate(s.heldByOthers); errs != nil {
				log.Warn("saved setup no longer valid; using the configuration file", "err", errs)
			} else {
				cfg, s.halted = st.Config, st.Halted
				log.Info("restored saved setup", "halted", st.Halted)
			}
		case !errors.Is(err, fs.ErrNotExist):
			log.Warn("cannot read saved setup; using the configuration file", "err", err)
		}
	}
	if errs := cfg.Validate(s.heldByOthers); errs != nil {
		return nil, fmt.Errorf("gpio config: %w", errs)
	}
	s.driver = opts.Driver
	if s.driver == nil {
		switch cfg.Driver {
		case DriverSim:
			s.driver = NewSim(cfg.Wiring...)
		default:
			d, err := NewPeriph(PeriphOptions{Logger: log})
			if err != nil {
				return nil, fmt.Errorf("gpio: %w", err)
			}
			s.driver = d
		}
	}
	cfg.Driver = s.driver.Name()
	if err := s.pins.Replace(owner, cfg.pins()...); err != nil {
		return nil, fmt.Errorf("gpio: %w", err)
	}
	s.cfg = cfg
	return s, nil
}

// Name implements services.Service.
func (s *Service) Name() string { return owner }

func (s *Service) heldByOthers(pin int) (string, bool) {
	h, ok := s.pins.Holder(pin)
	if !ok || h == owner {
		return "", false
	}
	return h, true
}

// Run opens the configured pins, serves the service's topics until ctx
// ends, then drives every output to its failsafe level and releases
// every line.
func (s *Service) Run(ctx context.Context, bus services.Bus) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("gpio: already running")
	}
	s.running = true
	if err := s.apply(s.cfg); err != nil {
		s.health = err.Error()
		s.log.Error("cannot open pins", "err", err)
	}
	s.publishOutputs()
	s.out.changed()
	s.mu.Unlock()

	octx, stopOut := context.WithCancel(context.WithoutCancel(ctx))
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		s.out.run(octx, bus)
	}()
	defer func() {
		s.shutdown()
		stopOut()
		<-outDone
	}()

	subs := []struct {
		filter string
		h      services.Handler
	}{
		{s.topics.Setup(), s.onSetup},
		{s.topics.Set("+"), s.onSet},
		{s.topics.Control(), s.onControl},
		// "#" also matches the parent level, so this covers <host>/gpio/get.
		{s.topics.Get() + "/#", s.onGet},
	}
	for _, sub := range subs {
		if err := bus.Subscribe(sub.filter, sub.h); err != nil {
			return fmt.Errorf("gpio: subscribe %s: %w", sub.filter, err)
		}
	}
	close(s.serving)
	<-ctx.Done()
	return nil
}

// Driver is the service's driver: under --sim the simulated board, whose
// inputs tests and demos can drive.
func (s *Service) Driver() Driver { return s.driver }

// Serving is closed once the service has subscribed to all its topics:
// the agent waits for it before it tells the cluster the host is online,
// so that no request sent on seeing "online" is lost.
func (s *Service) Serving() <-chan struct{} { return s.serving }

// shutdown drives outputs to failsafe and closes every line. It does not
// publish: the session may be going away with us.
func (s *Service) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.lossTimer != nil {
		s.lossTimer.Stop()
	}
	for _, o := range s.outs {
		s.cancelPulse(o)
		if err := s.drive(o, o.safe, 0); err != nil {
			s.log.Error("failsafe on shutdown", "pin", o.name, "err", err)
		}
		if err := o.close(); err != nil {
			s.log.Warn("close", "pin", o.name, "err", err)
		}
	}
	for _, in := range s.ins {
		if err := in.close(); err != nil {
			s.log.Warn("close", "pin", in.spec.Name, "err", err)
		}
	}
	s.outs, s.ins = nil, nil
	if err := s.driver.Close(); err != nil {
		s.log.Warn("close driver", "err", err)
	}
}

// Connected tells the service whether the MQTT session is up. After
// failsafe_after without a session every output takes its failsafe level.
//
// Every (re)connect republishes the retained value of every pin: a clean
// MQTT session drops what was queued while it was down (the values Run
// publishes before the first connect included), and a broker restarted
// without persistence has forgotten them.
func (s *Service) Connected(up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if up {
		s.publishOutputs()
		for _, in := range s.ins {
			in.republish()
		}
	}
	if s.connected == up {
		return
	}
	s.connected = up
	s.lossGen++
	if s.lossTimer != nil {
		s.lossTimer.Stop()
		s.lossTimer = nil
	}
	if up {
		if s.failsafe {
			s.failsafe = false
			s.out.changed()
		}
		return
	}
	if d := s.cfg.FailsafeAfter.D(); d > 0 {
		gen := s.lossGen
		s.lossTimer = s.clock.AfterFunc(d, func() { s.brokerLost(gen) })
	}
}

func (s *Service) brokerLost(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.connected || gen != s.lossGen {
		return
	}
	s.lossTimer = nil
	s.log.Warn("broker unreachable, outputs to failsafe", "after", s.cfg.FailsafeAfter)
	s.failsafe = true
	if err := s.allFailsafe(); err != nil {
		s.log.Error("failsafe", "err", err)
	}
	s.publishOutputs()
	s.out.changed()
}

// --- hardware ---

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
	return nil
}

func physical(logical, activeLow bool) pgpio.Level { return pgpio.Level(logical != activeLow) }

func (s *Service) cancelPulse(o *output) {
	if o.pulse != nil {
		o.pulse.Stop()
		o.pulse = nil
	}
	o.pulsing = false
	o.pulseGen++
}

func (s *Service) allFailsafe() error {
	var errs []error
	for _, o := range s.outs {
		s.cancelPulse(o)
		if err := s.drive(o, o.safe, 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
		o.name, o.pin, o.active, o.safe = p.Name, p.Pin, p.ActiveLow, float64(p.Failsafe)
		o.line, err = s.driver.Output(p.Pin, physical(value == 1, p.ActiveLow))
	case PWMPin:
		o.name, o.pin, o.pwm, o.safe, o.period = p.Name, p.Pin, true, p.Failsafe, p.Period
		if o.period == 0 {
			o.period = DefaultPeriod
		}
		o.pline, err = s.driver.PWM(p.Pin, dutyOf(value), periodOf(p.Period), p.Pol == "inverted")
	}
	if err != nil {
		return nil, fmt.Errorf("gpio %s: GPIO %d: %w", o.name, o.pin, err)
	}
	o.value = value
	o.topic = s.topics.Output(o.name)
	return o, nil
}

func (s *Service) openInput(spec InputPin) (*input, error) {
	line, err := s.driver.Input(spec.Pin, pullOf(spec.Pull))
	if err != nil {
		return nil, fmt.Errorf("gpio %s: GPIO %d: %w", spec.Name, spec.Pin, err)
	}
	topic := spec.OnChange
	if topic == "" {
		topic = s.topics.Input(spec.Name)
	}
	in := newInput(spec, topic, line, s.clock, s.out)
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

// apply makes next the open configuration, all or nothing. Pins whose
// settings did not change stay open, untouched; the rest are closed and
// opened anew. If opening fails, every change is undone and the error
// returned. Called with s.mu held.
func (s *Service) apply(next Config) error {
	prevPins := s.cfg.pins()
	if err := s.pins.Replace(owner, next.pins()...); err != nil {
		return services.Error{Code: services.CodeConflict, Message: err.Error()}
	}
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
			s.log.Warn("close", "pin", o.name, "err", err)
		}
		closedOut = append(closedOut, o)
	}
	for _, in := range s.ins {
		if wantIn[in.spec] {
			keptIn[in.spec] = in
			continue
		}
		if err := in.close(); err != nil {
			s.log.Warn("close", "pin", in.spec.Name, "err", err)
		}
		closedIn = append(closedIn, in.spec)
	}
	prevWiring := s.cfg.Wiring
	wirer, _ := s.driver.(interface{ SetWiring([]Wire) })
	if wirer != nil {
		wirer.SetWiring(next.Wiring)
	}

	forced := s.halted || s.failsafe
	var outs []*output
	var ins []*input
	var opened []*output
	var openedIn []*input
	fail := func(err error) error {
		for _, o := range opened {
			_ = o.close()
		}
		for _, in := range openedIn {
			_ = in.close()
		}
		if wirer != nil {
			wirer.SetWiring(prevWiring)
		}
		// Reopen what was closed, at the level it had.
		var reopened []*output
		for _, o := range closedOut {
			n, err := s.openOutput(o.spec, o.value)
			if err != nil {
				s.log.Error("rollback", "pin", o.name, "err", err)
				s.health = "rollback failed: " + err.Error()
				continue
			}
			reopened = append(reopened, n)
		}
		var reopenedIn []*input
		for _, spec := range closedIn {
			n, err := s.openInput(spec)
			if err != nil {
				s.log.Error("rollback", "pin", spec.Name, "err", err)
				s.health = "rollback failed: " + err.Error()
				continue
			}
			reopenedIn = append(reopenedIn, n)
		}
		s.outs = s.order(s.cfg, append(reopened, values(keptOut)...))
		s.ins = s.orderIn(s.cfg, append(reopenedIn, valuesIn(keptIn)...))
		if err := s.pins.Replace(owner, prevPins...); err != nil {
			s.log.Error("rollback pin reservation", "err", err)
		}
		return err
	}
	openOne := func(spec any, init, safe float64) error {
		if o, ok := keptOut[spec]; ok {
			outs = append(outs, o)
			return nil
		}
		v := init
		if forced {
			v = safe
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
			return fail(hardware(err))
		}
	}
	for _, p := range next.PWM {
		if err := openOne(p, p.Init, p.Failsafe); err != nil {
			return fail(hardware(err))
		}
	}
	for _, p := range next.Input {
		if in, ok := keptIn[p]; ok {
			ins = append(ins, in)
			continue
		}
		in, err := s.openInput(p)
		if err != nil {
			return fail(hardware(err))
		}
		openedIn = append(openedIn, in)
		ins = append(ins, in)
	}
	s.outs, s.ins = outs, ins
	return nil
}

func hardware(err error) error {
	return services.Error{Code: services.CodeHardware, Message: err.Error()}
}

func values(m map[any]*output) []*output {
	out := make([]*output, 0, len(m))
	for _, o := range m {
		out = append(out, o)
	}
	return out
}

func valuesIn(m map[InputPin]*input) []*input {
	out := make([]*input, 0, len(m))
	for _, in := range m {
		out = append(out, in)
	}
	return out
}

// order sorts outs in cfg's order.
func (s *Service) order(cfg Config, outs []*output) []*output {
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

func (s *Service) orderIn(cfg Config, ins []*input) []*input {
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

// --- requests ---

func (s *Service) respond(r services.Result) {
	b, err := json.Marshal(r)
	if err != nil {
		s.log.Error("marshal result", "err", err)
		return
	}
	s.out.send(s.topics.Result(), false, b)
}

// publishOutputs queues the retained state of every output.
func (s *Service) publishOutputs() {
	for _, o := range s.outs {
		s.publishOutput(o)
	}
}

func (s *Service) publishOutput(o *output) {
	s.out.send(o.topic, true, []byte(formatValue(o.value)))
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func tooLarge(n int) services.Error {
	return services.Error{Code: services.CodeTooLarge,
		Message: fmt.Sprintf("payload of %d bytes is over the %d byte limit", n, services.MaxPayload)}
}

func (s *Service) haltedError() services.Error {
	return services.Error{Code: services.CodeHalted,
		Message: "gpio is emergency-stopped (halted); publish recover to " + s.topics.Control()}
}

// fail builds a failed result that also carries the halted flag.
func (s *Service) fail(id json.RawMessage, op string, err error) services.Result {
	r := services.Fail(id, op, err)
	r.Data = map[string]any{"halted": s.halted}
	return r
}

func (s *Service) onSetup(_ string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	r, changed := s.setup(payload)
	s.respond(r)
	if changed {
		s.publishOutputs()
		s.out.changed()
	}
}

// SetupResult is the data of a successful setup result: the applied
// configuration.
type SetupResult struct {
	Config Config `json:"config"`
	Halted bool   `json:"halted"`
}

func (s *Service) setup(payload []byte) (services.Result, bool) {
	if len(payload) > services.MaxPayload {
		return s.fail(nil, services.OpSetup, tooLarge(len(payload))), false
	}
	if len(bytes.TrimSpace(payload)) == 0 {
		return services.OK(nil, services.OpSetup, SetupResult{Config: s.cfg, Halted: s.halted}), false
	}
	req, errs := ParseSetup(payload)
	id := req.ID
	if id == nil {
		id = services.RequestID(payload)
	}
	if errs != nil {
		return s.fail(id, services.OpSetup, errs), false
	}
	if s.halted {
		return s.fail(id, services.OpSetup, s.haltedError()), false
	}
	next := req.Config
	if req.Merge {
		next = req.merge(s.cfg)
	}
	if next.Driver == "" {
		next.Driver = s.cfg.Driver
	}
	errs = next.Validate(s.heldByOthers)
	if next.Driver != s.driver.Name() {
		errs = append(errs, services.Error{Code: services.CodeInvalid, Field: "driver",
			Message: fmt.Sprintf("the driver is %s and cannot change while the agent runs", s.driver.Name())})
	}
	if errs != nil {
		return s.fail(id, services.OpSetup, errs), false
	}
	prev := s.cfg
	if err := s.apply(next); err != nil {
		return s.fail(id, services.OpSetup, err), false
	}
	if err := s.persist(next, s.halted); err != nil {
		s.log.Error("cannot save setup, rolling back", "err", err)
		if rerr := s.apply(prev); rerr != nil {
			s.health = "rollback failed: " + rerr.Error()
		}
		return s.fail(id, services.OpSetup, fmt.Errorf("gpio: save setup: %w", err)), true
	}
	s.cfg = next
	s.health = ""
	s.log.Info("setup applied", "outputs", len(next.Output), "pwm", len(next.PWM), "inputs", len(next.Input))
	return services.OK(id, services.OpSetup, SetupResult{Config: next, Halted: s.halted}), true
}

// SetResult is the data of a successful set result.
type SetResult struct {
	Name  string   `json:"name"`
	Value float64  `json:"value"`
	For   Duration `json:"for,omitempty"`
}

func (s *Service) onSet(topic string, payload []byte) {
	name := strings.TrimPrefix(topic, s.topics.Set(""))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if len(payload) > services.MaxPayload {
		s.respond(s.fail(nil, services.OpSet, tooLarge(len(payload))))
		return
	}
	id := services.RequestID(payload)
	var o *output
	for _, c := range s.outs {
		if c.name == name {
			o = c
		}
	}
	if o == nil {
		msg := fmt.Sprintf("no output named %q", name)
		for _, in := range s.ins {
			if in.spec.Name == name {
				msg = fmt.Sprintf("%q is an input", name)
			}
		}
		s.respond(s.fail(id, services.OpSet, services.Error{Code: services.CodeNotFound, Message: msg}))
		return
	}
	cmd, err := parseSet(payload, o)
	if err != nil {
		s.respond(s.fail(id, services.OpSet, err))
		return
	}
	if s.halted {
		s.respond(s.fail(id, services.OpSet, s.haltedError()))
		return
	}
	restore := o.value
	if o.pulsing {
		restore = o.restore
	}
	s.cancelPulse(o)
	if err := s.drive(o, cmd.value, cmd.period); err != nil {
		s.respond(s.fail(id, services.OpSet, hardware(err)))
		return
	}
	if cmd.dur > 0 {
		o.pulsing, o.restore = true, restore
		gen := o.pulseGen
		o.pulse = s.clock.AfterFunc(cmd.dur, func() { s.endPulse(o, gen) })
	}
	s.publishOutput(o)
	s.respond(services.OK(id, services.OpSet, SetResult{Name: o.name, Value: o.value, For: Duration(cmd.dur)}))
}

func (s *Service) endPulse(o *output, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || o.pulseGen != gen || !o.pulsing {
		return
	}
	o.pulsing, o.pulse = false, nil
	if err := s.drive(o, o.restore, 0); err != nil {
		s.log.Error("end of pulse", "pin", o.name, "err", err)
		return
	}
	s.publishOutput(o)
}

type setCmd struct {
	value  float64
	period int
	dur    time.Duration
}

// parseSet reads a set payload for o: a bare word or number, or a JSON
// object {"value":…, "for":…, "period":…, "id":…}.
func parseSet(payload []byte, o *output) (setCmd, error) {
	var c setCmd
	b := bytes.TrimSpace(payload)
	bad := func(code, field, format string, a ...any) (setCmd, error) {
		return c, services.Error{Code: code, Field: field, Message: fmt.Sprintf(format, a...)}
	}
	if len(b) == 0 {
		return bad(services.CodeMalformed, "", "empty payload; want 1, 0, on, off, true, false or {\"value\":…}")
	}
	raw := b
	if b[0] == '{' {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Value  json.RawMessage `json:"value"`
			For    *Duration       `json:"for"`
			Period *int            `json:"period"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return bad(services.CodeMalformed, errorField(err), "%s", jsonMessage(err))
		}
		if len(req.Value) == 0 {
			return bad(services.CodeMalformed, "value", "value is required")
		}
		raw = req.Value
		if len(raw) > 0 && raw[0] == '"' {
			var str string
			if err := json.Unmarshal(raw, &str); err != nil {
				return bad(services.CodeMalformed, "value", "%s", jsonMessage(err))
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
			return bad(services.CodeMalformed, "value", "%q is not 1, 0, on, off, true, false or a number", truncate(word, 40))
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

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (s *Service) onControl(_ string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if len(payload) > services.MaxPayload {
		s.respond(s.fail(nil, services.OpControl, tooLarge(len(payload))))
		return
	}
	id := services.RequestID(payload)
	cmd := strings.ToLower(string(bytes.TrimSpace(payload)))
	if strings.HasPrefix(cmd, "{") {
		var req struct {
			Cmd string          `json:"cmd"`
			ID  json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(payload, &req); err != nil {
			s.respond(s.fail(id, services.OpControl, services.Error{Code: services.CodeMalformed, Message: jsonMessage(err)}))
			return
		}
		cmd = strings.ToLower(req.Cmd)
	}
	switch cmd {
	case "estop":
		s.halted = true
		err := s.allFailsafe()
		if perr := s.persist(s.cfg, true); perr != nil {
			s.log.Error("cannot save halted flag", "err", perr)
		}
		s.log.Warn("emergency stop")
		s.publishOutputs()
		s.out.changed()
		if err != nil {
			s.respond(s.fail(id, services.OpControl, hardware(err)))
			return
		}
	case "recover":
		s.halted = false
		if perr := s.persist(s.cfg, false); perr != nil {
			s.log.Error("cannot save halted flag", "err", perr)
		}
		s.log.Info("recovered from emergency stop")
		s.out.changed()
	default:
		s.respond(s.fail(id, services.OpControl, services.Error{Code: services.CodeInvalid, Field: "cmd",
			Message: fmt.Sprintf("unknown command %q (want estop or recover)", truncate(cmd, 40))}))
		return
	}
	s.respond(services.OK(id, services.OpControl, map[string]any{"cmd": cmd, "halted": s.halted}))
}

// GetResult is the data of a get result: the values republished.
type GetResult struct {
	Inputs  map[string]any `json:"inputs,omitempty"`
	Outputs map[string]any `json:"outputs,omitempty"`
	Halted  bool           `json:"halted"`
	// Description is the service's description, for a plain get.
	Description *services.Description `json:"description,omitempty"`
}

func (s *Service) onGet(topic string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	var id json.RawMessage
	if len(payload) <= services.MaxPayload {
		id = services.RequestID(payload)
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(topic, s.topics.Get()), "/")
	kind, name, _ := strings.Cut(rest, "/")
	res := GetResult{Halted: s.halted}
	found := false
	if kind == "" || kind == "input" {
		res.Inputs = map[string]any{}
		for _, in := range s.ins {
			if name == "" || in.spec.Name == name {
				found = true
				v := in.republish()
				res.Inputs[in.spec.Name] = v
			}
		}
	}
	if kind == "" || kind == "output" {
		res.Outputs = map[string]any{}
		for _, o := range s.outs {
			if name == "" || o.name == name {
				found = true
				s.publishOutput(o)
				res.Outputs[o.name] = o.value
			}
		}
	}
	switch {
	case kind != "" && kind != "input" && kind != "output":
		s.respond(s.fail(id, services.OpGet, services.Error{Code: services.CodeNotFound,
			Message: fmt.Sprintf("no %q; get, get/input[/<name>] or get/output[/<name>]", truncate(kind, 40))}))
	case name != "" && !found:
		s.respond(s.fail(id, services.OpGet, services.Error{Code: services.CodeNotFound,
			Message: fmt.Sprintf("no %s named %q", kind, truncate(name, 64))}))
	default:
		if kind == "" {
			d := s.describe()
			res.Description = &d
		}
		s.respond(services.OK(id, services.OpGet, res))
	}
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
	Value  *float64 `json:"value,omitempty"`
	Period int      `json:"period,omitempty"` // pwm, µs
	Pulse  bool     `json:"pulse,omitempty"`  // a timed pulse is running
}

// State is the service's Description.State.
type State struct {
	Driver string `json:"driver"`
	Halted bool   `json:"halted"`
	// Failsafe is set while outputs are at failsafe for broker loss.
	Failsafe bool            `json:"failsafe,omitempty"`
	Pins     []PinState      `json:"pins"`
	Config   Config          `json:"config"`
	Schema   json.RawMessage `json:"schema"`
}

// Describe implements services.Service.
func (s *Service) Describe() services.Description {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.describe()
}

// describe builds the description; s.mu is held.
func (s *Service) describe() services.Description {
	d := s.topics.Base()
	if s.health != "" {
		d.Health, d.Error = "error", s.health
	}
	st := State{Driver: s.driver.Name(), Halted: s.halted, Failsafe: s.failsafe, Pins: []PinState{},
		Config: s.cfg, Schema: schemaJSON()}
	outs := map[string]*output{}
	for _, o := range s.outs {
		outs[o.name] = o
	}
	ins := map[string]*input{}
	for _, in := range s.ins {
		ins[in.spec.Name] = in
	}
	addOut := func(name string, pin int, pwm bool, period int) {
		ps := PinState{Name: name, Mode: "output", Pin: pin, Topic: s.topics.Output(name), Set: s.topics.Set(name)}
		it := services.Interface{Name: name, Topic: ps.Topic, Type: "bool", Mode: "output", Set: ps.Set}
		if pwm {
			ps.Mode, ps.Period, it.Type, it.Mode, it.Unit = "pwm", period, "pwm", "pwm", "%"
		}
		if o := outs[name]; o != nil {
			v := o.value
			ps.Value, it.Value = &v, v
			ps.Pulse = o.pulsing
			if pwm {
				ps.Period = o.period
			}
		}
		st.Pins = append(st.Pins, ps)
		d.Outputs = append(d.Outputs, it)
	}
	for _, p := range s.cfg.Output {
		addOut(p.Name, p.Pin, false, 0)
	}
	for _, p := range s.cfg.PWM {
		period := p.Period
		if period == 0 {
			period = DefaultPeriod
		}
		addOut(p.Name, p.Pin, true, period)
	}
	for _, p := range s.cfg.Input {
		topic := p.OnChange
		if topic == "" {
			topic = s.topics.Input(p.Name)
		}
		ps := PinState{Name: p.Name, Mode: "input", Pin: p.Pin, Topic: topic}
		it := services.Interface{Name: p.Name, Topic: topic, Type: "bool", Mode: "input"}
		if in := ins[p.Name]; in != nil {
			v := float64(in.value.Load())
			ps.Value, it.Value = &v, v
		}
		st.Pins = append(st.Pins, ps)
		d.Inputs = append(d.Inputs, it)
	}
	b, err := json.Marshal(st)
	if err != nil {
		s.log.Error("marshal state", "err", err)
	}
	d.State = b
	return d
}
