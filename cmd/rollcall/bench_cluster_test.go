package main_test

// Benchmarks on a network-namespace cluster (root needed). The sweep
// table, in one run on one cluster:
//
//	go test ./cmd/rollcall -run '^$' -bench NetCluster -benchtime 1x -timeout 30m
//
// ROLLCALL_BENCH_HOSTS (default 10,50,100) and ROLLCALL_BENCH_SWEEPS
// (default 30) change the sizes and the sweeps per row;
// ROLLCALL_BENCH_BIN measures that rollcall binary (another commit's,
// say) instead of building this tree.
//
// BenchmarkNetCluster prints one table. One cluster of as many hosts as
// the largest row, one stock mosquitto on the first host (a listener and
// allow_anonymous, nothing else) and, for each row, that many hosts
// running `rollcall agent --sim`, started after the loss is in place (an
// nftables rule on the bridge dropping that share of every frame, in both
// directions, so MQTT's TCP suffers it too) and after a fresh broker. The
// sweeps run on the broker's host, as on the Pi that runs mosquitto; each
// row alternates, 400 ms apart:
//
//   - rollcall: `rollcall sweep --json --expect N` as a user runs it, timed
//     from process start to exit (wall), and its own complete_ms: first
//     probe to last expected answer.
//   - floor: the same sweep (discovery.Sweep: probe, schedule, heard list,
//     acknowledgements) against a minimal responder on every host that
//     answers each probe over UDP and does nothing else
//     (clustertest.Floor): what the network and the hosts' wake-ups cost.
//
// Then the agents' resident memory, and the broker killed and started
// again: recovery is the time from its return until every host's status
// (online), description and summary are retained again. A last row
// repeats 50 hosts without loss on a tuned mosquitto (set_tcp_nodelay), a
// comparison only.
//
// Targets, checked here and nowhere else: 50 hosts without loss, stock
// mosquitto: wall p50 ≤ 40 ms, complete_ms p50 ≤ 3 × the floor's p50;
// 50 hosts at 20% loss: every sweep complete, complete_ms p99 ≤ 500 ms;
// recovery ≤ 2 s without loss. With 30 sweeps p99 is the slowest.
//
// BenchmarkAgentIdle: resident memory and CPU of one idle `agent --sim`.
// Targets: <= 20 MiB RSS, <= 0.5% of one core.
//
//	go test ./cmd/rollcall -run '^$' -bench AgentIdle -benchtime 1x

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/agent/clustertest"
)

// benchRow is one row of the table: a cluster size, a loss, a broker.
type benchRow struct {
	hosts, loss int
	tuned       bool
	sweeps      int

	wall, complete, floor []float64 // ms, complete sweeps only
	okRollcall, okFloor   int
	recovery              time.Duration
	recovered             bool
	rssMedian, rssMax     float64 // MiB
	load                  string  // /proc/loadavg's 1-minute figure at the row's end
}

func BenchmarkNetCluster(b *testing.B) {
	clustertest.Skip(b)
	sizes := benchSizes(b)
	sweeps := benchEnvInt(b, "ROLLCALL_BENCH_SWEEPS", 30)
	bin := os.Getenv("ROLLCALL_BENCH_BIN")
	if bin == "" {
		bin = buildRollcall(b)
	}
	floor := clustertest.NewFloor(b)
	rc := newRollcallOn(b, bin, slices.Max(sizes), clustertest.Options{})
	b.ResetTimer()

	var rows []*benchRow
	for _, n := range sizes {
		for _, loss := range []int{0, 20} {
			rows = append(rows, benchRun(b, rc, floor, &benchRow{hosts: n, loss: loss, sweeps: sweeps}))
		}
	}
	// A comparison only: the same cluster on mosquitto with its Nagle
	// off. Stock mosquitto is what the targets are measured on.
	if slices.Contains(sizes, 50) {
		rc.mq.Kill()
		rc.mq = rc.c.Hosts[0].StartMosquitto(b, clustertest.MosquittoOptions{NoDelay: true})
		rows = append(rows, benchRun(b, rc, floor, &benchRow{hosts: 50, sweeps: sweeps, tuned: true}))
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")

	var t strings.Builder
	fmt.Fprintf(&t, "\n| hosts | loss | broker | rollcall wall p50 / p99 | complete_ms p50 / p99 | raw UDP floor p50 / p99 | complete ÷ floor (p50) | complete (rollcall, floor) | recovery after broker restart | agent RSS median / max | load (1 min) |\n")
	fmt.Fprintf(&t, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		broker := "stock"
		if r.tuned {
			broker = "tuned (set_tcp_nodelay)"
		}
		recovery := "not back in 20 s"
		if r.recovered {
			recovery = fmt.Sprintf("%.2f s", r.recovery.Seconds())
		}
		fmt.Fprintf(&t, "| %d | %d %% | %s | %.1f / %.1f ms | %.1f / %.1f ms | %.1f / %.1f ms | %.1f | %d/%d, %d/%d | %s | %.1f / %.1f MiB | %s |\n",
			r.hosts, r.loss, broker,
			percentile(r.wall, 50), percentile(r.wall, 99),
			percentile(r.complete, 50), percentile(r.complete, 99),
			percentile(r.floor, 50), percentile(r.floor, 99),
			percentile(r.complete, 50)/percentile(r.floor, 50),
			r.okRollcall, r.sweeps, r.okFloor, r.sweeps,
			recovery, r.rssMedian, r.rssMax, r.load)
	}
	// The simulated cluster (agent/simcluster: 1,000 hosts in one
	// process, built on another branch) adds its row here once merged:
	// | 1000 (simulated) | 0 % | ... |

	// Standard output, not b.Log: the testing package cuts a benchmark's
	// log to ten lines.
	fmt.Print(t.String())

	for _, r := range rows {
		benchTargets(b, r)
	}
}

// benchRun measures one row: a fresh broker, the loss, r.hosts agents and
// floor responders, the sweeps, memory, a broker restart.
func benchRun(b *testing.B, rc *rollcall, floor *clustertest.Floor, r *benchRow) *benchRow {
	b.Helper()
	hosts := rc.c.Hosts[:r.hosts]
	names := hostNames(hosts)
	sweeper := rc.c.Hosts[0]

	// The loss comes first, then a broker with nothing retained, then
	// the agents: they connect through the loss.
	rc.mq.Kill()
	rc.c.SetLoss(b, r.loss)
	defer rc.c.SetLoss(b, 0)
	rc.mq.Start(b)
	var agents []*clustertest.Proc
	for _, h := range hosts {
		agents = append(agents, rc.startAgentArgs(b, h)) // the default keepalive, 30 s
	}
	responders := floor.Start(b, hosts...)
	defer func() {
		for _, p := range append(agents, responders...) {
			p.Kill()
		}
	}()
	rc.waitStatus(b, sweeper, "online", names...)

	args := append(append([]string{"sweep", "--json"}, rc.local("sweep-"+sweeper.Name)...), "--expect", fmt.Sprint(r.hosts))
	// One of each first, not counted: the retained inventory then holds a
	// sweep's result, as it does for a user.
	benchSweep(b, rc, sweeper, args, r.hosts)
	floor.Sweep(b.Context(), sweeper, hosts, 3*time.Second)

	pace := time.NewTicker(400 * time.Millisecond)
	defer pace.Stop()
	for range r.sweeps {
		if wall, complete, ok := benchSweep(b, rc, sweeper, args, r.hosts); ok {
			r.okRollcall++
			r.wall = append(r.wall, wall)
			r.complete = append(r.complete, complete)
		}
		inv, err := floor.Sweep(b.Context(), sweeper, hosts, 3*time.Second)
		if err == nil && inv.Complete {
			r.okFloor++
			r.floor = append(r.floor, inv.CompleteMS)
		}
		<-pace.C
	}

	var rss []float64
	for _, p := range agents {
		rss = append(rss, rssMiB(b, p.Pid()))
	}
	r.rssMedian, r.rssMax = percentile(rss, 50), slices.Max(rss)

	// The broker killed and started again, empty: how long until every
	// host has published its status, description and summary again.
	before := retainedState(b, sweeper, rc.broker, names)
	want := map[string]string{}
	for _, n := range names {
		for _, topic := range []string{n + "/status", n + "/description", n + "/services"} {
			want[topic] = before[topic]
		}
	}
	rc.mq.Kill()
	rc.mq.Start(b)
	back := time.Now()
	// Only the topics compared, not every value: the watcher is a
	// client on a lossy link like any other.
	w := watchTopics(b, sweeper, rc.broker, slices.Collect(maps.Keys(want)))
	if last, ok := w.tryAwait(20*time.Second, want); ok {
		r.recovery, r.recovered = last.Sub(back), true
		if os.Getenv("ROLLCALL_BENCH_DEBUG") != "" && r.recovery > 2*time.Second {
			for i, n := range names {
				if w.lastOf(n).Equal(last) {
					fmt.Printf("%s came back last, %v after the broker:\n%s\n", n, last.Sub(back), agents[i].Output())
				}
			}
		}
	} else {
		fmt.Print(w.diff(want, 5))
		for i, n := range names {
			if w.missing(want, n) {
				fmt.Printf("%s's log:\n%s\n", n, agents[i].Output())
				break
			}
		}
	}
	r.load = loadAvg()
	return r
}

// benchSweep runs one `rollcall sweep` in h, started straight in its
// namespace so that the wall time is the program's own, as a user's
// shell would time it.
func benchSweep(b *testing.B, rc *rollcall, h *clustertest.Host, args []string, hosts int) (wallMS, completeMS float64, ok bool) {
	b.Helper()
	cmd := exec.CommandContext(b.Context(), rc.bin, args...)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	start := time.Now()
	if err := h.StartCmd(cmd); err != nil {
		b.Fatalf("start rollcall sweep: %v", err)
	}
	err := cmd.Wait()
	wall := time.Since(start)
	var doc sweepDoc
	if jerr := json.Unmarshal(out.Bytes(), &doc); err != nil || jerr != nil || !doc.Sweep.Complete || answered(doc) != hosts {
		b.Logf("incomplete sweep of %d hosts: %v, %d answered, missing %v: %s", hosts, err, answered(doc), doc.Missing, strings.TrimSpace(errs.String()))
		return 0, 0, false
	}
	return float64(wall.Microseconds()) / 1000, doc.Sweep.CompleteMS, true
}

// benchTargets fails the benchmark for every target a row misses.
func benchTargets(b *testing.B, r *benchRow) {
	b.Helper()
	if r.hosts != 50 || r.tuned {
		return
	}
	miss := func(format string, args ...any) {
		b.Errorf("target missed, %d hosts at %d%% loss (load %s): %s", r.hosts, r.loss, r.load, fmt.Sprintf(format, args...))
	}
	switch r.loss {
	case 0:
		if p := percentile(r.wall, 50); !(p <= 40) {
			miss("whole command p50 %.1f ms, want ≤ 40 ms", p)
		}
		if c, f := percentile(r.complete, 50), percentile(r.floor, 50); !(c <= 3*f) {
			miss("complete_ms p50 %.1f ms is %.1f × the raw floor's %.1f ms, want ≤ 3 ×", c, c/f, f)
		}
		if !r.recovered || r.recovery > 2*time.Second {
			miss("recovery after a broker restart %v, want ≤ 2 s", r.recovery)
		}
	case 20:
		if r.okRollcall != r.sweeps {
			miss("%d of %d sweeps complete, want all", r.okRollcall, r.sweeps)
		}
		if p := percentile(r.complete, 99); !(p <= 500) {
			miss("complete_ms p99 %.1f ms, want ≤ 500 ms", p)
		}
	}
}

func benchSizes(b *testing.B) []int {
	b.Helper()
	s := os.Getenv("ROLLCALL_BENCH_HOSTS")
	if s == "" {
		return []int{10, 50, 100}
	}
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("ROLLCALL_BENCH_HOSTS=%q: want sizes like 10,50,100", s)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

func benchEnvInt(b *testing.B, name string, def int) int {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// loadAvg is the 1-minute load average: the machine is shared, and the
// figures mean little without it.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// percentile is the nearest-rank p-th percentile of xs; NaN when empty.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

func BenchmarkAgentIdle(b *testing.B) {
	rc := newRollcall(b, 1)
	h := rc.c.Hosts[0]
	agent := rc.startAgent(b, h)
	rc.waitStatus(b, h, "online", h.Name)

	const (
		settle = 2 * time.Second
		window = 10 * time.Second
	)
	time.Sleep(settle) // measurement: let start-up work finish, nothing to wait for
	pid := agent.Pid()
	tick := clockTicks(b)
	cpu0, t0 := cpuTicks(b, pid), time.Now()
	var rss []float64
	for range int(window / time.Second) {
		time.Sleep(time.Second) // measurement interval
		rss = append(rss, rssMiB(b, pid))
	}
	cpu1, t1 := cpuTicks(b, pid), time.Now()
	cpuPct := float64(cpu1-cpu0) / tick / t1.Sub(t0).Seconds() * 100
	maxRSS := slices.Max(rss)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(maxRSS, "rss-MiB")
	b.ReportMetric(cpuPct, "cpu-%")
	b.Logf("agent idle over %v: RSS max %.1f MiB (last %.1f), CPU %.2f%% of one core", t1.Sub(t0).Round(time.Millisecond), maxRSS, rss[len(rss)-1], cpuPct)
}

// rssMiB reads VmRSS from /proc/<pid>/status.
func rssMiB(b *testing.B, pid int) float64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// cpuTicks reads utime+stime, in clock ticks, from /proc/<pid>/stat.
func cpuTicks(b *testing.B, pid int) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// comm, field 2, may hold spaces: count fields after its closing ')'.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return ut + st
}

// clockTicks is the kernel's USER_HZ (sysconf(_SC_CLK_TCK)), 100 nearly
// everywhere.
func clockTicks(b *testing.B) float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || v <= 0 {
		return 100
	}
	return v
}
