package metrics

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestWriteText pins the text format byte for byte, and reads every
// case back with Prometheus's parser: escaping, the order of families
// and of metrics, one HELP and TYPE per family, summaries, numbers.
func TestWriteText(t *testing.T) {
	gauge := newDesc("b_gauge", "Help with a \\ and a\nline feed.", gaugeKind, "z", "a")
	count := newDesc("a_total", "Counted.", counterKind, "code")
	sum := newDesc("c_seconds", "A summary.", summaryKind)
	plain := newDesc("d_plain", "No labels.", gaugeKind)
	for _, tc := range []struct {
		name string
		add  func(s *scrape)
		want string
	}{
		{
			name: "label values escaped",
			add: func(s *scrape) {
				s.add(gauge, 1, `back\slash`, `say "hi"`)
				s.add(gauge, 2, "two\nlines", "x")
			},
			want: `# HELP b_gauge Help with a \\ and a\nline feed.
# TYPE b_gauge gauge
b_gauge{a="say \"hi\"",z="back\\slash"} 1
b_gauge{a="x",z="two\nlines"} 2
`,
		},
		{
			name: "families sorted, metrics grouped and sorted by label values",
			add: func(s *scrape) {
				s.add(gauge, 1, "z1", "b")
				s.add(count, 3, "503")
				s.add(gauge, 2, "z0", "b")
				s.add(count, 5, "200")
				s.add(gauge, 3, "z2", "a")
			},
			want: `# HELP a_total Counted.
# TYPE a_total counter
a_total{code="200"} 5
a_total{code="503"} 3
# HELP b_gauge Help with a \\ and a\nline feed.
# TYPE b_gauge gauge
b_gauge{a="a",z="z2"} 3
b_gauge{a="b",z="z0"} 2
b_gauge{a="b",z="z1"} 1
`,
		},
		{
			name: "summary",
			add: func(s *scrape) {
				s.addSummary(sum, []quantile{{1, 0.5}, {0, 0.001}, {0.5, 0.01}}, 1.5, 7)
			},
			want: `# HELP c_seconds A summary.
# TYPE c_seconds summary
c_seconds{quantile="0"} 0.001
c_seconds{quantile="0.5"} 0.01
c_seconds{quantile="1"} 0.5
c_seconds_sum 1.5
c_seconds_count 7
`,
		},
		{
			name: "numbers as Prometheus writes them",
			add: func(s *scrape) {
				for i, v := range []float64{0, math.Copysign(0, -1), 1, -1, 0.45, 7029456, 1.8446744073709552e19, math.Inf(1), math.Inf(-1)} {
					s.add(newDesc("n", "Numbers.", gaugeKind, "i"), v, string(rune('a'+i)))
				}
			},
			want: `# HELP n Numbers.
# TYPE n gauge
n{i="a"} 0
n{i="b"} 0
n{i="c"} 1
n{i="d"} -1
n{i="e"} 0.45
n{i="f"} 7.029456e+06
n{i="g"} 1.8446744073709552e+19
n{i="h"} +Inf
n{i="i"} -Inf
`,
		},
		{
			name: "no labels",
			add:  func(s *scrape) { s.add(plain, 42) },
			want: "# HELP d_plain No labels.\n# TYPE d_plain gauge\nd_plain 42\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScrape()
			tc.add(s)
			if err := s.err(); err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := s.writeText(&b, nil); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
			p := expfmt.NewTextParser(model.LegacyValidation)
			if _, err := p.TextToMetricFamilies(strings.NewReader(b.String())); err != nil {
				t.Fatalf("Prometheus's parser: %v", err)
			}
		})
	}
}

// TestWriteTextRoundTrip: Prometheus's parser reads back the help and
// the label values as they were, whatever they hold.
func TestWriteTextRoundTrip(t *testing.T) {
	d := newDesc("x", `A \ backslash, a \n that is not a line feed,`+"\nand a line feed.", gaugeKind, "name")
	values := []string{`back\slash`, `say "hi"`, "two\nlines", `\n`, `\"`, "ünïcödé °C", ""}
	s := newScrape()
	for i, v := range values {
		s.add(d, float64(i), v)
	}
	var b bytes.Buffer
	if err := s.writeText(&b, nil); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(&b)
	if err != nil {
		t.Fatalf("Prometheus's parser: %v", err)
	}
	mf := mfs["x"]
	if mf.GetHelp() != d.help {
		t.Errorf("help read back as %q, want %q", mf.GetHelp(), d.help)
	}
	got := map[string]float64{}
	for _, m := range mf.GetMetric() {
		got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	for i, v := range values {
		if g, ok := got[v]; !ok || g != float64(i) {
			t.Errorf("value %q read back: %v %v; all: %v", v, g, ok, got)
		}
	}
}

// TestScrapeRejects: what Prometheus would refuse costs only itself, and
// is reported.
func TestScrapeRejects(t *testing.T) {
	d := newDesc("x", "X.", gaugeKind, "name")
	for _, tc := range []struct {
		name string
		add  func(s *scrape)
		err  string
	}{
		{"label value not UTF-8", func(s *scrape) { s.add(d, 2, "bad\xff") }, "not UTF-8"},
		{"the same metric twice", func(s *scrape) { s.add(d, 2, "good") }, "collected twice"},
		{"another help", func(s *scrape) { s.add(newDesc("x", "Other.", gaugeKind, "name"), 2, "other") }, "the family is a gauge"},
		{"another type", func(s *scrape) { s.add(newDesc("x", "X.", counterKind, "name"), 2, "other") }, "the family is a gauge"},
		{"other labels", func(s *scrape) { s.add(newDesc("x", "X.", gaugeKind, "other"), 2, "other") }, "the family is a gauge"},
		{"too few label values", func(s *scrape) { s.add(d, 2) }, "0 label values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScrape()
			s.add(d, 1, "good")
			tc.add(s)
			err := s.err()
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want one saying %q", err, tc.err)
			}
			var b bytes.Buffer
			if err := s.writeText(&b, nil); err != nil {
				t.Fatal(err)
			}
			if want := "# HELP x X.\n# TYPE x gauge\nx{name=\"good\"} 1\n"; b.String() != want {
				t.Errorf("got\n%s\nwant only the first metric:\n%s", b.String(), want)
			}
		})
	}
}
