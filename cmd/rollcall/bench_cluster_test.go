package main_test

// Benchmarks of the targets, on a network-namespace cluster (root
// needed). Print every figure with:
//
//	go test ./cmd/rollcall -run '^$' -bench 'SweepCluster|AgentIdle' -benchtime 1x -timeout 20m
//
// BenchmarkSweepCluster: time from the first probe to a complete inventory
// (the sweep's complete_ms), p50 and p99 over at least 20 sweeps, for 10 and
// 50 agents, without loss and with 20% of probe datagrams dropped by an
// nftables rule in every host. Targets: 50 hosts p50 <= 50 ms without loss;
// with 20% loss every sweep complete and p99 <= 300 ms.
//
// BenchmarkAgentIdle: resident memory and CPU of one idle `agent --sim`.
// Targets: <= 20 MiB RSS, <= 0.5% of one core.

import (
	"fmt"
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

// minSweeps is the least number of sweeps behind each percentile.
const minSweeps = 20

func BenchmarkSweepCluster(b *testing.B) {
	for _, hosts := range []int{10, 50} {
		b.Run(fmt.Sprintf("hosts=%d", hosts), func(b *testing.B) {
			rc := newRollcall(b, hosts)
			for _, h := range rc.c.Hosts {
				rc.startAgent(b, h)
			}
			rc.waitStatus(b, rc.c.Hosts[0], "online", hostNames(rc.c.Hosts)...)
			sweeper := rc.c.Hosts[0] // beside the broker, like a sweep run on the broker's Pi
			for _, loss := range []int{0, 20} {
				b.Run(fmt.Sprintf("loss=%d", loss), func(b *testing.B) {
					rc.c.DropUDP(b, probePort, loss)
					defer rc.c.DropUDP(b, probePort, 0)
					benchSweeps(b, rc, sweeper, hosts, loss)
				})
			}
		})
	}
}

func benchSweeps(b *testing.B, rc *rollcall, h *clustertest.Host, hosts, loss int) {
	b.Helper()
	runs := max(minSweeps, b.N)
	var completeMS, probes []float64
	incomplete := 0
	b.ResetTimer()
	for range runs {
		doc, stderr, code := rc.sweep(b, h, "--expect", fmt.Sprint(hosts), "--timeout", "3s")
		if code != 0 || !doc.Sweep.Complete {
			incomplete++
			b.Logf("incomplete sweep: exit %d, %d hosts, missing %v: %s", code, len(doc.Hosts), doc.Missing, strings.TrimSpace(stderr))
			continue
		}
		completeMS = append(completeMS, doc.Sweep.CompleteMS)
		probes = append(probes, float64(doc.Sweep.Probes))
	}
	b.StopTimer()
	// ns/op would be 20 sweeps' wall time, mostly process start-up.
	b.ReportMetric(0, "ns/op")
	p50, p99 := percentile(completeMS, 50), percentile(completeMS, 99)
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(percentile(completeMS, 100), "max-ms")
	b.ReportMetric(mean(probes), "probes/sweep")
	b.ReportMetric(float64(incomplete), "incomplete")
	b.Logf("sweep hosts=%d loss=%d%%: %d sweeps, %d incomplete, complete_ms p50 %.1f p99 %.1f max %.1f, %.1f probes/sweep",
		hosts, loss, runs, incomplete, p50, p99, percentile(completeMS, 100), mean(probes))
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
