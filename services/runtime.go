package services

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Setup is what a service's configuration gives the runtime: the payload
// of <host>/<service>/setup, the service's block of the agent's
// configuration file, and what is saved in the state directory.
type Setup interface {
	// Check reports every problem that can be found without the
	// hardware, each with its field ("output[0].pin").
	Check(c Checker) Errors
	// Claims lists the pins, buses and devices the configuration holds,
	// each with its field.
	Claims() []Claim
}

// Checker is what a configuration is checked against besides itself.
type Checker struct {
	// Topics are the service's own.
	Topics Topics
}

// CheckOnChange is CheckOnChange for the service's own topics.
func (c Checker) CheckOnChange(topic string) string { return CheckOnChange(c.Topics, topic) }

// CheckFollow is CheckFollow for the service's own topics.
func (c Checker) CheckFollow(topic string) string { return CheckFollow(c.Topics, topic) }

// A FailsafeDelayer is a configuration with a delay after which, without a
// broker, the runtime drives outputs to failsafe (see Device.Failsafe).
type FailsafeDelayer interface {
	FailsafeDelay() time.Duration
}

// A Device is the hardware side of a service: what the runtime calls to
// make a configuration live. The runtime calls Apply, Failsafe and Close,
// and the optional Setter's methods, from one goroutine, one at a time.
type Device[C any] interface {
	// Apply makes next the live configuration; prev is the live one (the
	// zero C on the first call). It is all or nothing: when it fails,
	// prev is still live and the error says what failed. With safe set,
	// outputs start at their failsafe values rather than init (the
	// service is halted, or the broker is lost).
	Apply(prev, next C, safe bool) error
	// Failsafe drives every output to its failsafe value.
	Failsafe() error
	// Interfaces describes cfg's inputs and outputs and the service's own
	// state. It is called without any of the runtime's locks, while
	// requests are served: it may read only cfg and what the device keeps
	// safe for concurrent reads, and must not wait for hardware.
	Interfaces(cfg C) Interfaces
	// Close drives outputs to failsafe and releases the hardware.
	Close() error
}

// Interfaces is a device's description of one configuration.
type Interfaces struct {
	Inputs, Outputs []Interface
	// State is marshalled into Description.State, its members next to
	// the runtime's: halted, failsafe, config and schema.
	State any
}

// A HealthReporter is a Device that knows of trouble the runtime does not
// see, such as failing reads: Health returns "" when all is well, or why
// not ("2 of 3 channels failing; soil: 14 read errors, last: ..."). It is
// called like Interfaces, without any of the runtime's locks.
type HealthReporter interface {
	Health() string
}

// A Setter is a Device with outputs driven by <host>/<service>/set/<name>.
// ParseSet checks a request without acting on it (the runtime refuses it
// while halted only once it is known to be well formed); Set acts and
// returns the result's data.
type Setter interface {
	ParseSet(name string, payload []byte) (cmd any, err error)
	Set(cmd any) (data any, err error)
}

// A Merger is a Device whose setups may carry "merge": true: patch, the
// setup's configuration, is merged into cur. present holds the top-level
// members the payload carried.
type Merger[C any] interface {
	Merge(cur, patch C, present map[string]bool) C
}

// A Preparer is a Device that completes a setup from the live
// configuration before it is checked (a driver that cannot change while
// running, say), and refuses transitions it cannot make.
type Preparer[C any] interface {
	Prepare(cur, next C) (C, Errors)
}

// Halt reasons, as the description's state gives them.
const (
	HaltEstop = "estop" // an estop request; only recover clears it
	HaltState = "state" // the saved state could not be used; recover or a new setup clears it
)

// saved is what a runtime keeps in <state>/<service>.json.
type saved[C any] struct {
	Halted bool `json:"halted,omitempty"`
	// Reason is why the service is halted when it is not an estop.
	Reason string `json:"reason,omitempty"`
	Config C      `json:"config"`
}

// Request queue bounds. A request beyond them is answered busy at once.
const (
	maxControlQueue = 64
	maxNormalQueue  = 256
	maxSetupQueue   = 32
	// maxSetupBatch bounds the setups applied before one write to disk.
	maxSetupBatch = 32
)

// A Runtime is everything a service has in common with every other: the
// request topics and their queue, the setup transaction, estop and
// recover, the state file, the failsafe on broker loss, the retained
// values of inputs and outputs, and the description. A service is a
// Device plus a Runtime, usually embedded:
//
//	type Service struct {
//		*services.Runtime[Config]
//		...
//	}
//
// Requests are served by one goroutine, in order of priority: control
// (estop) first, then the runtime's own work (timers), then set and get,
// then setups, several of which are applied before one write to disk. A
// full queue answers busy rather than stalling the MQTT session.
type Runtime[C Setup] struct {
	kind   string
	topics Topics
	log    *slog.Logger
	env    Env
	dev    Device[C]
	store  Store[saved[C]]
	schema any
	out    *outbox
	values *Values
	q      *queue

	serving chan struct{}
	running atomic.Bool
	warn    rateLog
	bus     atomic.Pointer[Bus]

	// Worker state: touched only by the goroutine running requests (and
	// by NewRuntime before it starts).
	cfg       C
	halted    bool
	reason    string // HaltEstop, HaltState
	failsafe  bool   // outputs at failsafe for want of a broker
	health    string // why the service is unhealthy, or ""
	startErr  string // why the saved state could not be used
	connected bool
	lossTimer Timer
	lossGen   uint64

	snap atomic.Pointer[snapshot[C]]

	counts counters // see Stats
}

// snapshot is the part of the runtime's state a description shows.
type snapshot[C any] struct {
	cfg      C
	halted   bool
	reason   string
	failsafe bool
	health   string
}

// RuntimeOptions configure a Runtime.
type RuntimeOptions[C Setup] struct {
	// Kind is the service's name, the second level of its topics.
	Kind string
	Env  Env
	// Config is the configuration from the agent's configuration file,
	// used when nothing is saved.
	Config C
	// Schema holds the JSON Schemas of the setup and set payloads, shown
	// in the description's state.
	Schema any
}

// NewRuntime builds a service's runtime and settles its starting
// configuration: the one saved in the state directory if there is one, or
// else opts.Config. A saved state that cannot be read, parsed or checked
// is never silently replaced: the file is kept aside, the service starts
// halted on opts.Config with its outputs at failsafe, and its health says
// why, until a recover or a new setup. Nothing is opened until Run.
func NewRuntime[C Setup](opts RuntimeOptions[C], dev Device[C]) (*Runtime[C], error) {
	env := opts.Env.withDefaults()
	if !ValidTopicName(env.Host) {
		return nil, fmt.Errorf("%s: host name %q cannot stand as a topic level", opts.Kind, env.Host)
	}
	log := env.Logger.With("service", opts.Kind)
	rt := &Runtime[C]{
		kind:    opts.Kind,
		topics:  Topics{Prefix: env.TopicPrefix, Host: env.Host, Service: opts.Kind},
		log:     log,
		env:     env,
		dev:     dev,
		schema:  opts.Schema,
		out:     newOutbox(log),
		q:       newQueue(),
		serving: make(chan struct{}),
		warn:    rateLog{log: log, every: 10 * time.Second, last: map[string]time.Time{}},
	}
	rt.values = newValues(rt.out)
	if env.StateDir != "" {
		rt.store = Store[saved[C]]{Path: filepath.Join(env.StateDir, opts.Kind+".json")}
	}
	if errs := rt.check(opts.Config); errs != nil {
		return nil, fmt.Errorf("%s config: %w", opts.Kind, errs.Prefix(opts.Kind))
	}
	rt.cfg = opts.Config
	st, err := rt.store.Load()
	switch {
	case err == nil:
		if errs := rt.check(st.Config); errs != nil {
			rt.unusable(fmt.Errorf("saved setup no longer valid: %w", errs))
			break
		}
		rt.cfg, rt.halted, rt.reason = st.Config, st.Halted, st.Reason
		if rt.halted && rt.reason == "" {
			rt.reason = HaltEstop
		}
		if rt.reason == HaltState {
			rt.health = "halted since a saved state could not be used: recover or send a setup"
		}
		log.Info("restored saved setup", "halted", rt.halted)
	case errors.Is(err, fs.ErrNotExist):
	default:
		rt.unusable(err)
	}
	if errs := env.Claims.Replace(rt.kind, rt.cfg.Claims()); errs != nil {
		return nil, fmt.Errorf("%s: %w", rt.kind, errs)
	}
	rt.publishSnapshot()
	return rt, nil
}

// unusable handles a saved state that cannot be used: keep the file
// aside, start halted on the configuration file's setup, say why, and
// save that so a restart comes back halted too.
func (rt *Runtime[C]) unusable(why error) {
	msg := why.Error()
	if aside, err := rt.store.SetAside(rt.env.Clock.Now()); err == nil {
		msg += "; the file is kept as " + aside
	} else if !errors.Is(err, fs.ErrNotExist) {
		msg += "; it could not be set aside: " + err.Error()
	}
	rt.halted, rt.reason = true, HaltState
	rt.startErr = msg
	rt.health = msg + "; halted with outputs at failsafe until recover or a new setup"
	rt.log.Error("saved state unusable; starting halted with outputs at failsafe", "err", msg)
	if err := rt.store.Save(saved[C]{Halted: true, Reason: HaltState, Config: rt.cfg}); err != nil {
		rt.health += "; the halt could not be saved either: " + err.Error()
	}
}

// check runs the configuration's own checks and its claims against the
// host's.
func (rt *Runtime[C]) check(cfg C) Errors {
	errs := cfg.Check(Checker{Topics: rt.topics})
	return append(errs, rt.env.Claims.Check(rt.kind, cfg.Claims())...)
}

// Name implements Service.
func (rt *Runtime[C]) Name() string { return rt.kind }

// Topics are the service's topics.
func (rt *Runtime[C]) Topics() Topics { return rt.topics }

// Env is what the host gave the service.
func (rt *Runtime[C]) Env() Env { return rt.env }

// Logger is the service's logger.
func (rt *Runtime[C]) Logger() *slog.Logger { return rt.log }

// Config returns the live configuration. Only the device's methods, which
// run on the runtime's goroutine, may call it while Run runs.
func (rt *Runtime[C]) Config() C { return rt.cfg }

// Snapshot returns the configuration the description shows, safe to call
// from any goroutine.
func (rt *Runtime[C]) Snapshot() C { return rt.snap.Load().cfg }

// Halted reports whether the service is halted; for the device's methods.
func (rt *Runtime[C]) Halted() bool { return rt.halted }

// Safe reports whether outputs must stay at failsafe (halted, or no
// broker for too long); for the device's methods.
func (rt *Runtime[C]) Safe() bool { return rt.halted || rt.failsafe }

// Serving is closed once Run has subscribed to every topic.
func (rt *Runtime[C]) Serving() <-chan struct{} { return rt.serving }

// Bus is the bus Run was given, for devices that subscribe to topics of
// their own (an output following another host's input); nil before Run.
func (rt *Runtime[C]) Bus() Bus {
	if b := rt.bus.Load(); b != nil {
		return *b
	}
	return nil
}

// Values are the service's inputs and outputs, as last published.
func (rt *Runtime[C]) Values() *Values { return rt.values }

// Send queues a message for the bus, in order with everything else the
// service publishes.
func (rt *Runtime[C]) Send(topic string, retained bool, payload []byte) {
	rt.out.Send(topic, retained, payload)
}

// Do runs f on the runtime's goroutine, after any control request
// already queued: for timers of the device (the end of a pulse, a scan)
// that must not run while a request is being served. f does not run once
// the service is stopping.
func (rt *Runtime[C]) Do(f func()) { rt.q.push(request{class: classInternal, fn: f}) }

// Changed republishes the description, bumping the host's version.
func (rt *Runtime[C]) Changed() {
	rt.publishSnapshot()
	rt.out.Changed()
}

// SetHealth records why the service is unhealthy, "" when it is well, and
// republishes the description if that changed. For the device's methods.
func (rt *Runtime[C]) SetHealth(why string) {
	if rt.health == why {
		return
	}
	rt.health = why
	rt.Changed()
}

func (rt *Runtime[C]) publishSnapshot() {
	rt.snap.Store(&snapshot[C]{cfg: rt.cfg, halted: rt.halted, reason: rt.reason, failsafe: rt.failsafe, health: rt.health})
}

// Run opens the hardware, serves the service's topics until ctx ends, then
// drives outputs to failsafe and releases the hardware.
func (rt *Runtime[C]) Run(ctx context.Context, bus Bus) error {
	if !rt.running.CompareAndSwap(false, true) {
		return fmt.Errorf("%s: already running", rt.kind)
	}
	rt.bus.Store(&bus)
	var zero C
	if err := rt.dev.Apply(zero, rt.cfg, rt.Safe()); err != nil {
		rt.health = "cannot open the hardware: " + err.Error()
		rt.log.Error("cannot open the hardware", "err", err)
	}
	if rt.halted {
		if err := rt.dev.Failsafe(); err != nil {
			rt.log.Error("failsafe", "err", err)
		}
	}
	rt.armLossTimer() // failsafe_after counts from boot until the first connection
	rt.Changed()

	octx, stopOut := context.WithCancel(context.WithoutCancel(ctx))
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		rt.out.Run(octx, bus)
	}()
	defer func() {
		rt.q.close()
		if rt.lossTimer != nil {
			rt.lossTimer.Stop()
		}
		if err := rt.dev.Close(); err != nil {
			rt.log.Warn("close", "err", err)
		}
		stopOut()
		<-outDone
	}()

	subs := []struct {
		filter string
		class  int
		op     string
	}{
		{rt.topics.Setup(), classSetup, OpSetup},
		{rt.topics.Control(), classControl, OpControl},
		// "#" also matches the parent level, so this covers <host>/<service>/get.
		{rt.topics.Get() + "/#", classNormal, OpGet},
	}
	if _, ok := rt.dev.(Setter); ok {
		subs = append(subs, struct {
			filter string
			class  int
			op     string
		}{rt.topics.Set("+"), classNormal, OpSet})
	}
	for _, s := range subs {
		if err := bus.Subscribe(s.filter, rt.receive(s.class, s.op)); err != nil {
			return fmt.Errorf("%s: subscribe %s: %w", rt.kind, s.filter, err)
		}
	}
	close(rt.serving)
	rt.serve(ctx)
	return nil
}

// receive is the session's handler for one request topic: it only
// queues, so the session's reader never waits on hardware.
func (rt *Runtime[C]) receive(class int, op string) Handler {
	return func(m Message) {
		if m.Retained {
			// A request kept by the broker is a replay of the past: after a
			// restart it would undo what was done since.
			rt.warn.warn("retained:"+m.Topic, "ignored a retained request: requests are never replayed; clear it with: mosquitto_pub -r -n -t "+m.Topic, "topic", m.Topic)
			return
		}
		if len(m.Payload) > MaxPayload {
			rt.respond(Fail(nil, op, Errorf(CodeTooLarge, "", "payload of %d bytes is over the %d byte limit", len(m.Payload), MaxPayload)))
			return
		}
		if !rt.q.push(request{class: class, op: op, msg: m}) {
			rt.respond(Fail(RequestID(m.Payload), op, Errorf(CodeBusy, "", "%d %s requests are already waiting; try again", rt.q.limit(class), op)))
		}
	}
}

func (rt *Runtime[C]) serve(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-rt.q.wake:
		}
		for ctx.Err() == nil {
			r, ok := rt.q.pop()
			if !ok {
				break
			}
			switch {
			case r.fn != nil:
				r.fn()
			case r.op == OpSetup:
				rt.setups(r)
			case r.op == OpControl:
				rt.control(r.msg)
			case r.op == OpSet:
				rt.set(r.msg)
			case r.op == OpGet:
				rt.get(r.msg)
			}
		}
	}
}

func (rt *Runtime[C]) respond(r Result) {
	rt.counts.result(r)
	b, err := json.Marshal(r)
	if err != nil {
		rt.log.Error("marshal result", "err", err)
		return
	}
	rt.out.Send(rt.topics.Result(), false, b)
}

// fail builds a failed result that also carries the halted flag.
func (rt *Runtime[C]) fail(id json.RawMessage, op string, err error) Result {
	r := Fail(id, op, err)
	r.Data = map[string]any{"halted": rt.halted}
	return r
}

func (rt *Runtime[C]) haltedError() Error {
	return Errorf(CodeHalted, "", "%s is emergency-stopped (halted); publish recover to %s", rt.kind, rt.topics.Control())
}

// SetupResult is the data of a successful setup result.
type SetupResult[C any] struct {
	Config C    `json:"config"`
	Halted bool `json:"halted"`
}

// setups serves one setup and any queued behind it as a batch: each is
// checked and applied in turn and answered in order, but the state file
// is written once, after the last, and only then are the answers sent: an
// "ok" always means the setup survives a power cut. A control request
// arriving meanwhile ends the batch early.
func (rt *Runtime[C]) setups(first request) {
	start := rt.cfg
	startHalt, startReason, startHealth := rt.halted, rt.reason, rt.health
	var results []Result
	var changed []bool
	applied := false
	for r, ok := first, true; ok; {
		res, ch := rt.setup(r.msg.Payload)
		results = append(results, res)
		changed = append(changed, ch)
		applied = applied || ch
		if len(results) >= maxSetupBatch || rt.q.pending(classControl) {
			break
		}
		r, ok = rt.q.popClass(classSetup)
	}
	// An estop waiting behind the batch halts the service now, before
	// the batch's write to disk, which can take tens of milliseconds on
	// an SD card: outputs at failsafe, and the halted flag saved with the
	// batch. The estop request itself is served, kept and answered next.
	estop := rt.estopWaiting()
	if estop {
		rt.halted, rt.reason = true, HaltEstop
		if err := rt.dev.Failsafe(); err != nil {
			rt.log.Error("failsafe ahead of an estop", "err", err)
		}
		rt.publishSnapshot()
	}
	if applied {
		if err := rt.store.Save(saved[C]{Halted: rt.halted, Reason: rt.reason, Config: rt.cfg}); err != nil {
			rt.log.Error("cannot save setup, rolling back", "err", err)
			if rerr := rt.dev.Apply(rt.cfg, start, rt.Safe()); rerr != nil {
				rt.health = "rollback failed: " + rerr.Error()
			} else {
				rt.health = startHealth
			}
			_ = rt.env.Claims.Replace(rt.kind, start.Claims())
			rt.cfg, rt.halted, rt.reason = start, startHalt, startReason
			if estop {
				rt.halted, rt.reason = true, HaltEstop // not undone by the rollback
			}
			for i, res := range results {
				if changed[i] {
					results[i] = rt.fail(res.ID, OpSetup, Errorf(CodeStorage, "", "the setup could not be saved (%v); nothing changed", err))
				}
			}
			applied = false
		}
	}
	if applied {
		rt.clearRemoved()
		rt.Changed()
	}
	for _, res := range results {
		rt.respond(res)
	}
}

// setup checks and applies one setup payload and returns its result and
// whether anything changed; the caller saves and answers.
func (rt *Runtime[C]) setup(payload []byte) (Result, bool) {
	if len(strings.TrimSpace(string(payload))) == 0 {
		return OK(nil, OpSetup, SetupResult[C]{Config: rt.cfg, Halted: rt.halted}), false
	}
	tree, err := Parse(payload, MaxPayload)
	if err != nil {
		return rt.fail(nil, OpSetup, Errorf(CodeMalformed, "", "%v", err)), false
	}
	obj, ok := tree.(map[string]any)
	if !ok {
		return rt.fail(nil, OpSetup, Errorf(CodeMalformed, "", "the payload must be an object, not %s", show(tree))), false
	}
	var id json.RawMessage
	if v, ok := obj["id"]; ok && v != nil {
		id, _ = json.Marshal(v)
	}
	present := make(map[string]bool, len(obj))
	body := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "id" && k != "merge" {
			body[k] = v
			present[k] = true
		}
	}
	var errs Errors
	merge := false
	if v, ok := obj["merge"]; ok {
		if merge, ok = v.(bool); !ok {
			errs = append(errs, Errorf(CodeMalformed, "merge", "must be true or false, not %s", show(v)))
		}
	}
	if len(body) == 0 && errs == nil {
		// Nothing but an id: a query, like an empty payload, answered with
		// its id. (A setup that empties the service names its lists, as
		// {"output":[]}.)
		return OK(id, OpSetup, SetupResult[C]{Config: rt.cfg, Halted: rt.halted}), false
	}
	var next C
	errs = append(errs, DecodeTree(body, &next, "")...)
	if errs != nil {
		return rt.fail(id, OpSetup, errs), false
	}
	if rt.halted && rt.reason == HaltEstop {
		return rt.fail(id, OpSetup, rt.haltedError()), false
	}
	if merge {
		m, ok := rt.dev.(Merger[C])
		if !ok {
			return rt.fail(id, OpSetup, Errorf(CodeInvalid, "merge", "%s setups cannot be merged; send the whole setup", rt.kind)), false
		}
		next = m.Merge(rt.cfg, next, present)
	}
	if p, ok := rt.dev.(Preparer[C]); ok {
		var perrs Errors
		if next, perrs = p.Prepare(rt.cfg, next); perrs != nil {
			return rt.fail(id, OpSetup, perrs), false
		}
	}
	if errs := rt.check(next); errs != nil {
		return rt.fail(id, OpSetup, errs), false
	}
	prev := rt.cfg
	if errs := rt.env.Claims.Replace(rt.kind, next.Claims()); errs != nil {
		return rt.fail(id, OpSetup, errs), false
	}
	wasState := rt.halted && rt.reason == HaltState
	safe := rt.failsafe || (rt.halted && !wasState)
	if err := rt.dev.Apply(prev, next, safe); err != nil {
		_ = rt.env.Claims.Replace(rt.kind, prev.Claims())
		return rt.fail(id, OpSetup, hardware(err)), false
	}
	rt.cfg = next
	if wasState {
		// A new setup is the operator's word on what the service is.
		rt.halted, rt.reason, rt.startErr = false, "", ""
	}
	rt.health = ""
	rt.log.Info("setup applied")
	return OK(id, OpSetup, SetupResult[C]{Config: next, Halted: rt.halted}), true
}

func hardware(err error) error {
	var e Error
	var es Errors
	if errors.As(err, &es) || errors.As(err, &e) {
		return err
	}
	return Errorf(CodeHardware, "", "%v", err)
}

// clearRemoved clears the retained values of inputs and outputs the new
// configuration no longer has, so that nobody reads a pin that is gone.
func (rt *Runtime[C]) clearRemoved() {
	ifs := rt.dev.Interfaces(rt.cfg)
	keep := map[string]bool{}
	for _, it := range ifs.Inputs {
		keep["input/"+it.Name] = true
	}
	for _, it := range ifs.Outputs {
		keep["output/"+it.Name] = true
	}
	rt.values.clearExcept(keep)
}

// ControlResult is the data of a successful control result.
type ControlResult struct {
	Cmd    string `json:"cmd"`
	Halted bool   `json:"halted"`
}

// controlCmd reads a control payload: a bare word or {"cmd":…}.
func controlCmd(payload []byte) (string, error) {
	cmd := strings.ToLower(strings.TrimSpace(string(payload)))
	if strings.HasPrefix(cmd, "{") {
		var req struct {
			ID  any    `json:"id"`
			Cmd string `json:"cmd" rollcall:"required"`
		}
		if errs := Decode(payload, 0, &req); errs != nil {
			return "", errs
		}
		cmd = strings.ToLower(req.Cmd)
	}
	return cmd, nil
}

// estopWaiting reports whether the next control request is an estop.
func (rt *Runtime[C]) estopWaiting() bool {
	r, ok := rt.q.peek(classControl)
	if !ok {
		return false
	}
	cmd, err := controlCmd(r.msg.Payload)
	return err == nil && cmd == "estop"
}

func (rt *Runtime[C]) control(m Message) {
	id := RequestID(m.Payload)
	cmd, cerr := controlCmd(m.Payload)
	if cerr != nil {
		rt.respond(rt.fail(id, OpControl, cerr))
		return
	}
	var err error
	switch cmd {
	case "estop":
		rt.halted, rt.reason = true, HaltEstop
		herr := rt.dev.Failsafe()
		// Halted from here on, whatever the disk does: the description
		// says so before the flag is written.
		rt.publishSnapshot()
		perr := rt.store.Save(saved[C]{Halted: true, Reason: HaltEstop, Config: rt.cfg})
		rt.log.Warn("emergency stop")
		rt.values.republish("output/")
		switch {
		case perr != nil:
			rt.log.Error("cannot save the halted flag", "err", perr)
			err = Errorf(CodeStorage, "", "stopped: outputs at failsafe and %s halted, but the halted flag could not be kept (%v): a restart would not come back halted", rt.kind, perr)
		case herr != nil:
			err = hardware(herr)
		}
	case "recover":
		rt.halted, rt.reason, rt.startErr = false, "", ""
		if strings.HasPrefix(rt.health, "halted since") || strings.Contains(rt.health, "until recover") {
			rt.health = ""
		}
		if perr := rt.store.Save(saved[C]{Config: rt.cfg}); perr != nil {
			rt.log.Error("cannot save the cleared halted flag", "err", perr)
			err = Errorf(CodeStorage, "", "recovered, but the cleared flag could not be kept (%v): a restart would come back halted", perr)
		}
		rt.log.Info("recovered from emergency stop")
	default:
		rt.respond(rt.fail(id, OpControl, Errorf(CodeInvalid, "cmd", "unknown command %q (want estop or recover)", truncate(cmd, 40))))
		return
	}
	rt.Changed()
	if err != nil {
		rt.respond(rt.fail(id, OpControl, err))
		return
	}
	rt.respond(OK(id, OpControl, ControlResult{Cmd: cmd, Halted: rt.halted}))
}

func (rt *Runtime[C]) set(m Message) {
	name := strings.TrimPrefix(m.Topic, rt.topics.Set(""))
	id := RequestID(m.Payload)
	s := rt.dev.(Setter)
	cmd, err := s.ParseSet(name, m.Payload)
	if err != nil {
		rt.respond(rt.fail(id, OpSet, err))
		return
	}
	if rt.halted {
		rt.respond(rt.fail(id, OpSet, rt.haltedError()))
		return
	}
	data, err := s.Set(cmd)
	if err != nil {
		rt.respond(rt.fail(id, OpSet, hardware(err)))
		return
	}
	rt.respond(OK(id, OpSet, data))
}

// GetResult is the data of a get result: the values republished.
type GetResult struct {
	Inputs  map[string]any `json:"inputs,omitempty"`
	Outputs map[string]any `json:"outputs,omitempty"`
	Halted  bool           `json:"halted"`
	// Description is the service's description, for a plain get.
	Description *Description `json:"description,omitempty"`
}

func (rt *Runtime[C]) get(m Message) {
	id := RequestID(m.Payload)
	rest := strings.TrimPrefix(strings.TrimPrefix(m.Topic, rt.topics.Get()), "/")
	kind, name, _ := strings.Cut(rest, "/")
	ifs := rt.dev.Interfaces(rt.cfg)
	res := GetResult{Halted: rt.halted}
	found := false
	collect := func(k string, list []Interface) map[string]any {
		out := map[string]any{}
		for _, it := range list {
			if name != "" && it.Name != name {
				continue
			}
			found = true
			v, ok := rt.values.republishOne(k + "/" + it.Name)
			if ok {
				out[it.Name] = v
			} else {
				out[it.Name] = nil
			}
		}
		return out
	}
	if kind == "" || kind == "input" {
		res.Inputs = collect("input", ifs.Inputs)
	}
	if kind == "" || kind == "output" {
		res.Outputs = collect("output", ifs.Outputs)
	}
	switch {
	case kind != "" && kind != "input" && kind != "output":
		rt.respond(rt.fail(id, OpGet, Errorf(CodeNotFound, "", "no %q; get, get/input[/<name>] or get/output[/<name>]", truncate(kind, 40))))
	case name != "" && !found:
		rt.respond(rt.fail(id, OpGet, Errorf(CodeNotFound, "", "no %s named %q", kind, truncate(name, 64))))
	default:
		if kind == "" {
			d := rt.Describe()
			res.Description = &d
		}
		rt.respond(OK(id, OpGet, res))
	}
}

// Connected tells the runtime whether the MQTT session is up. After the
// configuration's failsafe delay without a session, counted from start as
// well as from a loss, every output takes its failsafe value. Every
// (re)connect republishes the retained values: a clean session drops what
// was queued while it was down, and a broker restarted without
// persistence has forgotten them.
func (rt *Runtime[C]) Connected(up bool) {
	rt.Do(func() {
		if up {
			rt.values.republish("")
		}
		if rt.connected == up {
			return
		}
		rt.connected = up
		if up {
			rt.lossGen++
			if rt.lossTimer != nil {
				rt.lossTimer.Stop()
				rt.lossTimer = nil
			}
			if rt.failsafe {
				rt.failsafe = false
				rt.Changed()
			}
			return
		}
		rt.armLossTimer()
	})
}

func (rt *Runtime[C]) armLossTimer() {
	fd, ok := any(rt.cfg).(FailsafeDelayer)
	if !ok || rt.connected || rt.lossTimer != nil {
		return
	}
	d := fd.FailsafeDelay()
	if d <= 0 {
		return
	}
	rt.lossGen++
	gen := rt.lossGen
	rt.lossTimer = rt.env.Clock.AfterFunc(d, func() {
		rt.Do(func() { rt.brokerLost(gen, d) })
	})
}

func (rt *Runtime[C]) brokerLost(gen uint64, after time.Duration) {
	if rt.connected || gen != rt.lossGen {
		return
	}
	rt.lossTimer = nil
	rt.log.Warn("no broker, outputs to failsafe", "after", after)
	rt.failsafe = true
	if err := rt.dev.Failsafe(); err != nil {
		rt.log.Error("failsafe", "err", err)
	}
	rt.values.republish("output/")
	rt.Changed()
}

// Describe implements Service. It never waits for a request being served.
func (rt *Runtime[C]) Describe() Description {
	s := rt.snap.Load()
	d := rt.topics.Base()
	if s.health != "" {
		d.Health, d.Error = "error", s.health
	} else if hr, ok := rt.dev.(HealthReporter); ok {
		if why := hr.Health(); why != "" {
			d.Health, d.Error = "error", why
		}
	}
	ifs := rt.dev.Interfaces(s.cfg)
	d.Inputs = rt.values.fill("input", ifs.Inputs)
	d.Outputs = rt.values.fill("output", ifs.Outputs)
	d.State = State{Halted: s.halted, Reason: s.reason, Failsafe: s.failsafe, Config: s.cfg, Schema: rt.schema, Detail: ifs.State}
	return d
}

// State is a Description's State: the runtime's members, and the
// device's own (Detail) beside them in the same object.
type State struct {
	Halted bool `json:"halted"`
	// Reason is why the service is halted: HaltEstop or HaltState.
	Reason string `json:"halt_reason,omitempty"`
	// Failsafe is set while outputs are at failsafe for want of a broker.
	Failsafe bool `json:"failsafe,omitempty"`
	Config   any  `json:"config"`
	Schema   any  `json:"schema,omitempty"`
	Detail   any  `json:"-"`
}

// MarshalJSON puts Detail's members beside the runtime's.
func (s State) MarshalJSON() ([]byte, error) {
	type plain State
	base, err := json.Marshal(plain(s))
	if err != nil || s.Detail == nil {
		return base, err
	}
	detail, err := json.Marshal(s.Detail)
	if err != nil {
		return nil, err
	}
	if len(detail) < 2 || detail[0] != '{' {
		return nil, fmt.Errorf("state detail %T is not an object", s.Detail)
	}
	if string(detail) == "{}" {
		return base, nil
	}
	out := make([]byte, 0, len(base)+len(detail))
	out = append(out, detail[:len(detail)-1]...)
	out = append(out, ',')
	return append(out, base[1:]...), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// rateLog logs a warning per key at most once per interval, counting the
// ones it holds back: whoever sends the messages controls how many.
type rateLog struct {
	log   *slog.Logger
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
	held  int
}

func (r *rateLog) warn(key, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if t, ok := r.last[key]; ok && now.Sub(t) < r.every {
		r.held++
		r.mu.Unlock()
		return
	}
	if len(r.last) > 256 {
		clear(r.last)
	}
	r.last[key] = now
	held := r.held
	r.held = 0
	r.mu.Unlock()
	r.log.Warn(msg, append(args, "suppressed", held)...)
}

// Values are the last published value of every input and output of a
// service, kept so that a get, a reconnect and a description can give
// them without asking the hardware, and so that the retained topics of
// inputs and outputs that are removed can be cleared.
type Values struct {
	mu  sync.Mutex
	m   map[string]*value // "input/<name>" or "output/<name>"
	out *outbox

	// trackMu lets one scan's publish run at a time, so that the inputs
	// recorded meanwhile (tracked) are that scan's.
	trackMu  sync.Mutex
	tracking bool
	tracked  []string
}

type value struct {
	v    any
	msgs []Retained
}

// Retained is one retained message of a value.
type Retained struct {
	Topic   string
	Payload []byte
}

func newValues(out *outbox) *Values { return &Values{m: map[string]*value{}, out: out} }

// Publish records the value of one input or output (kind "input" or
// "output") and publishes payload, retained, on topic.
func (vs *Values) Publish(kind, name, topic string, v any, payload []byte) {
	vs.PublishEach(kind, name, v, Retained{Topic: topic, Payload: payload})
}

// PublishEach records the value of one input or output and publishes each
// of msgs, retained: a value carried on several topics (a reading as JSON
// on <topic> and as a bare number on <topic>/value) is republished and
// cleared as one.
func (vs *Values) PublishEach(kind, name string, v any, msgs ...Retained) {
	vs.mu.Lock()
	vs.m[kind+"/"+name] = &value{v: v, msgs: msgs}
	if vs.tracking && kind == "input" {
		vs.tracked = append(vs.tracked, name)
	}
	for _, m := range msgs {
		vs.out.Send(m.Topic, true, m.Payload)
	}
	vs.mu.Unlock()
}

// track runs publish, a scan's, and returns the names of the inputs it
// recorded: those whose values go stale while the scan fails. Scans
// publish one at a time for it (publishing only queues messages). A
// service that also publishes inputs from elsewhere while its scans run
// would see those counted as the scan's; services that read through
// scans publish their inputs only from them.
func (vs *Values) track(publish func()) []string {
	vs.trackMu.Lock()
	defer vs.trackMu.Unlock()
	vs.mu.Lock()
	vs.tracking, vs.tracked = true, nil
	vs.mu.Unlock()
	publish()
	vs.mu.Lock()
	names := vs.tracked
	vs.tracking, vs.tracked = false, nil
	vs.mu.Unlock()
	return names
}

// Get returns the last value of an input or output.
func (vs *Values) Get(kind, name string) (any, bool) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	e, ok := vs.m[kind+"/"+name]
	if !ok {
		return nil, false
	}
	return e.v, true
}

func (vs *Values) republishOne(key string) (any, bool) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	e, ok := vs.m[key]
	if !ok {
		return nil, false
	}
	vs.send(e)
	return e.v, true
}

func (vs *Values) send(e *value) {
	for _, m := range e.msgs {
		vs.out.Send(m.Topic, true, m.Payload)
	}
}

// republish publishes again every value whose key starts with prefix.
func (vs *Values) republish(prefix string) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(vs.m)) {
		if strings.HasPrefix(k, prefix) {
			vs.send(vs.m[k])
		}
	}
}

func (vs *Values) clearExcept(keep map[string]bool) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	for k, e := range vs.m {
		if !keep[k] {
			for _, m := range e.msgs {
				vs.out.Send(m.Topic, true, nil)
			}
			delete(vs.m, k)
		}
	}
}

// fill returns list with the recorded values.
func (vs *Values) fill(kind string, list []Interface) []Interface {
	out := make([]Interface, len(list))
	vs.mu.Lock()
	defer vs.mu.Unlock()
	for i, it := range list {
		if e, ok := vs.m[kind+"/"+it.Name]; ok && it.Value == nil {
			it.Value = e.v
		}
		out[i] = it
	}
	return out
}
