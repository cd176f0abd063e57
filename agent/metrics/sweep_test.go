package metrics

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rollcall/rollcall/agent/cluster"
)

func TestWriteSweep(t *testing.T) {
	started := time.Date(2026, 11, 23, 12, 0, 0, 500e6, time.UTC)
	full := cluster.Inventory{
		Sweep: &cluster.SweepInfo{Started: started, Complete: true, CompleteMS: 42.5, ElapsedMS: 60, Probes: 3},
		Hosts: []cluster.Host{
			{Host: "a", Status: cluster.StatusOnline}, {Host: "b", Status: cluster.StatusOnline},
			{Host: "c", Status: cluster.StatusMissing},
		},
		Missing:   []string{"c"},
		Conflicts: []cluster.Conflict{{Host: "a"}},
	}
	incomplete := full
	incomplete.Sweep = &cluster.SweepInfo{Started: started, ElapsedMS: 3000, Probes: 8}
	for _, tc := range []struct {
		name string
		inv  cluster.Inventory
		err  error
		want map[string]float64 // absent: -1
	}{
		{"complete", full, nil, map[string]float64{
			"rollcall_sweep_success": 1, "rollcall_sweep_timestamp_seconds": 1795435200.5,
			"rollcall_sweep_hosts_answered": 2, "rollcall_sweep_hosts_missing": 1, "rollcall_sweep_host_name_conflicts": 1,
			"rollcall_sweep_complete": 1, "rollcall_sweep_complete_seconds": 0.0425, "rollcall_sweep_duration_seconds": 0.06,
			"rollcall_sweep_probes": 3,
		}},
		{"timed out", incomplete, nil, map[string]float64{
			"rollcall_sweep_success": 1, "rollcall_sweep_complete": 0, "rollcall_sweep_complete_seconds": -1,
			"rollcall_sweep_duration_seconds": 3, "rollcall_sweep_probes": 8,
		}},
		{"no broker", cluster.Inventory{}, errors.New("broker tcp://127.0.0.1:1: connection refused"), map[string]float64{
			"rollcall_sweep_success": 0, "rollcall_sweep_timestamp_seconds": 1795435201,
			"rollcall_sweep_hosts_answered": -1, "rollcall_sweep_complete": -1,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "rollcall_sweep.prom")
			if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := WriteSweep(path, tc.inv, tc.err, time.Unix(1795435201, 0)); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %v: node_exporter, running as its own user, cannot read it", fi.Mode().Perm())
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 1 {
				t.Errorf("files left beside it: %v", left)
			}
			got := parseTextfile(t, path)
			for name, want := range tc.want {
				v, ok := got[name]
				switch {
				case want < 0 && ok:
					t.Errorf("%s = %v, want it absent", name, v)
				case want >= 0 && (!ok || v != want):
					t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
				}
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			promtool(t, b, "check", "metrics")
		})
	}
}

func TestWriteSweepPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string
		ok   bool
	}{
		{"prom file", "rollcall.prom", true},
		{"other extension", "rollcall.txt", false},
		{"no extension", "rollcall", false},
		{"prom directory", "dir.prom/", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckTextfile(tc.path); (err == nil) != tc.ok {
				t.Errorf("CheckTextfile(%q) = %v", tc.path, err)
			}
		})
	}
	dir := filepath.Join(t.TempDir(), "missing")
	err := WriteSweep(filepath.Join(dir, "rollcall.prom"), cluster.Inventory{}, nil, time.Now())
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("into a missing directory: %v", err)
	}
}

// parseTextfile reads a textfile as node_exporter would and returns its
// samples by metric name (every metric of the file is unlabelled).
func parseTextfile(t *testing.T, path string) map[string]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	out := map[string]float64{}
	var list []*dto.MetricFamily
	for name, mf := range mfs {
		list = append(list, mf)
		if mf.GetType() != dto.MetricType_GAUGE || len(mf.GetMetric()) != 1 {
			t.Errorf("%s: %v with %d samples, want one gauge", name, mf.GetType(), len(mf.GetMetric()))
			continue
		}
		out[name] = mf.GetMetric()[0].GetGauge().GetValue()
	}
	return out
}

// promtool runs Prometheus's promtool with args and input on its
// standard input, where it is installed (Debian: apt-get install
// prometheus), and fails the test if it finds a problem.
func promtool(t *testing.T, input []byte, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed (apt-get install prometheus): not run")
		return
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestScrapeConfig checks the documented scrape configuration.
func TestScrapeConfig(t *testing.T) {
	promtool(t, nil, "check", "config", "../../docs/prometheus.yml")
}
