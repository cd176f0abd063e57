package services_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// A thermometer service scans named probes; the test decides what each
// read returns.

type thermoConfig struct {
	Probes []string `json:"probes"`
}

func (thermoConfig) Check(services.Checker) services.Errors { return nil }
func (thermoConfig) Claims() []services.Claim               { return nil }

type thermo struct {
	rt *services.Runtime[thermoConfig]

	mu    sync.Mutex
	value float64
	err   error
	reads int
	scans []*services.Scan
}

func (d *thermo) Apply(prev, next thermoConfig, safe bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.scans {
		s.Stop()
	}
	d.scans = nil
	for i, name := range next.Probes {
		topic := d.rt.Topics().Input(name)
		d.scans = append(d.scans, d.rt.Scan(services.ScanOptions{
			Name: name, Field: fmt.Sprintf("probes[%d]", i), Interval: 10 * time.Second, Retry: 2 * time.Second,
			Expected: func(err error) bool { return errors.Is(err, syscall.EIO) }, Persist: 3,
			Read: func() (func(), error) {
				d.mu.Lock()
				v, err := d.value, d.err
				d.reads++
				d.mu.Unlock()
				if err != nil {
					return nil, err
				}
				s := strconv.FormatFloat(v, 'f', -1, 64)
				return func() {
					d.rt.Values().PublishEach("input", name, v,
						services.Retained{Topic: topic, Payload: []byte(`{"value":` + s + `}`)},
						services.Retained{Topic: topic + "/value", Payload: []byte(s)})
				}, nil
			},
		}))
	}
	return nil
}

func (d *thermo) Failsafe() error { return nil }
func (d *thermo) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.scans {
		s.Stop()
	}
	return nil
}

func (d *thermo) Interfaces(cfg thermoConfig) services.Interfaces {
	var ifs services.Interfaces
	for _, p := range cfg.Probes {
		ifs.Inputs = append(ifs.Inputs, services.Interface{Name: p, Topic: d.rt.Topics().Input(p), Type: "number"})
	}
	return ifs
}

func (d *thermo) Health() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return services.ScanHealth(d.scans)
}

func (d *thermo) set(v float64, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.value, d.err = v, err
}

func (d *thermo) readCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reads
}

type thermoHarness struct {
	t     *testing.T
	rt    *services.Runtime[thermoConfig]
	dev   *thermo
	bus   *servicestest.Bus
	clock *servicestest.Clock
}

func startThermo(t *testing.T, cfg thermoConfig) *thermoHarness {
	t.Helper()
	h := &thermoHarness{t: t, bus: servicestest.NewBus(), clock: servicestest.NewClock(), dev: &thermo{}}
	rt, err := services.NewRuntime(services.RuntimeOptions[thermoConfig]{
		Kind: "thermo", Config: cfg, Env: services.Env{Host: "pi1", Clock: h.clock},
	}, h.dev)
	if err != nil {
		t.Fatal(err)
	}
	h.dev.rt, h.rt = rt, rt
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx, h.bus) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	<-rt.Serving()
	return h
}

// advance moves the clock on and waits until the runtime has served what
// the reads asked of it (a description change).
func (h *thermoHarness) advance(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	done := make(chan struct{})
	h.rt.Do(func() { close(done) })
	select {
	case <-done:
	case <-time.After(servicestest.Timeout):
		h.t.Fatal("the runtime's goroutine did not run")
	}
}

// flush waits until everything the service sent so far is on the bus: a
// get's result goes out after it, in order.
func (h *thermoHarness) flush() {
	h.t.Helper()
	h.bus.Request(h.t, services.Topics{Host: "pi1", Service: "thermo"}, "pi1/thermo/get", "")
}

func readErrors(t *testing.T, msgs []servicestest.Message) []servicestest.Result {
	t.Helper()
	var out []servicestest.Result
	for _, m := range msgs {
		if m.Topic != "pi1/thermo/result" {
			continue
		}
		r := servicestest.DecodeResult(t, m.Payload)
		if r.Op == services.OpRead {
			out = append(out, r)
		}
	}
	return out
}

// TestScanReadsAndRetries: a scan reads at once and then every interval;
// an unexpected error is reported at once, expected ones only once they
// persist, and a failing channel is retried at doubling delays from Retry
// up to MaxBackoff, back to its interval after a good read.
func TestScanReadsAndRetries(t *testing.T) {
	h := startThermo(t, thermoConfig{Probes: []string{"air"}})
	h.dev.set(21.5, nil)
	h.advance(0)
	h.bus.Expect(t, 0, "pi1/thermo/input/air", `{"value":21.5}`)
	h.bus.Expect(t, 0, "pi1/thermo/input/air/value", "21.5")
	h.advance(9 * time.Second)
	if n := h.dev.readCount(); n != 1 {
		t.Fatalf("%d reads before the interval, want 1", n)
	}

	tests := []struct {
		name     string
		err      error
		advances []time.Duration // each must bring exactly one read
		reported bool            // after the advances
	}{
		{name: "expected errors under Persist", err: syscall.EIO, advances: []time.Duration{time.Second, 2 * time.Second}, reported: false},
		{name: "the third in a row", err: syscall.EIO, advances: []time.Duration{4 * time.Second}, reported: true},
		{name: "backoff doubles", err: syscall.EIO, advances: []time.Duration{8 * time.Second, 16 * time.Second, 32 * time.Second}, reported: true},
		{name: "up to a minute", err: syscall.EIO, advances: []time.Duration{time.Minute, time.Minute}, reported: true},
	}
	from := h.bus.Mark()
	changed := h.bus.ChangedCount()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.dev.set(0, tc.err)
			for _, d := range tc.advances {
				before := h.dev.readCount()
				h.advance(d - time.Millisecond)
				if h.dev.readCount() != before {
					t.Fatalf("read %v early", time.Millisecond)
				}
				h.advance(time.Millisecond)
				if h.dev.readCount() != before+1 {
					t.Fatalf("no read after %v", d)
				}
			}
			h.flush()
			if got := len(readErrors(t, h.bus.Since(from))) > 0; got != tc.reported {
				t.Errorf("reported %v, want %v", got, tc.reported)
			}
		})
	}
	errs := readErrors(t, h.bus.Since(from))
	// Reported when it started failing and again a minute later, not on
	// every retry.
	if len(errs) != 3 {
		t.Errorf("%d read error results, want 3 (rate-limited): %+v", len(errs), errs)
	}
	e := errs[0]
	if e.Status != "error" || !e.HasError(services.CodeHardware, "probes[0]") || !strings.Contains(e.Error.Message, "air: input/output error") {
		t.Errorf("read error result %+v", e)
	}
	var data services.ReadErrorData
	if err := json.Unmarshal(e.Data, &data); err != nil || data.Errors != 3 || data.Consecutive != 3 || data.RetryIn.D() != 8*time.Second {
		t.Errorf("read error data %s: %v", e.Data, err)
	}
	health := h.rt.Describe()
	if health.Health != "error" || !strings.Contains(health.Error, "1 of 1 channels failing; air: 8 read errors, last: input/output error") {
		t.Errorf("health %q %q", health.Health, health.Error)
	}
	h.bus.WaitFor(t, "the description republished when the channel started failing", func(_ []servicestest.Message, n, _ int) bool {
		return n > changed
	})

	// A good read: published, health back, the interval again.
	h.dev.set(19, nil)
	from = h.bus.Mark()
	h.advance(time.Minute)
	h.bus.Expect(t, from, "pi1/thermo/input/air/value", "19")
	if d := h.rt.Describe(); d.Health != "ok" {
		t.Errorf("health after a good read %q %q", d.Health, d.Error)
	}
	before := h.dev.readCount()
	h.advance(10 * time.Second)
	if h.dev.readCount() != before+1 {
		t.Error("not back to the interval after a good read")
	}
}

// TestScanUnexpectedErrorReportedAtOnce: an error Expected does not
// accept is reported on its first occurrence, retried from the interval
// when Retry is unset.
func TestScanUnexpectedErrorReportedAtOnce(t *testing.T) {
	h := startThermo(t, thermoConfig{Probes: []string{"air", "soil"}})
	h.dev.set(0, errors.New("iio iio:device0 (dht11) in_temp_input: permission denied"))
	from := h.bus.Mark()
	h.advance(0)
	h.flush()
	errs := readErrors(t, h.bus.Since(from))
	if len(errs) != 2 || !errs[0].HasError(services.CodeHardware, "probes[0]") || !errs[1].HasError(services.CodeHardware, "probes[1]") {
		t.Fatalf("read errors %+v, want one per probe", errs)
	}
	if d := h.rt.Describe(); !strings.HasPrefix(d.Error, "2 of 2 channels failing; air: 1 read errors") {
		t.Errorf("health %q", d.Error)
	}
}

// TestScanStopPublishesNothing: a read under way when its channel is
// replaced publishes nothing, and a stopped scan never reads again.
func TestScanStopPublishesNothing(t *testing.T) {
	h := startThermo(t, thermoConfig{Probes: []string{"air"}})
	h.dev.set(5, nil)
	h.advance(0)
	h.bus.Expect(t, 0, "pi1/thermo/input/air/value", "5")
	if r := h.bus.Request(t, services.Topics{Host: "pi1", Service: "thermo"}, "pi1/thermo/setup", `{"probes":["soil"]}`); r.Status != "ok" {
		t.Fatalf("setup %+v", r)
	}
	// The retained values of the probe that went are cleared, both topics.
	var cleared []string
	for _, m := range h.bus.Since(0) {
		if m.Retained && m.Payload == "" {
			cleared = append(cleared, m.Topic)
		}
	}
	if strings.Join(cleared, " ") != "pi1/thermo/input/air pi1/thermo/input/air/value" {
		t.Errorf("cleared %v, want both topics of air", cleared)
	}
	from := h.bus.Mark()
	h.advance(time.Hour)
	h.flush()
	for _, m := range h.bus.Since(from) {
		if strings.HasPrefix(m.Topic, "pi1/thermo/input/air") {
			t.Errorf("a stopped scan published %+v", m)
		}
	}
	// get republishes both topics of a value.
	from = h.bus.Mark()
	h.bus.Request(t, services.Topics{Host: "pi1", Service: "thermo"}, "pi1/thermo/get/input/soil", "")
	h.bus.Expect(t, from, "pi1/thermo/input/soil", `{"value":5}`)
	h.bus.Expect(t, from, "pi1/thermo/input/soil/value", "5")
}

// TestScanGrid: a Grid scan keeps its reads on the interval's grid; a
// little behind, it catches up read after read; far behind, it skips the
// reads it missed and counts them.
func TestScanGrid(t *testing.T) {
	clock := servicestest.NewClock()
	dev := &thermo{}
	rt, err := services.NewRuntime(services.RuntimeOptions[thermoConfig]{Kind: "thermo", Env: services.Env{Host: "pi1", Clock: clock}}, dev)
	if err != nil {
		t.Fatal(err)
	}
	dev.rt = rt
	var mu sync.Mutex
	reads := 0
	s := rt.Scan(services.ScanOptions{Name: "fast", Interval: 10 * time.Millisecond, Grid: true, Read: func() (func(), error) {
		mu.Lock()
		defer mu.Unlock()
		reads++
		return nil, nil
	}})
	defer s.Stop()
	steps := []struct {
		name    string
		advance time.Duration
		reads   int
	}{
		{"the first read at once", 0, 1},
		{"35 ms later: the 10 ms read", 35 * time.Millisecond, 2},
		{"catching up the 20 ms read", 0, 3},
		{"and the 30 ms read", 0, 4},
		{"the 40 ms read is not due yet", 0, 4},
		{"40 ms", 5 * time.Millisecond, 5},
		{"200 ms behind: one read", 200 * time.Millisecond, 6},
		{"the missed reads skipped", 0, 6},
		{"back on the grid at 250 ms", 10 * time.Millisecond, 7},
	}
	for _, st := range steps {
		clock.Advance(st.advance)
		mu.Lock()
		got := reads
		mu.Unlock()
		if got != st.reads {
			t.Fatalf("%s: %d reads, want %d", st.name, got, st.reads)
		}
	}
	if got := s.Status().Missed; got != 19 {
		t.Errorf("missed %d reads, want 19 (60 to 240 ms)", got)
	}
}
