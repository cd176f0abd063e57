package services_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// The runtime is tested once, here, on a tiny service: a relay board whose
// relays are named outputs on header pins.

type relayConfig struct {
	Relays        []relay           `json:"relays"`
	FailsafeAfter services.Duration `json:"failsafe_after,omitempty"`
}

type relay struct {
	Name     string `json:"name" rollcall:"required"`
	Pin      int    `json:"pin" rollcall:"required"`
	Init     int    `json:"init"`
	Failsafe int    `json:"failsafe"`
}

func (c relayConfig) Check(ck services.Checker) services.Errors {
	var errs services.Errors
	for i, r := range c.Relays {
		if !services.ValidTopicName(r.Name) {
			errs = append(errs, services.Errorf(services.CodeInvalid, fmt.Sprintf("relays[%d].name", i), "bad name %q", r.Name))
		}
		if r.Init != 0 && r.Init != 1 {
			errs = append(errs, services.Errorf(services.CodeInvalid, fmt.Sprintf("relays[%d].init", i), "init must be 0 or 1"))
		}
		if r.Pin < 0 || r.Pin >= services.HeaderPins {
			errs = append(errs, services.Errorf(services.CodeInvalid, fmt.Sprintf("relays[%d].pin", i), "GPIO %d is not on the header", r.Pin))
		}
	}
	return errs
}

func (c relayConfig) Claims() []services.Claim {
	var cl []services.Claim
	for i, r := range c.Relays {
		cl = append(cl, services.PinClaim(fmt.Sprintf("relays[%d].pin", i), r.Pin))
	}
	return cl
}

func (c relayConfig) FailsafeDelay() time.Duration { return c.FailsafeAfter.D() }

// board is the relay service's device: the levels of its relays, and
// faults a test can inject.
type board struct {
	rt *services.Runtime[relayConfig]

	mu     sync.Mutex
	levels map[string]int // what the hardware is driving
	failOn string         // opening this relay fails
	block  chan struct{}  // while set, Apply waits for it
	// entered, when set, hears each Apply that waits on block.
	entered chan struct{}
	// onFailsafe, when set, runs at each Failsafe.
	onFailsafe func()
	closed     bool
}

func (b *board) Apply(prev, next relayConfig, safe bool) error {
	b.mu.Lock()
	block, entered := b.block, b.entered
	b.mu.Unlock()
	if block != nil {
		if entered != nil {
			entered <- struct{}{}
		}
		<-block
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := map[string]int{}
	for k, v := range b.levels {
		old[k] = v
	}
	b.levels = map[string]int{}
	for _, r := range next.Relays {
		if r.Name == b.failOn {
			b.levels = old // all or nothing
			return fmt.Errorf("relay %s: GPIO %d: line busy", r.Name, r.Pin)
		}
		v := r.Init
		if safe {
			v = r.Failsafe
		}
		if prevLevel, kept := old[r.Name]; kept && slicesContain(prev.Relays, r) {
			v = prevLevel
		}
		b.levels[r.Name] = v
	}
	for _, r := range next.Relays {
		v := b.levels[r.Name]
		topic := b.rt.Topics().Output(r.Name)
		// The relay's state also goes out as a word, for a dashboard.
		word := services.Retained{Topic: topic + "/state", Payload: []byte(map[int]string{0: "off", 1: "on"}[v])}
		b.rt.Values().PublishEach("output", r.Name, v, services.Retained{Topic: topic, Payload: []byte(strconv.Itoa(v))}, word)
	}
	return nil
}

func slicesContain(rs []relay, r relay) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

func (b *board) Failsafe() error {
	if b.onFailsafe != nil {
		b.onFailsafe()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.rt.Config().Relays {
		b.levels[r.Name] = r.Failsafe
		b.rt.Values().Publish("output", r.Name, b.rt.Topics().Output(r.Name), r.Failsafe, []byte(strconv.Itoa(r.Failsafe)))
	}
	return nil
}

func (b *board) Interfaces(cfg relayConfig) services.Interfaces {
	var ifs services.Interfaces
	for _, r := range cfg.Relays {
		ifs.Outputs = append(ifs.Outputs, services.Interface{Name: r.Name, Topic: b.rt.Topics().Output(r.Name), Type: "bool", Set: b.rt.Topics().Set(r.Name)})
	}
	ifs.State = struct {
		Board string `json:"board"`
	}{"relay-hat"}
	return ifs
}

func (b *board) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

func (b *board) ParseSet(name string, payload []byte) (any, error) {
	for _, r := range b.rt.Config().Relays {
		if r.Name == name {
			v, err := strconv.Atoi(strings.TrimSpace(string(payload)))
			if err != nil || (v != 0 && v != 1) {
				return nil, services.Errorf(services.CodeInvalid, "value", "want 0 or 1")
			}
			return [2]any{name, v}, nil
		}
	}
	return nil, services.Errorf(services.CodeNotFound, "", "no relay %q", name)
}

func (b *board) Set(cmd any) (any, error) {
	c := cmd.([2]any)
	name, v := c[0].(string), c[1].(int)
	b.mu.Lock()
	b.levels[name] = v
	b.mu.Unlock()
	b.rt.Values().Publish("output", name, b.rt.Topics().Output(name), v, []byte(strconv.Itoa(v)))
	return map[string]any{"name": name, "value": v}, nil
}

func (b *board) level(name string) (int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.levels[name]
	return v, ok
}

var relayTopics = services.Topics{Host: "pi1", Service: "relay"}

type relayHarness struct {
	t      *testing.T
	rt     *services.Runtime[relayConfig]
	board  *board
	bus    *servicestest.Bus
	clock  *servicestest.Clock
	claims *services.Claims
	dir    string
	stop   func()
}

func startRelay(t *testing.T, cfg relayConfig, dir string, bus *servicestest.Bus) *relayHarness {
	t.Helper()
	h := &relayHarness{t: t, bus: bus, clock: servicestest.NewClock(), claims: servicestest.Claims(t, nil), dir: dir}
	if h.bus == nil {
		h.bus = servicestest.NewBus()
	}
	h.board = &board{levels: map[string]int{}}
	rt, err := services.NewRuntime(services.RuntimeOptions[relayConfig]{
		Kind: "relay", Config: cfg, Schema: map[string]any{"setup": map[string]any{"type": "object"}},
		Env: services.Env{Host: "pi1", StateDir: dir, Claims: h.claims, Clock: h.clock},
	}, h.board)
	if err != nil {
		t.Fatal(err)
	}
	h.board.rt, h.rt = rt, rt
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx, h.bus) }()
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(h.stop)
	<-rt.Serving()
	return h
}

func (h *relayHarness) request(topic, payload string) servicestest.Result {
	h.t.Helper()
	return h.bus.Request(h.t, relayTopics, "pi1/relay/"+topic, payload)
}

// sync waits until the runtime has served everything queued before it.
func (h *relayHarness) sync() {
	done := make(chan struct{})
	h.rt.Do(func() { close(done) })
	select {
	case <-done:
	case <-time.After(servicestest.Timeout):
		h.t.Fatal("the runtime's goroutine did not run")
	}
}

// state is the runtime's part of the description's state.
func (h *relayHarness) state() services.State {
	h.t.Helper()
	st, ok := h.rt.Describe().State.(services.State)
	if !ok {
		h.t.Fatalf("state is %T", h.rt.Describe().State)
	}
	return st
}

func (h *relayHarness) saved() string {
	b, _ := os.ReadFile(filepath.Join(h.dir, "relay.json"))
	return string(b)
}

func twoRelays() relayConfig {
	return relayConfig{Relays: []relay{{Name: "pump", Pin: 25}, {Name: "heater", Pin: 23, Failsafe: 0}}}
}

func TestRuntimeSetupPaths(t *testing.T) {
	h := startRelay(t, twoRelays(), t.TempDir(), nil)
	if r := h.request("setup", `{"id":1,"relays":[{"name":"pump","pin":25,"init":1},{"name":"heater","pin":23}]}`); r.Status != "ok" {
		t.Fatalf("setup %+v", r)
	}
	before, saved := h.state(), h.saved()
	if !strings.Contains(saved, `"init": 1`) {
		t.Fatalf("saved %s", saved)
	}
	// A payload with nothing but an id is a query, answered with its id.
	if r := h.request("setup", `{"id":"q"}`); r.Status != "ok" || string(r.ID) != `"q"` || !strings.Contains(string(r.Data), `"pump"`) {
		t.Fatalf("an id-only setup: %+v %s", r, r.Data)
	}

	tests := []struct {
		name, payload string
		code, field   string
		message       string
	}{
		{name: "bad JSON", payload: `{"relays":[`, code: services.CodeMalformed, message: "not valid JSON"},
		{name: "bad YAML", payload: "relays: [\n  - {name: a", code: services.CodeMalformed, message: "neither JSON nor YAML"},
		{name: "not an object", payload: `[1]`, code: services.CodeMalformed, message: "must be an object"},
		{name: "oversized", payload: `{"relays":[],"pad":"` + strings.Repeat("x", services.MaxPayload) + `"}`, code: services.CodeTooLarge},
		{name: "unknown field", payload: `{"relays":[{"name":"a","pin":5,"colour":"red"}]}`, code: services.CodeMalformed, field: "relays[0].colour", message: `unknown field "colour"`},
		{name: "wrong case", payload: `{"Relays":[]}`, code: services.CodeMalformed, field: "Relays"},
		{name: "float for int", payload: `{"relays":[{"name":"a","pin":4.7}]}`, code: services.CodeMalformed, field: "relays[0].pin", message: "integer"},
		{name: "bool for int", payload: `{"relays":[{"name":"a","pin":true}]}`, code: services.CodeMalformed, field: "relays[0].pin"},
		{name: "map for list", payload: `{"relays":{"name":"a","pin":5}}`, code: services.CodeMalformed, field: "relays", message: "list"},
		{name: "missing pin", payload: `{"relays":[{"name":"a"}]}`, code: services.CodeMalformed, field: "relays[0].pin", message: "required"},
		{name: "validation error", payload: `{"relays":[{"name":"a","pin":28}]}`, code: services.CodeInvalid, field: "relays[0].pin", message: "GPIO 28"},
		{name: "claimed pin", payload: `{"relays":[{"name":"a","pin":4}]}`, code: services.CodeConflict, field: "relays[0].pin", message: "dht22"},
		{name: "bus pin", payload: `{"relays":[{"name":"a","pin":3}]}`, code: services.CodeConflict, field: "relays[0].pin", message: "i2c1"},
		{name: "merge unsupported", payload: `{"merge":true,"relays":[]}`, code: services.CodeInvalid, field: "merge"},
		{name: "merge not a bool, alone", payload: `{"merge":"yes"}`, code: services.CodeMalformed, field: "merge"},
		{name: "YAML alias bomb", payload: "a: &a [x,x,x,x,x,x,x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\nrelays: [*d]\n",
			code: services.CodeMalformed, message: "aliases expand"},
		{name: "hardware failure", payload: `{"relays":[{"name":"pump","pin":25},{"name":"broken","pin":5}]}`, code: services.CodeHardware, message: "line busy"},
	}
	h.board.failOn = "broken"
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from := h.bus.Mark()
			r := h.request("setup", tc.payload)
			if r.Status != "error" || !r.HasError(tc.code, tc.field) {
				t.Fatalf("result %+v, want %s at %q", r.Problems(), tc.code, tc.field)
			}
			if tc.message != "" && !strings.Contains(fmt.Sprint(r.Problems()), tc.message) {
				t.Errorf("problems %v do not say %q", r.Problems(), tc.message)
			}
			for _, m := range h.bus.Since(from) {
				if strings.Contains(m.Topic, "/output/") {
					t.Errorf("value published after a refused setup: %+v", m)
				}
			}
			if after := h.state(); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("state changed:\n%+v\n%+v", before, after)
			}
			if h.saved() != saved {
				t.Error("the state file changed")
			}
			if v, _ := h.board.level("pump"); v != 1 {
				t.Error("the hardware changed")
			}
			if held := h.claims.Held("relay"); len(held) != 2 {
				t.Errorf("claims changed: %v", held)
			}
		})
	}
	// Every problem of a setup is reported, not only the first.
	r := h.request("setup", `{"relays":[{"name":"a/b","pin":28,"init":2},{"name":"c","pin":"x"}]}`)
	if len(r.Problems()) != 1 || r.Problems()[0].Field != "relays[1].pin" {
		// decoding comes first: a payload that does not decode is not checked
		t.Errorf("decode problems %v", r.Problems())
	}
	r = h.request("setup", `{"relays":[{"name":"a/b","pin":28,"init":2}]}`)
	if len(r.Problems()) != 3 {
		t.Errorf("problems %v, want all three", r.Problems())
	}
}

func TestRuntimePersistFailureChangesNothing(t *testing.T) {
	dir := t.TempDir()
	h := startRelay(t, twoRelays(), dir, nil)
	// The state file's name taken by a directory: the atomic rename fails
	// for root too, as a read-only or full state directory would.
	if err := os.Mkdir(filepath.Join(dir, "relay.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	from := h.bus.Mark()
	r := h.request("setup", `{"relays":[{"name":"fan","pin":24,"init":1}]}`)
	if !r.HasError(services.CodeStorage, "") || !strings.Contains(r.Error.Message, "nothing changed") {
		t.Fatalf("result %+v, want a storage error", r.Problems())
	}
	if _, ok := h.board.level("fan"); ok {
		t.Error("the fan stayed on the hardware after the rollback")
	}
	if v, ok := h.board.level("pump"); !ok || v != 0 {
		t.Error("the pump was not restored")
	}
	if cfg := h.rt.Snapshot(); len(cfg.Relays) != 2 || cfg.Relays[0].Name != "pump" {
		t.Errorf("config after a failed save: %+v", cfg)
	}
	if held := h.claims.Held("relay"); len(held) != 2 || held[0].Pin != 25 {
		t.Errorf("claims after a failed save: %v", held)
	}
	// The fan's retained value is cleared by the rollback's republish of
	// the relays that remain, never left as if it were there.
	for _, m := range h.bus.Published(from, "pi1/relay/result") {
		if strings.Contains(m.Payload, `"status":"ok"`) {
			t.Errorf("an ok result for an unsaved setup: %s", m.Payload)
		}
	}

	// An estop still stops, in memory, and says the flag was not kept.
	r = h.request("control", "estop")
	if !r.HasError(services.CodeStorage, "") || !strings.Contains(r.Error.Message, "could not be kept") {
		t.Fatalf("estop with a broken state dir: %+v", r.Problems())
	}
	if !h.state().Halted {
		t.Error("estop did not halt in memory")
	}
	if r := h.request("set/pump", "1"); !r.HasError(services.CodeHalted, "") {
		t.Errorf("set while halted: %+v", r.Problems())
	}
}

func TestRuntimeEstopRecoverPersisted(t *testing.T) {
	dir := t.TempDir()
	cfg := twoRelays()
	cfg.Relays[1].Failsafe = 1
	h := startRelay(t, cfg, dir, nil)
	if r := h.request("set/pump", "1"); r.Status != "ok" {
		t.Fatalf("set %+v", r)
	}
	r := h.request("control", `{"cmd":"estop","id":"e"}`)
	if r.Status != "ok" || string(r.ID) != `"e"` {
		t.Fatalf("estop %+v", r)
	}
	if v, _ := h.board.level("pump"); v != 0 {
		t.Error("pump not at failsafe")
	}
	if v, _ := h.board.level("heater"); v != 1 {
		t.Error("heater not at its failsafe 1")
	}
	if st := h.state(); !st.Halted || st.Reason != services.HaltEstop {
		t.Errorf("state %+v", st)
	}
	for _, req := range []struct{ topic, payload string }{{"set/pump", "1"}, {"setup", `{"relays":[]}`}} {
		if r := h.request(req.topic, req.payload); !r.HasError(services.CodeHalted, "") {
			t.Errorf("%s while halted: %+v", req.topic, r.Problems())
		}
	}
	if r := h.request("get", ""); r.Status != "ok" {
		t.Errorf("get while halted: %+v", r.Problems())
	}
	h.stop()

	h = startRelay(t, cfg, dir, nil)
	if !h.state().Halted {
		t.Fatal("the halt did not survive a restart")
	}
	if v, _ := h.board.level("heater"); v != 1 {
		t.Error("after a restart while halted, outputs are not at failsafe")
	}
	if r := h.request("control", "recover"); r.Status != "ok" {
		t.Fatalf("recover %+v", r)
	}
	h.stop()
	h = startRelay(t, cfg, dir, nil)
	if h.state().Halted {
		t.Error("recover did not survive a restart")
	}
}

func TestRuntimeRetainedRequestsIgnored(t *testing.T) {
	bus := servicestest.NewBus()
	bus.Retain("pi1/relay/setup", `{"relays":[{"name":"old","pin":5,"init":1}]}`)
	bus.Retain("pi1/relay/control", "recover")
	bus.Retain("pi1/relay/set/pump", "1")
	h := startRelay(t, twoRelays(), t.TempDir(), bus)
	h.sync()
	if _, ok := h.board.level("old"); ok {
		t.Error("a retained setup was applied")
	}
	if v, _ := h.board.level("pump"); v != 0 {
		t.Error("a retained set was applied")
	}
	if len(h.bus.Published(0, "pi1/relay/result")) != 0 {
		t.Error("a retained request was answered")
	}
}

func TestRuntimeFailsafeFromBoot(t *testing.T) {
	cfg := twoRelays()
	cfg.Relays[0].Init = 1
	cfg.FailsafeAfter = services.Duration(time.Minute)
	h := startRelay(t, cfg, "", nil)
	// No session ever comes up: the failsafe delay counts from start.
	h.clock.Advance(59 * time.Second)
	h.sync()
	if v, _ := h.board.level("pump"); v != 1 {
		t.Fatal("failsafe before its time")
	}
	h.clock.Advance(time.Second)
	h.sync()
	if v, _ := h.board.level("pump"); v != 0 || !h.state().Failsafe {
		t.Fatal("no failsafe a minute after a boot without a broker")
	}
	h.rt.Connected(true)
	h.sync()
	if h.state().Failsafe {
		t.Error("failsafe flag kept once connected")
	}
}

func TestRuntimeDescribeDoesNotWaitForHardware(t *testing.T) {
	h := startRelay(t, twoRelays(), "", nil)
	h.board.mu.Lock()
	h.board.block = make(chan struct{})
	block := h.board.block
	h.board.mu.Unlock()
	h.bus.Send("pi1/relay/setup", `{"relays":[{"name":"slow","pin":5}]}`)
	h.bus.Send("pi1/relay/get", "")
	start := time.Now()
	for range 100 {
		d := h.rt.Describe()
		if len(d.Outputs) != 2 {
			t.Fatalf("outputs %+v", d.Outputs)
		}
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("100 descriptions during a blocked apply took %v", took)
	}
	close(block)
	h.bus.WaitFor(t, "the slow setup's result", func(msgs []servicestest.Message, _, _ int) bool {
		for _, m := range msgs {
			if m.Topic == "pi1/relay/result" && strings.Contains(m.Payload, `"op":"setup"`) {
				return true
			}
		}
		return false
	})
}

// TestRuntimeEstopAheadOfTheBatchWrite: an estop that arrives while a
// batch of setups is being applied drives the outputs to failsafe before
// the batch is written to disk (an SD card's fsync can take tens of
// milliseconds), and the halted flag is kept with the batch.
func TestRuntimeEstopAheadOfTheBatchWrite(t *testing.T) {
	h := startRelay(t, twoRelays(), t.TempDir(), nil)
	h.board.mu.Lock()
	h.board.block, h.board.entered = make(chan struct{}), make(chan struct{}, 1)
	block, entered := h.board.block, h.board.entered
	h.board.mu.Unlock()
	var atFailsafe []string // the state file each time the outputs went to failsafe
	h.board.onFailsafe = func() { atFailsafe = append(atFailsafe, h.saved()) }

	h.bus.Send("pi1/relay/setup", `{"id":"a","relays":[{"name":"pump","pin":25,"init":1}]}`)
	select {
	case <-entered:
	case <-time.After(servicestest.Timeout):
		t.Fatal("the setup was never applied")
	}
	h.bus.Send("pi1/relay/control", `{"cmd":"estop","id":"stop"}`)
	close(block)
	h.sync()
	if len(atFailsafe) == 0 {
		t.Fatal("the outputs never went to failsafe")
	}
	if strings.Contains(atFailsafe[0], `"init": 1`) {
		t.Errorf("the outputs went to failsafe only after the batch was written:\n%s", atFailsafe[0])
	}
	if v, _ := h.board.level("pump"); v != 0 {
		t.Errorf("pump at %d after the estop, want its failsafe 0", v)
	}
	saved := h.saved()
	if !strings.Contains(saved, `"halted": true`) || !strings.Contains(saved, `"init": 1`) {
		t.Errorf("state file after the batch and the estop:\n%s", saved)
	}
	got := map[string]servicestest.Result{}
	h.bus.WaitFor(t, "the setup's and the estop's results", func(msgs []servicestest.Message, _, _ int) bool {
		for _, m := range msgs {
			var r servicestest.Result
			if m.Topic == "pi1/relay/result" && json.Unmarshal([]byte(m.Payload), &r) == nil {
				got[string(r.ID)] = r
			}
		}
		return len(got) == 2
	})
	for id, r := range got {
		if r.Status != "ok" {
			t.Errorf("result %s: %+v", id, r.Problems())
		}
	}
}

func TestRuntimeControlOvertakesSetupsAndFloodsAreAnswered(t *testing.T) {
	h := startRelay(t, twoRelays(), t.TempDir(), nil)
	h.board.mu.Lock()
	h.board.block = make(chan struct{})
	block := h.board.block
	h.board.mu.Unlock()
	const n = 200
	for i := range n {
		h.bus.Send("pi1/relay/setup", fmt.Sprintf(`{"id":%d,"relays":[{"name":"pump","pin":25,"init":%d}]}`, i, i%2))
	}
	h.bus.Send("pi1/relay/control", `{"cmd":"estop","id":"stop"}`)
	close(block)
	var got map[string]servicestest.Result
	h.bus.WaitFor(t, "a result for every request", func(msgs []servicestest.Message, _, _ int) bool {
		got = map[string]servicestest.Result{}
		for _, m := range msgs {
			if m.Topic != "pi1/relay/result" {
				continue
			}
			var r servicestest.Result
			if json.Unmarshal([]byte(m.Payload), &r) == nil {
				got[string(r.ID)] = r
			}
		}
		return len(got) == n+1
	})
	busy, ok, halted := 0, 0, 0
	for id, r := range got {
		switch {
		case id == `"stop"`:
			if r.Status != "ok" {
				t.Errorf("estop %+v", r.Problems())
			}
		case r.HasError(services.CodeBusy, ""):
			busy++
		case r.HasError(services.CodeHalted, ""):
			halted++
		case r.Status == "ok":
			ok++
		default:
			t.Errorf("result %s: %+v", id, r.Problems())
		}
	}
	if busy == 0 || halted == 0 {
		t.Errorf("busy %d, halted %d, ok %d: the queue should have refused some and the estop overtaken the rest", busy, halted, ok)
	}
	if v, _ := h.board.level("pump"); v != 0 {
		t.Error("a setup after the estop drove the pump")
	}
}

func TestRuntimeUnusableState(t *testing.T) {
	for _, tc := range []struct {
		name, content string
	}{
		{"truncated", `{"halted":true,"config":{"relays":[{"name":"pump",`},
		{"empty", ""},
		{"null", "null"},
		{"random", "\x8f\x02\xffgarbage"},
		{"no longer valid", `{"config":{"relays":[{"name":"pump","pin":4}]}}`},
		{"unknown field", `{"config":{"relays":[{"name":"pump","pin":25,"colour":"red"}]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "relay.json"), []byte(tc.content), 0o600)
			cfg := twoRelays()
			cfg.Relays[0].Init = 1
			h := startRelay(t, cfg, dir, nil)
			st, d := h.state(), h.rt.Describe()
			if !st.Halted || st.Reason != services.HaltState {
				t.Fatalf("state %+v, want halted for an unusable state file", st)
			}
			if d.Health != "error" || !strings.Contains(d.Error, "relay.json") {
				t.Errorf("health %q %q does not name the file", d.Health, d.Error)
			}
			if v, _ := h.board.level("pump"); v != 0 {
				t.Error("started with outputs at init, not failsafe")
			}
			aside, _ := filepath.Glob(filepath.Join(dir, "relay.json.bad-*"))
			if len(aside) != 1 {
				t.Fatalf("bad file not kept aside: %v", aside)
			}
			if b, _ := os.ReadFile(aside[0]); string(b) != tc.content {
				t.Error("the kept file is not the bad one")
			}
			// Still halted after a restart.
			h.stop()
			h = startRelay(t, cfg, dir, nil)
			if !h.state().Halted {
				t.Fatal("the halt for an unusable state did not survive a restart")
			}
			// A new setup is the operator's word: it clears the halt.
			if r := h.request("setup", `{"relays":[{"name":"pump","pin":25}]}`); r.Status != "ok" {
				t.Fatalf("setup %+v", r.Problems())
			}
			if st := h.state(); st.Halted {
				t.Error("a new setup did not clear the halt")
			}
		})
	}
}

func TestRuntimeRemovedValuesCleared(t *testing.T) {
	h := startRelay(t, twoRelays(), "", nil)
	servicestest.WaitUntil(t, "heater retained", func() bool {
		_, ok := h.bus.Retained("pi1/relay/output/heater")
		return ok
	})
	if r := h.request("setup", `{"relays":[{"name":"pump","pin":25}]}`); r.Status != "ok" {
		t.Fatal(r.Problems())
	}
	h.bus.Expect(t, 0, "pi1/relay/output/heater", "")
	h.bus.Expect(t, 0, "pi1/relay/output/heater/state", "")
	for _, topic := range []string{"pi1/relay/output/heater", "pi1/relay/output/heater/state"} {
		if p, ok := h.bus.Retained(topic); ok {
			t.Errorf("the removed relay's %s is still retained: %q", topic, p)
		}
	}
	for _, topic := range []string{"pi1/relay/output/pump", "pi1/relay/output/pump/state"} {
		if _, ok := h.bus.Retained(topic); !ok {
			t.Errorf("the kept relay's %s was cleared", topic)
		}
	}
	// What goes with a value is republished with it.
	from := h.bus.Mark()
	if r := h.request("get/output/pump", ""); r.Status != "ok" {
		t.Fatal(r.Problems())
	}
	h.bus.Expect(t, from, "pi1/relay/output/pump/state", "off")
}

func TestRuntimeStaleTempsRemoved(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{".relay.json.tmp123", ".relay.json.tmp9"} {
		os.WriteFile(filepath.Join(dir, n), []byte("{"), 0o600)
	}
	startRelay(t, twoRelays(), dir, nil)
	if left, _ := filepath.Glob(filepath.Join(dir, ".relay.json.tmp*")); len(left) != 0 {
		t.Errorf("stale temporaries left: %v", left)
	}
}

func TestStateMarshalsDetailBesideRuntime(t *testing.T) {
	h := startRelay(t, twoRelays(), "", nil)
	b, err := json.Marshal(h.rt.Describe().State)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"board", "halted", "config", "schema"} {
		if _, ok := m[k]; !ok {
			t.Errorf("state %s lacks %q", b, k)
		}
	}
}
