package services

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxBackoff is the longest wait between two attempts at a failing input
// channel, unless its interval is longer still.
const MaxBackoff = time.Minute

// ScanReportEvery bounds how often one failing channel reports on the
// result topic: once when it starts failing, then at most this often.
const ScanReportEvery = time.Minute

// ScanOptions describe how one input channel is read.
type ScanOptions struct {
	// Name names the channel in health and logs ("greenhouse").
	Name string
	// Field is the channel's place in the configuration ("sensors[0]"):
	// the field of its read errors.
	Field string
	// Interval is the time between two reads.
	Interval time.Duration
	// Retry is the wait before retrying a failed read, doubled on every
	// further failure up to MaxBackoff (or Interval, if longer) and back
	// to Interval on the next success; 0 is Interval.
	Retry time.Duration
	// Read reads the channel once, and may block on hardware. On
	// success it returns publish, which the scan calls unless it was
	// stopped meanwhile: a channel being replaced never publishes over
	// its successor, nor on a topic a new setup has cleared.
	Read func() (publish func(), err error)
	// Expected reports errors the hardware gives now and then in normal
	// operation (a DHT22's EIO): they are counted and retried like any
	// other, but reported only once Persist of them come in a row.
	Expected func(error) bool
	Persist  int
	// Grid keeps reads on the interval's grid, start to start, as a fast
	// scan needs: with it a 1 ms channel makes its thousand reads a
	// second, where a read an interval after the last one ended (without
	// it) loses the time of the read and of the timer. A read a little
	// late (a timer woken late, the process kept off the CPU for a few
	// time slices) is caught up at once, read after read; one more than
	// 50 ms behind skips the reads it missed, counted in
	// ScanStatus.Missed. After a failed read the grid starts again from
	// the retry.
	Grid bool
}

// ScanStatus is what a scan has seen, as a description shows it.
type ScanStatus struct {
	Reads  int `json:"reads"`
	Errors int `json:"errors"`
	// Consecutive counts the errors since the last good read.
	Consecutive int `json:"consecutive_errors,omitempty"`
	// Failing is set while the channel's errors are reported: at once
	// for an unexpected error, after Persist expected ones.
	Failing   bool   `json:"failing,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt and LastRead (the last good read) are RFC 3339.
	LastErrorAt string `json:"last_error_at,omitempty"`
	LastRead    string `json:"last_read,omitempty"`
	// Missed counts the reads a Grid scan skipped for being too far
	// behind (slow reads, a busy machine).
	Missed int `json:"missed,omitempty"`
}

// A Scan reads one input channel at its interval, on the service's clock
// and off the runtime's goroutine, so a slow or hung read delays neither
// requests nor other channels. It counts read errors, keeps the last one
// for the description's health (see ScanHealth), reports them on the
// result topic ({"op":"read","status":"error","error":{"code":"hardware",
// "field":<Field>,...}}) at most once per ScanReportEvery, and retries a
// failing channel with backoff. Make one with Runtime.Scan.
type Scan struct {
	o       ScanOptions
	clock   Clock
	log     *slog.Logger
	send    func(payload []byte) // on the result topic
	changed func()               // the health may have changed
	values  *Values
	forget  func() // takes the scan off its runtime's Stats

	mu         sync.Mutex
	timer      Timer
	stopped    bool
	st         ScanStatus
	lastReport time.Time
	due        time.Time // when the read under way was due, for Grid
	inputs     []string  // published by the reads so far
}

// Scan starts reading a channel: at once, then every o.Interval. A
// device starts its channels' scans in Apply and stops them in Apply
// (channels that go or change) and Close.
func (rt *Runtime[C]) Scan(o ScanOptions) *Scan {
	s := &Scan{
		o:     o,
		clock: rt.env.Clock,
		log:   rt.log.With("channel", o.Name),
		send:  func(p []byte) { rt.out.Send(rt.topics.Result(), false, p) },
		// Changed touches the runtime's state: on its goroutine.
		changed: func() { rt.Do(rt.Changed) },
		values:  rt.values,
	}
	s.forget = func() { rt.counts.removeScan(s) }
	rt.counts.addScan(s)
	s.mu.Lock()
	s.due = s.clock.Now()
	s.timer = s.clock.AfterFunc(0, s.tick)
	s.mu.Unlock()
	return s
}

// Stop ends the scan. A read under way finishes but publishes nothing.
func (s *Scan) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.forget()
}

func (s *Scan) stats() ChannelStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ChannelStats{Name: s.o.Name, ScanStatus: s.st, Inputs: slices.Clone(s.inputs)}
}

// Status returns what the scan has seen so far.
func (s *Scan) Status() ScanStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *Scan) tick() {
	publish, err := s.o.Read()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	now := s.clock.Now()
	next := s.o.Interval
	if err == nil {
		s.st.Reads++
		s.st.LastRead = now.UTC().Format(time.RFC3339)
		if publish != nil {
			for _, name := range s.values.track(publish) {
				if !slices.Contains(s.inputs, name) {
					s.inputs = append(s.inputs, name)
				}
			}
		}
		if s.st.Failing {
			s.log.Info("reads again", "after_errors", s.st.Consecutive)
			s.st.Failing = false
			s.changed()
		}
		s.st.Consecutive = 0
	} else {
		s.st.Errors++
		s.st.Consecutive++
		s.st.LastError = err.Error()
		s.st.LastErrorAt = now.UTC().Format(time.RFC3339)
		next = s.backoff()
		expected := s.o.Expected != nil && s.o.Expected(err)
		switch {
		case !s.st.Failing && (!expected || s.st.Consecutive >= s.o.Persist):
			s.st.Failing = true
			s.log.Warn("read failing", "err", err, "retry_in", next)
			s.report(err, now, next)
			s.changed()
		case s.st.Failing && now.Sub(s.lastReport) >= ScanReportEvery:
			s.report(err, now, next)
		default:
			s.log.Debug("read failed", "err", err, "expected", expected, "retry_in", next)
		}
	}
	if s.o.Grid {
		next = s.grid(now, next, err == nil)
	}
	s.timer = s.clock.AfterFunc(next, s.tick)
}

// gridCatchUp is how far behind its grid a Grid scan may fall and still
// make every read: a burst of at most 50 reads at 1 kHz.
const gridCatchUp = 50 * time.Millisecond

// grid is the wait before the next read of a Grid scan; wait is the
// retry after a failed read, from which the grid starts again.
func (s *Scan) grid(now time.Time, wait time.Duration, ok bool) time.Duration {
	if !ok {
		s.due = now.Add(wait)
		return wait
	}
	next := s.due.Add(s.o.Interval)
	if behind := now.Sub(next); behind > gridCatchUp {
		skip := behind/s.o.Interval + 1
		s.st.Missed += int(skip)
		next = next.Add(skip * s.o.Interval)
	}
	s.due = next
	return max(next.Sub(now), 0)
}

// backoff is the wait after the current run of errors.
func (s *Scan) backoff() time.Duration {
	d := s.o.Retry
	if d <= 0 {
		d = s.o.Interval
	}
	limit := max(MaxBackoff, s.o.Interval)
	for i := 1; i < s.st.Consecutive && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// ReadErrorData is the data of a read error result.
type ReadErrorData struct {
	Name        string   `json:"name"`
	Errors      int      `json:"errors"`
	Consecutive int      `json:"consecutive_errors"`
	RetryIn     Duration `json:"retry_in"`
}

func (s *Scan) report(err error, now time.Time, next time.Duration) {
	s.lastReport = now
	r := Fail(nil, OpRead, Errorf(CodeHardware, s.o.Field, "%s: %v", s.o.Name, err))
	r.Data = ReadErrorData{Name: s.o.Name, Errors: s.st.Errors, Consecutive: s.st.Consecutive, RetryIn: Duration(next)}
	b, merr := json.Marshal(r)
	if merr != nil {
		s.log.Error("marshal read error", "err", merr)
		return
	}
	s.send(b)
}

// ScanHealth is a HealthReporter's answer for a service whose inputs are
// scans: "" while none is failing, else how many are and why ("1 of 3
// channels failing; greenhouse: 14 read errors, last: ...").
func ScanHealth(scans []*Scan) string {
	var failing []string
	for _, s := range scans {
		st := s.Status()
		if st.Failing {
			failing = append(failing, fmt.Sprintf("%s: %d read errors, last: %s", s.o.Name, st.Errors, st.LastError))
		}
	}
	if len(failing) == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d channels failing; %s", len(failing), len(scans), strings.Join(failing, "; "))
}
