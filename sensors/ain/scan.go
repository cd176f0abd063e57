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

// scanner is one channel: a services.Scan reads it at its interval, off
// the runtime's goroutine, counting, reporting and retrying read errors;
// the scanner turns what it reads into the channel's value and publishes
// it unless it is within the deadband of the last one published.
type scanner struct {
	svc   *Service
	spec  ChannelConfig
	field string // "channels[2]", where its read errors are reported
	chip  *chip
	ch    Channel
	// as turns a sample of the sim standing in for a real chip (under
	// --sim) into one of that chip: its resolution, range and signs.
	as       func(Sample) Sample
	scale    float64
	topic    string
	valTopic string
	unitJSON []byte
	scan     *services.Scan

	// The deadband's state, touched by the scan's publish and read by
	// the description.
	mu        sync.Mutex
	published bool // a value went out; last is it
	last      float64
	count     uint64 // values published
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
		svc: s, spec: spec, field: field, chip: c, ch: ch, as: as, scale: spec.scale(),
		topic: topic, valTopic: topic + "/value", unitJSON: unit,
	}
}

// start makes the first read as soon as the clock allows, then one every
// interval, on the interval's grid.
func (sc *scanner) start() {
	sc.scan = sc.svc.Scan(services.ScanOptions{
		Name: sc.spec.Name, Field: sc.field, Interval: sc.spec.interval(), Grid: true,
		Read: func() (func(), error) {
			sample, err := sc.chip.convert(sc.ch)
			if err != nil {
				return nil, err
			}
			sample = sc.as(sample)
			now := sc.svc.clock.Now()
			return func() { sc.read(sample, now) }, nil
		},
	})
}

// stop ends the scan: once it returns, nothing more is published, even by
// a read under way.
func (sc *scanner) stop() {
	if sc.scan != nil {
		sc.scan.Stop()
	}
}

// status is what the description shows of the channel's reads.
func (sc *scanner) status() (services.ScanStatus, uint64) {
	sc.mu.Lock()
	n := sc.count
	sc.mu.Unlock()
	if sc.scan == nil {
		return services.ScanStatus{}, n
	}
	return sc.scan.Status(), n
}

// read takes a good sample: the value is published unless it is within
// the deadband of the last one published.
func (sc *scanner) read(s Sample, now time.Time) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	v := s.Volts*sc.scale + sc.spec.Offset
	if sc.published && math.Abs(v-sc.last) < sc.spec.Deadband {
		return
	}
	sc.published, sc.last = true, v
	sc.count++
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
