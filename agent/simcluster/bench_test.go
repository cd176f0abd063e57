package simcluster

// BenchmarkSweep sweeps simulated clusters with the real cluster.Sweep and
// reports what a user of a large cluster would ask about. Run it with
//
//	go test ./agent/simcluster -run '^$' -bench Sweep -benchtime 1x -timeout 60m
//
// For each broker (the embedded one, and a stock mosquitto when
// installed), each size and each report setting, it starts a fresh
// cluster, waits for it to settle, then runs ROLLCALL_SIM_SWEEPS sweeps
// (10 by default), one every ROLLCALL_SIM_PACE (2s by default: a monitor
// then asks the kernel for its interface addresses again, as for a sweep
// run by hand), each expecting every host. Report settings:
//
//	none      no service outside the agent subscribes to reports
//	shared    one listener per host on the shared /udp/report
//	per-host  one listener per host on its own /udp/report/<host>
//
// Metrics, per sub-benchmark:
//
//	p50-ms, p99-ms         the sweep's completion (complete_ms: first probe
//	                       to the last expected host complete)
//	call-p50-ms, call-p99-ms
//	                       the whole cluster.Sweep call: connect, read the
//	                       retained hosts, probe, publish the result
//	complete-%             sweeps that found every host with every service
//	probes/sweep           transmissions of the probe
//	deliveries/sweep       PUBLISH packets the broker sent to clients,
//	                       read before and after the sweeps (the embedded
//	                       broker by a hook, mosquitto by $SYS)
//	reports/sweep          reports the listeners received
//	udp-drops/sweep        datagrams the kernel dropped for a full receive
//	                       buffer (/proc/net/snmp RcvbufErrors): lost acks
//	cpu-ms/sweep           CPU of this process (and of mosquitto) per sweep
//	rss-MiB, broker-rss-MiB
//	                       resident memory of this process (every host,
//	                       listener and the embedded broker) and of
//	                       mosquitto, after the sweeps
//	fds                    file descriptors this process holds
//	start-s                how long the cluster took to start
//	idle-cpu-%             CPU of this process over one second before the
//	                       sweeps, in % of one core: the background the
//	                       sweeps run on (simulated inputs poll for edges)
//
// ROLLCALL_SIM_HOSTS (e.g. "100,1000"), ROLLCALL_SIM_BROKERS ("embedded",
// "mosquitto") and ROLLCALL_SIM_REPORTS ("none,shared,per-host") choose
// what runs. With -short, clusters over 100 hosts are skipped.

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/gpio"
)

func BenchmarkSweep(b *testing.B) {
	sizes := envInts(b, "ROLLCALL_SIM_HOSTS", []int{100, 1000})
	sweeps := envInts(b, "ROLLCALL_SIM_SWEEPS", []int{10})[0]
	pace := envDuration(b, "ROLLCALL_SIM_PACE", 2*time.Second)
	brokers := envList("ROLLCALL_SIM_BROKERS", []string{"embedded", "mosquitto"})
	settings := envList("ROLLCALL_SIM_REPORTS", []string{"none", "shared", "per-host"})
	b.Logf("load before: %s", loadavg())
	for _, brk := range brokers {
		for _, n := range sizes {
			for _, setting := range settings {
				b.Run(fmt.Sprintf("broker=%s/hosts=%d/reports=%s", brk, n, setting), func(b *testing.B) {
					if testing.Short() && n > 100 {
						b.Skip("over 100 hosts: not with -short")
					}
					var broker Broker
					switch brk {
					case "embedded":
						e, err := StartEmbedded(testLogger(b))
						if err != nil {
							b.Fatal(err)
						}
						b.Cleanup(func() { e.Close() })
						broker = e
					case "mosquitto":
						broker = startMosquitto(b)
					default:
						b.Fatalf("ROLLCALL_SIM_BROKERS: no broker %q (embedded, mosquitto)", brk)
					}
					c := startCluster(b, Options{
						Hosts:         n,
						Broker:        broker,
						ReportPerHost: setting == "per-host",
						Listeners:     setting != "none",
						Configure:     exampleHost,
					})
					benchSweeps(b, c, sweeps, pace)
				})
			}
		}
	}
	b.Logf("load after: %s", loadavg())
}

// exampleHost gives every host the seed's example pins (configs/sim.yaml),
// so that descriptions and summaries are the size of a real host's.
func exampleHost(_ int, cfg *agent.Config) {
	cfg.Blocks[gpio.Name] = &gpio.Config{
		Driver: "sim",
		Output: []gpio.OutputPin{{Name: "pump_drive", Pin: 25, Pull: "down"}, {Name: "lamp", Pin: 23}},
		Input:  []gpio.InputPin{{Name: "float_switch", Pin: 17, Pull: "down", Edge: "both"}, {Name: "button", Pin: 22, Pull: "down", Edge: "both"}},
		Wiring: []gpio.Wire{{From: 25, To: 17}},
	}
}

func benchSweeps(b *testing.B, c *Cluster, sweeps int, pace time.Duration) {
	n := len(c.Hosts())
	runs := max(sweeps, b.N)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(runs)*(pace+15*time.Second)+time.Minute)
	defer cancel()
	mosq, _ := c.Broker().(*Mosquitto)

	// What the idle cluster costs, before any sweep: the background the
	// sweeps run on, which real hosts would not share.
	idle0, idleStart := cpuTime(b, 0), time.Now()
	time.Sleep(time.Second) // a measurement interval
	idle := float64(cpuTime(b, 0)-idle0) / float64(time.Since(idleStart)) * 100

	d0, err := c.Broker().Deliveries(ctx)
	if err != nil {
		b.Fatal(err)
	}
	r0, udp0, cpu0 := c.Reports(), rcvbufErrors(b), cpuTime(b, 0)
	var bcpu0 time.Duration
	if mosq != nil {
		bcpu0 = cpuTime(b, mosq.Pid())
	}
	var completeMS, callMS, probes []float64
	incomplete := 0
	cfg := c.Client("sweeper")
	next := time.Now()
	b.ResetTimer()
	for range runs {
		time.Sleep(time.Until(next)) // pacing, not waiting for anything
		next = time.Now().Add(pace)
		start := time.Now()
		inv, err := cluster.Sweep(ctx, cfg, cluster.SweepOptions{Expect: n, Timeout: 10 * time.Second}, testLogger(b))
		call := time.Since(start)
		callMS = append(callMS, float64(call)/float64(time.Millisecond))
		if err != nil {
			// An overloaded broker may refuse the sweep's connection: a
			// failed sweep, not a failed benchmark.
			incomplete++
			b.Logf("sweep failed after %.0f ms: %v", float64(call)/float64(time.Millisecond), err)
			continue
		}
		probes = append(probes, float64(inv.Sweep.Probes))
		if !inv.Sweep.Complete || len(inv.Missing) > 0 || len(inv.Hosts) != n {
			incomplete++
			var partial []string
			for _, h := range inv.Hosts {
				if len(h.MissingServices) > 0 {
					partial = append(partial, fmt.Sprintf("%s lacks %v", h.Host, h.MissingServices))
				}
			}
			b.Logf("incomplete sweep: %d hosts of %d, missing %d, %d lacking services %q, %d probes, %.0f ms",
				len(inv.Hosts), n, len(inv.Missing), len(partial), partial[:min(len(partial), 3)], inv.Sweep.Probes, inv.Sweep.ElapsedMS)
			continue
		}
		completeMS = append(completeMS, inv.Sweep.CompleteMS)
	}
	b.StopTimer()
	d1, err := c.Broker().Deliveries(ctx)
	if err != nil {
		b.Fatal(err)
	}
	r1, udp1, cpu1 := c.Reports(), rcvbufErrors(b), cpuTime(b, 0)
	rss, err := rssMiB(0)
	if err != nil {
		b.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		b.Fatal(err)
	}

	per := func(x float64) float64 { return x / float64(runs) }
	b.ReportMetric(0, "ns/op") // the wall time of paced sweeps says nothing
	b.ReportMetric(percentile(completeMS, 50), "p50-ms")
	b.ReportMetric(percentile(completeMS, 99), "p99-ms")
	b.ReportMetric(percentile(callMS, 50), "call-p50-ms")
	b.ReportMetric(percentile(callMS, 99), "call-p99-ms")
	b.ReportMetric(100*float64(runs-incomplete)/float64(runs), "complete-%")
	b.ReportMetric(mean(probes), "probes/sweep")
	b.ReportMetric(per(float64(d1-d0)), "deliveries/sweep")
	b.ReportMetric(per(float64(r1.Received-r0.Received)), "reports/sweep")
	b.ReportMetric(per(float64(udp1-udp0)), "udp-drops/sweep")
	b.ReportMetric(per(float64(cpu1-cpu0)/float64(time.Millisecond)), "cpu-ms/sweep")
	b.ReportMetric(rss, "rss-MiB")
	b.ReportMetric(c.StartTime().Seconds(), "start-s")
	b.ReportMetric(idle, "idle-cpu-%")
	b.ReportMetric(float64(len(fds)), "fds")
	line := fmt.Sprintf("%d hosts: %d sweeps, %d incomplete; complete_ms p50 %.1f p99 %.1f; call p50 %.1f p99 %.1f ms; %.1f probes, %.0f deliveries, %.0f reports (%.0f own), %.1f udp drops, %.0f cpu-ms per sweep; RSS %.0f MiB, %d fds; started in %.1fs; idle %.0f%% of a core",
		n, runs, incomplete, percentile(completeMS, 50), percentile(completeMS, 99), percentile(callMS, 50), percentile(callMS, 99),
		mean(probes), per(float64(d1-d0)), per(float64(r1.Received-r0.Received)), per(float64(r1.Own-r0.Own)), per(float64(udp1-udp0)),
		per(float64(cpu1-cpu0)/float64(time.Millisecond)), rss, len(fds), c.StartTime().Seconds(), idle)
	if mosq != nil {
		brss, err := rssMiB(mosq.Pid())
		if err != nil {
			b.Fatal(err)
		}
		bcpu := per(float64(cpuTime(b, mosq.Pid())-bcpu0) / float64(time.Millisecond))
		b.ReportMetric(brss, "broker-rss-MiB")
		b.ReportMetric(bcpu, "broker-cpu-ms/sweep")
		line += fmt.Sprintf("; mosquitto RSS %.1f MiB, %.0f cpu-ms per sweep", brss, bcpu)
	}
	if r1.Lost > 0 {
		line += fmt.Sprintf("; %d listeners lost their connection", r1.Lost)
	}
	if e, ok := c.Broker().(*Embedded); ok && e.Dropped() > 0 {
		line += fmt.Sprintf("; the embedded broker dropped %d messages", e.Dropped())
	}
	b.Logf("%s (load %s)", line, loadavg())
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

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

func envList(name string, def []string) []string {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func envInts(b *testing.B, name string, def []int) []int {
	b.Helper()
	var out []int
	for _, s := range envList(name, nil) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("%s: %q is not a positive number", name, s)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return def
	}
	return out
}

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		b.Fatalf("%s: %q is not a duration such as 2s", name, v)
	}
	return d
}

// rssMiB is the resident memory of process pid (0: this one).
func rssMiB(pid int) (float64, error) {
	f, err := procStatus(pid, "VmRSS:")
	if err != nil {
		return 0, err
	}
	return f / 1024, nil
}

// procStatus reads a "kB" field of /proc/<pid>/status.
func procStatus(pid int, field string) (float64, error) {
	path := "/proc/self/status"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("no %s in %s", field, path)
}

// cpuTime is the user and system CPU time of process pid (0: this one),
// from /proc/<pid>/stat, in clock ticks of 10 ms.
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command, which is in parentheses and may hold spaces.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// rcvbufErrors is the kernel's count of UDP datagrams dropped for a full
// receive buffer, in this network namespace.
func rcvbufErrors(b *testing.B) uint64 {
	b.Helper()
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		b.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		if i := slices.Index(names, "RcvbufErrors"); i > 0 && i < len(f) {
			v, _ := strconv.ParseUint(f[i], 10, 64)
			return v
		}
	}
	b.Fatal("no Udp RcvbufErrors in /proc/net/snmp")
	return 0
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
