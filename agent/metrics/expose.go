package metrics

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A kind is a metric family's type, as its TYPE line gives it.
type kind string

const (
	gaugeKind   kind = "gauge"
	counterKind kind = "counter"
	summaryKind kind = "summary"
)

// A desc is a metric family: its name, HELP and TYPE lines, and the names
// of the labels each of its metrics gives values for, in that order.
type desc struct {
	name, help string
	kind       kind
	labels     []string
}

// newDesc describes a family whose metrics carry only the labels given.
func newDesc(name, help string, k kind, labels ...string) *desc {
	return &desc{name: name, help: help, kind: k, labels: labels}
}

type label struct{ name, value string }

// A quantile of a summary: the value below which a fraction q of the
// observations fall.
type quantile struct{ q, value float64 }

// A metric is one labelled member of a family: a value, or for a
// summary, its quantiles, sum (value) and count.
type metric struct {
	labels    []label // sorted by name
	value     float64
	quantiles []quantile
	count     uint64
}

type family struct {
	d       *desc
	metrics []metric
}

// A scrape holds one scrape's metrics, read from the agent as the scrape
// asks for them, and what could not be shown. It checks what Prometheus
// would reject, so that one bad metric costs only itself: a label value
// that is not UTF-8, a second metric with a family's name and labels,
// a family whose HELP, TYPE or label names change from one metric to the
// next.
type scrape struct {
	families map[string]*family
	seen     map[string]bool // name and label values of every metric added
	errs     []error
}

func newScrape() *scrape {
	return &scrape{families: map[string]*family{}, seen: map[string]bool{}}
}

// add adds a gauge's or a counter's value, with values for d's labels.
func (s *scrape) add(d *desc, v float64, values ...string) {
	s.put(d, metric{value: v}, values)
}

// addSummary adds a summary's quantiles, sum and count.
func (s *scrape) addSummary(d *desc, qs []quantile, sum float64, count uint64, values ...string) {
	s.put(d, metric{value: sum, quantiles: slices.Clone(qs), count: count}, values)
}

func (s *scrape) put(d *desc, m metric, values []string) {
	if len(values) != len(d.labels) {
		s.errs = append(s.errs, fmt.Errorf("metrics: %s: %d label values for labels %v; left out", d.name, len(values), d.labels))
		return
	}
	f := s.families[d.name]
	if f != nil && f.d != d && (f.d.help != d.help || f.d.kind != d.kind || !slices.Equal(f.d.labels, d.labels)) {
		s.errs = append(s.errs, fmt.Errorf("metrics: %s%v: %s, %q, but the family is a %s with labels %v, %q; left out",
			d.name, values, d.kind, d.help, f.d.kind, f.d.labels, f.d.help))
		return
	}
	for i, v := range values {
		if !utf8.ValidString(v) {
			s.errs = append(s.errs, fmt.Errorf("metrics: %s: label %s=%q is not UTF-8; left out", d.name, d.labels[i], v))
			return
		}
	}
	key := d.name + "\xff" + strings.Join(values, "\xff")
	if s.seen[key] {
		s.errs = append(s.errs, fmt.Errorf("metrics: %s%v collected twice; the second left out", d.name, values))
		return
	}
	s.seen[key] = true
	m.labels = make([]label, len(values))
	for i, v := range values {
		m.labels[i] = label{d.labels[i], v}
	}
	slices.SortFunc(m.labels, func(a, b label) int { return strings.Compare(a.name, b.name) })
	slices.SortFunc(m.quantiles, func(a, b quantile) int { return cmp.Compare(a.q, b.q) })
	if f == nil {
		f = &family{d: d}
		s.families[d.name] = f
	}
	f.metrics = append(f.metrics, m)
}

// err is what could not be shown, or nil.
func (s *scrape) err() error { return errors.Join(s.errs...) }

// names are the scrape's families' names, sorted.
func (s *scrape) names() []string { return slices.Sorted(maps.Keys(s.families)) }

// Escaping of the text format: HELP text escapes backslashes and line
// feeds, label values double quotes as well.
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// writeText writes the families that only accepts (all, if only is nil)
// in the text exposition format, version 0.0.4: families sorted by
// name, each family's metrics under its one HELP and TYPE, sorted by
// their label values.
func (s *scrape) writeText(w io.Writer, only func(name string) bool) error {
	b := bufio.NewWriter(w)
	for _, name := range s.names() {
		if only != nil && !only(name) {
			continue
		}
		f := s.families[name]
		slices.SortStableFunc(f.metrics, func(x, y metric) int {
			for i := range min(len(x.labels), len(y.labels)) {
				if c := strings.Compare(x.labels[i].value, y.labels[i].value); c != 0 {
					return c
				}
			}
			return 0
		})
		b.WriteString("# HELP " + name + " ")
		helpEscaper.WriteString(b, f.d.help)
		b.WriteString("\n# TYPE " + name + " " + string(f.d.kind) + "\n")
		for _, m := range f.metrics {
			if f.d.kind != summaryKind {
				writeSample(b, name, m.labels, nil, m.value)
				continue
			}
			for _, q := range m.quantiles {
				writeSample(b, name, m.labels, &label{"quantile", formatFloat(q.q)}, q.value)
			}
			writeSample(b, name+"_sum", m.labels, nil, m.value)
			writeSample(b, name+"_count", m.labels, nil, float64(m.count))
		}
	}
	return b.Flush()
}

// writeSample writes one line: name{labels} value. extra, a summary's
// quantile, comes after the metric's own labels.
func writeSample(b *bufio.Writer, name string, labels []label, extra *label, v float64) {
	b.WriteString(name)
	if extra != nil {
		labels = append(slices.Clip(labels), *extra)
	}
	for i, l := range labels {
		if i == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(l.name + `="`)
		valueEscaper.WriteString(b, l.value)
		b.WriteByte('"')
	}
	if len(labels) > 0 {
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(formatFloat(v))
	b.WriteByte('\n')
}

// formatFloat writes v as Prometheus's own encoder does, so that figures
// read the same as before: the shortest form that reads back exactly
// ("0.45", "7.029456e+06"), and +Inf, -Inf, NaN.
func formatFloat(v float64) string {
	switch {
	case v == 0:
		return "0" // and not "-0"
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, +1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
