package main_test

// The crash test: the real binary, killed with SIGKILL at random points of
// a stream of setups, estops and recovers, must always come back with the
// last state it acknowledged (or the state of the request it was serving
// when it died, which it may have kept without having said so yet), never
// an older one, never a mix.
//
//	go test ./cmd/rollcall -run TestCrash -v                     # a few kills
//	go test ./cmd/rollcall -run '^$' -bench Crash -benchtime 1x  # 120 kills

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollcall/rollcall/agent/broker"
)

// crashState is what the crash test compares: the outputs (name, pin,
// init) and the halted flag.
type crashState struct {
	outputs string
	halted  bool
}

func (s crashState) String() string { return fmt.Sprintf("{%s halted=%v}", s.outputs, s.halted) }

// outputsOf summarizes a gpio config's outputs.
func outputsOf(cfg json.RawMessage) string {
	var c struct {
		Output []struct {
			Name string `json:"name"`
			Pin  int    `json:"pin"`
			Init int    `json:"init"`
		} `json:"output"`
	}
	json.Unmarshal(cfg, &c)
	var parts []string
	for _, o := range c.Output {
		parts = append(parts, fmt.Sprintf("%s@%d=%d", o.Name, o.Pin, o.Init))
	}
	return strings.Join(parts, " ")
}

// crashRig runs one agent against a broker in the test process.
type crashRig struct {
	t      testing.TB
	bin    string
	args   []string
	broker string
}

func newCrashRig(t testing.TB) *crashRig {
	t.Helper()
	b, err := broker.Start("127.0.0.1:0", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	dir := t.TempDir()
	config := filepath.Join(dir, "rollcall.yaml")
	if err := os.WriteFile(config, []byte(killConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	return &crashRig{t: t, bin: buildRollcall(t), broker: b.URL(), args: []string{"agent", "--sim", "--host", "crash",
		"--state-dir", filepath.Join(dir, "state"), "--broker", b.URL(), "--port", fmt.Sprint(freePort(t, "udp")), "--config", config}}
}

// query reads the agent's state with an empty setup.
func (r *crashRig) query(w *hostWatch) crashState {
	r.t.Helper()
	q := w.request(r.t, "crash/gpio/setup", nil)
	var d struct {
		Config json.RawMessage `json:"config"`
		Halted bool            `json:"halted"`
	}
	if q.Status != "ok" || json.Unmarshal(q.Data, &d) != nil {
		r.t.Fatalf("query: %s", q)
	}
	return crashState{outputsOf(d.Config), d.Halted}
}

// round starts the agent, streams random requests at it, kills it at a
// random moment, restarts it and checks what it restored. It returns the
// number of requests acknowledged before the kill.
func (r *crashRig) round(rng *rand.Rand) int {
	t := r.t
	t.Helper()
	p := startProc(t, r.bin, r.args...)
	w := watchHost(t, r.broker, "crash")
	w.awaitGPIO(t)
	last := r.query(w)

	type req struct {
		topic   string
		payload string
		next    func(crashState) crashState // the state if it succeeds
	}
	gen := func(i int) req {
		switch rng.IntN(6) {
		case 0:
			return req{"crash/gpio/control", fmt.Sprintf(`{"cmd":"estop","id":%d}`, i), func(s crashState) crashState { s.halted = true; return s }}
		case 1:
			return req{"crash/gpio/control", fmt.Sprintf(`{"cmd":"recover","id":%d}`, i), func(s crashState) crashState { s.halted = false; return s }}
		default:
			pin, init := []int{5, 6, 12, 13, 16}[rng.IntN(5)], rng.IntN(2)
			setup := fmt.Sprintf(`{"id":%d,"output":[{"name":"lamp","pin":23,"init":%d},{"name":"fan","pin":%d,"init":%d}]}`, i, 1-init, pin, init)
			outs := fmt.Sprintf("lamp@23=%d fan@%d=%d", 1-init, pin, init)
			return req{"crash/gpio/setup", setup, func(s crashState) crashState {
				if !s.halted {
					s.outputs = outs
				}
				return s
			}}
		}
	}
	killAt := time.Now().Add(time.Duration(rng.IntN(60)) * time.Millisecond)
	acked := 0
	var inflight *crashState
	for i := 0; ; i++ {
		q := gen(i)
		next := q.next(last)
		inflight = &next
		if time.Now().After(killAt) {
			// Kill with the request on its way: the agent may or may
			// not have kept it.
			w.publish(t, q.topic, []byte(q.payload))
			break
		}
		res := w.request(t, q.topic, []byte(q.payload))
		if res.Status == "ok" {
			last, acked = next, acked+1
		} else if !strings.Contains(string(res.Error), "halted") {
			t.Fatalf("request %s: %s", q.payload, res)
		}
		inflight = nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
	w.close()

	p = startProc(t, r.bin, r.args...)
	w = watchHost(t, r.broker, "crash")
	w.awaitGPIO(t)
	got := r.query(w)
	allowed := []crashState{last}
	if inflight != nil {
		allowed = append(allowed, *inflight)
	}
	if !slices.Contains(allowed, got) {
		t.Fatalf("after SIGKILL the agent restored %s; the last acknowledged state was %s (in flight: %v)", got, last, inflight)
	}
	w.close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
	return acked
}

func crashRounds(t testing.TB, rounds int) (acked int) {
	rig := newCrashRig(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for range rounds {
		acked += rig.round(rng)
	}
	return acked
}

// TestCrashRestoresLastAcknowledged kills the agent a few times
// (ROLLCALL_CRASH_ROUNDS, default 6) in the middle of a request stream.
func TestCrashRestoresLastAcknowledged(t *testing.T) {
	rounds := 6
	if n, err := fmt.Sscan(os.Getenv("ROLLCALL_CRASH_ROUNDS"), &rounds); n == 1 && err == nil && rounds < 1 {
		t.Skip("ROLLCALL_CRASH_ROUNDS=0")
	}
	acked := crashRounds(t, rounds)
	t.Logf("%d kills, %d requests acknowledged before them, no state lost", rounds, acked)
}

// BenchmarkCrash kills the agent 120 times and reports the states lost
// (the target is none).
func BenchmarkCrash(b *testing.B) {
	const rounds = 120
	start := time.Now()
	acked := crashRounds(b, rounds)
	b.ReportMetric(rounds, "kills")
	b.ReportMetric(float64(acked), "acked-requests")
	b.ReportMetric(0, "states-lost") // a lost state fails the benchmark
	b.ReportMetric(time.Since(start).Seconds()/rounds, "s/kill")
}

// publish sends a request without waiting for its result.
func (w *hostWatch) publish(t testing.TB, topic string, payload []byte) {
	t.Helper()
	if tk := w.cl.Publish(topic, 1, false, payload); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tk.Error())
	}
}
