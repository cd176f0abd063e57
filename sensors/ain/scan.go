package ain

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/rollcall/rollcall/services"
)

// chip is one configured converter, shared by the channels that read it.
// It opens lazily: a chip that could not be opened at start is tried
// again by its channels' next reads.
type chip struct {
	spec ChipConfig
	open func() (Converter, error)

	mu     sync.Mutex
	conv   Converter
	err    error // why the last open failed, while not open
	closed bool
}

var errChipClosed = errors.New("chip closed")

// ensure opens the converter if it is not open.
func (c *chip) ensure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errChipClosed
	}
	if c.conv != nil {
		return nil
	}
	conv, err := c.open()
	if err != nil {
		c.err = err
		return err
	}
	if p, ok := conv.(*PCF8591); ok {
		// Every control byte rewrites the analog output enable flag:
		// keep it set while the dac service drives the output.
		p.SetOutputEnable(c.spec.DAC)
	}
	c.conv, c.err = conv, nil
	return nil
}

// convert converts ch, opening the chip first if it is not open. The
// converter serializes the conversions of the chip's channels.
func (c *chip) convert(ch Channel) (Sample, error) {
	if err := c.ensure(); err != nil {
		return Sample{}, fmt.Errorf("chip %s: cannot open: %w", c.spec.Name, err)
	}
	c.mu.Lock()
	conv := c.conv
	c.mu.Unlock()
	return conv.Convert(ch)
}

func (c *chip) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conv == nil {
		return nil
	}
	err := c.conv.Close()
	c.conv = nil
	return err
}

// Read errors: a failing channel is read again after a backoff that
// doubles from its interval up to maxBackoff (or its interval, if that
// is longer), and reports on the result topic at most once per
// reportEvery.
const (
	maxBackoff  = time.Minute
	reportEvery = 10 * time.Second
)

// scanner reads one channel on its own timer (Clock.AfterFunc, whose
// function runs in a goroutine of its own, never the runtime's) and
// publishes what it reads.
type scanner struct {
	svc  *Service
	spec ChannelConfig
	chip *chip
	ch   Channel
	// as turns a sample of the sim standing in for a real chip (under
	// --sim) into one of that chip: its resolution, range and signs.
	as       func(Sample) Sample
	every    time.Duration
	scale    float64
	topic    string
	valTopic string
	unitJSON []byte

	mu        sync.Mutex
	field     string // "channels[2]", where errors are reported
	stopped   bool
	timer     services.Timer
	due       time.Time // when the current read was due
	published bool      // a value went out; last is it
	last      float64
	st        stats
	failing   int // reads failed in a row
	reported  time.Time
	held      int // failures not reported since reported
}

// stats are a channel's counts, for its state in the description.
type stats struct {
	reads, published, errors, missed uint64
	lastError                        string
}

func (s *Service) newScanner(spec ChannelConfig, field string, c *chip) *scanner {
	unit, _ := json.Marshal(spec.unit())
	ch := spec.channel()
	as := func(s Sample) Sample { return s }
	if s.env.Sim {
		// The sim stands in for whatever chip the setup names: 8 inputs,
		// any pair, no range or rate.
		ch.Input, ch.Neg, ch.Range, ch.Rate = ch.Input%8, ch.Neg%8, 0, 0
		ch.Diff = ch.Diff && ch.Neg != ch.Input
		as = simulate(c.spec, spec)
	}
	topic := s.Topics().Input(spec.Name)
	return &scanner{
		svc: s, spec: spec, chip: c, ch: ch, as: as, every: spec.interval(), scale: spec.scale(),
		topic: topic, valTopic: topic + "/value", unitJSON: unit, field: field,
	}
}

// simulate returns what the chip cc would read of the sim's voltage, so
// that a simulated pcf8591 gives 8-bit codes and an ads1115 at ±0.256 V
// clips: the raw codes and ranges a user sees match the chip named.
func simulate(cc ChipConfig, ch ChannelConfig) func(Sample) Sample {
	model, _ := LookupChip(cc.Chip)
	diff := ch.Neg != nil
	var fs float64 // volts of one full-scale step count
	var lo, hi int64
	switch cc.Chip {
	case ChipMCP3008:
		fs, lo, hi = cc.vref(), 0, 1023
	case ChipPCF8591:
		fs, lo, hi = cc.vref(), 0, 255
		if diff {
			lo, hi = -128, 127
		}
	case ChipADS1115, ChipADS1015:
		half := int64(1) << (model.Bits - 1)
		fs, lo, hi = 2*model.WithDefaults(ch.channel()).Range, -half, half-1
	default:
		return func(s Sample) Sample { return s }
	}
	steps := float64(hi - lo + 1)
	if cc.Chip == ChipPCF8591 || cc.Chip == ChipMCP3008 {
		steps = float64(int64(1) << model.Bits)
	}
	return func(s Sample) Sample {
		raw := min(max(int64(math.Round(s.Volts*steps/fs)), lo), hi)
		return Sample{Raw: raw, Volts: float64(raw) * fs / steps}
	}
}

func (sc *scanner) setField(f string) {
	sc.mu.Lock()
	sc.field = f
	sc.mu.Unlock()
}

// start makes the first read as soon as the clock allows.
func (sc *scanner) start() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.due = sc.svc.clock.Now()
	sc.timer = sc.svc.clock.AfterFunc(0, sc.tick)
}

// stop ends the scan: once it returns, nothing more is published, even by
// a read under way.
func (sc *scanner) stop() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.stopped = true
	if sc.timer != nil {
		sc.timer.Stop()
	}
}

// tick reads the channel once and schedules the next read.
func (sc *scanner) tick() {
	sample, err := sc.chip.convert(sc.ch)
	now := sc.svc.clock.Now()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.stopped {
		return
	}
	if err != nil {
		delay := sc.failed(err, now)
		sc.due = now.Add(delay)
		sc.timer = sc.svc.clock.AfterFunc(delay, sc.tick)
		return
	}
	sc.read(sc.as(sample), now)
	// Keep to the interval's grid. A read a little late (a busy machine,
	// a timer woken late) is caught up at once, so a 1 kHz scan makes its
	// thousand reads a second; one further behind (a slow read) skips the
	// slots it missed rather than catching up in a burst.
	next := sc.due.Add(sc.every)
	if behind := now.Sub(next); behind > catchUp(sc.every) {
		skip := behind/sc.every + 1
		sc.st.missed += uint64(skip)
		next = next.Add(skip * sc.every)
	}
	sc.due = next
	sc.timer = sc.svc.clock.AfterFunc(max(next.Sub(now), 0), sc.tick)
}

// catchUp is how far behind its grid a scan may fall and still catch up:
// ten intervals, at most 50 ms.
func catchUp(every time.Duration) time.Duration { return min(10*every, 50*time.Millisecond) }

// read takes a good sample: the channel is well again, and the value is
// published unless it is within the deadband of the last one published.
func (sc *scanner) read(s Sample, now time.Time) {
	sc.st.reads++
	if sc.failing > 0 {
		sc.svc.Logger().Info("channel reads again", "channel", sc.spec.Name, "after", sc.failing)
		sc.failing, sc.held = 0, 0
		sc.svc.healthChanged()
	}
	v := s.Volts*sc.scale + sc.spec.Offset
	if sc.published && math.Abs(v-sc.last) < sc.spec.Deadband {
		return
	}
	sc.published, sc.last = true, v
	sc.st.published++
	v = round(v)
	value := appendNumber(make([]byte, 0, 24), v)
	b := make([]byte, 0, 112)
	b = append(b, `{"value":`...)
	b = append(b, value...)
	b = append(b, `,"unit":`...)
	b = append(b, sc.unitJSON...)
	b = append(b, `,"raw":`...)
	b = strconv.AppendInt(b, s.Raw, 10)
	b = append(b, `,"volts":`...)
	b = appendNumber(b, round(s.Volts))
	b = append(b, `,"ts":"`...)
	b = now.UTC().AppendFormat(b, tsLayout)
	b = append(b, `"}`...)
	sc.svc.Values().PublishEach("input", sc.spec.Name, v, services.Retained{Topic: sc.topic, Payload: b}, services.Retained{Topic: sc.valTopic, Payload: value})
}

// tsLayout is RFC 3339 with milliseconds: a 1 kHz scan needs them.
const tsLayout = "2006-01-02T15:04:05.000Z07:00"

// appendNumber appends v as a JSON number, to 9 significant digits.
func appendNumber(b []byte, v float64) []byte {
	return strconv.AppendFloat(b, v, 'g', 9, 64)
}

// failed counts a failed read, reports it (at most once per reportEvery)
// and returns how long to wait before the next try.
func (sc *scanner) failed(err error, now time.Time) time.Duration {
	sc.st.errors++
	sc.st.lastError = err.Error()
	sc.failing++
	delay := backoff(sc.every, sc.failing)
	if sc.failing == 1 {
		sc.svc.healthChanged()
	}
	if !sc.reported.IsZero() && now.Sub(sc.reported) < reportEvery {
		sc.held++
		return delay
	}
	msg := fmt.Sprintf("%s: read failed: %v (%d in a row; next try in %s)", sc.spec.Name, err, sc.failing, delay)
	if sc.held > 0 {
		msg += fmt.Sprintf("; %d more failures since the last report", sc.held)
	}
	sc.reported, sc.held = now, 0
	sc.svc.Logger().Warn("read failed", "channel", sc.spec.Name, "err", err, "in_a_row", sc.failing, "retry_in", delay)
	r := services.Fail(nil, services.OpRead, services.Errorf(services.CodeHardware, sc.field, "%s", msg))
	if b, err := json.Marshal(r); err == nil {
		sc.svc.Send(sc.svc.Topics().Result(), false, b)
	}
	return delay
}

// backoff is the wait after n failures in a row: the interval doubled n
// times, at most maxBackoff, or the interval itself when that is longer.
func backoff(every time.Duration, n int) time.Duration {
	limit := max(every, maxBackoff)
	d := every
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
