package metrics

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// TestAsClientGolang: the Go runtime's and the process's metrics are
// those Prometheus's Go client exposes with its default collectors, as
// users' dashboards expect them: the same families, HELP, TYPE and
// labels; the same values where they do not move between two reads, and
// counters that have not gone back.
func TestAsClientGolang(t *testing.T) {
	ref := prometheus.NewRegistry()
	ref.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	want, err := ref.Gather()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(Options{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := textGatherer{reg}.Gather() // after ref's: counters can only have grown
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "go_") || strings.HasPrefix(mf.GetName(), "process_") {
			got[mf.GetName()] = mf
		}
	}
	same := map[string]bool{
		"go_info": true, "go_gc_gogc_percent": true, "go_gc_gomemlimit_bytes": true, "go_sched_gomaxprocs_threads": true,
		"process_max_fds": true, "process_virtual_memory_max_bytes": true, "process_start_time_seconds": true,
	}
	for _, w := range want {
		name := w.GetName()
		t.Run(name, func(t *testing.T) {
			g := got[name]
			if g == nil {
				t.Fatal("missing")
			}
			delete(got, name)
			if g.GetHelp() != w.GetHelp() {
				t.Errorf("help %q, want %q", g.GetHelp(), w.GetHelp())
			}
			if g.GetType() != w.GetType() {
				t.Errorf("type %v, want %v", g.GetType(), w.GetType())
			}
			if len(g.GetMetric()) != 1 || len(w.GetMetric()) != 1 {
				t.Fatalf("%d metrics, want %d (1)", len(g.GetMetric()), len(w.GetMetric()))
			}
			gm, wm := g.GetMetric()[0], w.GetMetric()[0]
			if gl, wl := labels(gm), labels(wm); !slices.Equal(gl, wl) {
				t.Errorf("labels %q, want %q", gl, wl)
			}
			gv, wv := value(gm), value(wm)
			switch {
			case same[name] && gv != wv:
				t.Errorf("%v, want %v", gv, wv)
			case w.GetType() == dto.MetricType_COUNTER && gv < wv:
				t.Errorf("%v, less than the %v read before", gv, wv)
			}
			if w.GetType() == dto.MetricType_SUMMARY {
				if gq, wq := quantiles(gm), quantiles(wm); !slices.Equal(gq, wq) {
					t.Errorf("quantiles %v, want %v", gq, wq)
				}
				if gc, wc := gm.GetSummary().GetSampleCount(), wm.GetSummary().GetSampleCount(); gc < wc {
					t.Errorf("count %d, less than the %d read before", gc, wc)
				}
			}
		})
	}
	for name := range got {
		t.Errorf("%s: not one of the client's", name)
	}
}

func labels(m *dto.Metric) []string {
	var out []string
	for _, l := range m.GetLabel() {
		out = append(out, l.GetName()+"="+l.GetValue())
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Summary != nil:
		return m.GetSummary().GetSampleSum()
	}
	return m.GetUntyped().GetValue()
}

func quantiles(m *dto.Metric) []float64 {
	var out []float64
	for _, q := range m.GetSummary().GetQuantile() {
		out = append(out, q.GetQuantile())
	}
	return out
}
