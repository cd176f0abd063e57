//go:build godht && cgo

package dht22

import (
	"fmt"
	"io/fs"
	"math"
	"strings"
	"sync"
	"time"

	dht "github.com/d2r2/go-dht"
	logger "github.com/d2r2/go-logger"
)

func init() {
	// go-dht logs every pulse train to stdout at debug level, from its
	// own package logger; it logs nothing at fatal level, so this
	// silences it without hiding anything our errors do not carry.
	_ = logger.ChangePackageLogLevel("dht", logger.FatalLevel)
}

// GoDHT reads a DHT22 by bit-banging its data line from user space with
// github.com/d2r2/go-dht, through /sys/class/gpio. It exists only in
// binaries built with -tags godht and cgo.
//
// go-dht decodes the DHT22's sign-magnitude temperature correctly (the
// sign is bit 7 of the third byte, the magnitude the other 15 bits); its
// float32 results are rounded here to the sensor's 0.1 resolution, so
// that 23.4 does not come out as 23.399999618530273. Its retrying entry
// points install handlers for SIGINT and SIGTERM, so only its single-shot
// ReadDHTxx is used; callers retry with Retryable. Timing from user space
// fails more often than the kernel driver, more so on a busy Pi Zero.
type GoDHT struct {
	pin   int // BCM
	sysfs int // what go-dht is given

	mu       sync.Mutex
	last     Reading
	lastGood time.Time
	lastTry  time.Time
	closed   bool
}

var _ Sensor = (*GoDHT)(nil)

func openGoDHT(o Options) (Sensor, error) { return NewGoDHT(o.Sysfs, o.Pin) }

// NewGoDHT returns the go-dht driver for the DHT22 on BCM GPIO pin, with
// sysfs the sysfs root used to map the pin to its /sys/class/gpio number.
func NewGoDHT(sysfs fs.FS, pin int) (*GoDHT, error) {
	n, err := goDHTPin(sysfs, pin)
	if err != nil {
		return nil, err
	}
	return &GoDHT{pin: pin, sysfs: n}, nil
}

// Read implements Sensor. Like the kernel driver it returns its last good
// reading when that is under MinInterval old, and it never starts the
// sensor sooner than MinInterval after the previous attempt: it waits.
func (g *GoDHT) Read() (Reading, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return Reading{}, errClosed
	}
	now := time.Now()
	if !g.lastGood.IsZero() && now.Sub(g.lastGood) < MinInterval {
		return g.last, nil
	}
	if wait := MinInterval - now.Sub(g.lastTry); !g.lastTry.IsZero() && wait > 0 {
		time.Sleep(wait)
	}
	g.lastTry = time.Now()
	t, h, err := dht.ReadDHTxx(dht.DHT22, g.sysfs, false)
	if err != nil {
		return Reading{}, g.wrap(err)
	}
	r, err := check(Reading{Celsius: round1(t), Humidity: round1(h)})
	if err != nil {
		return Reading{}, fmt.Errorf("dht22: godht GPIO%d: %w", g.pin, err)
	}
	g.last, g.lastGood = r, g.lastTry
	return r, nil
}

// wrap tells go-dht's GPIO failures (export, direction, value: wiring is
// not the problem, permissions or another owner of the pin are) from its
// decoding failures, which the next attempt may not repeat.
func (g *GoDHT) wrap(err error) error {
	if strings.Contains(err.Error(), "C.dial_DHTxx_and_read") {
		return fmt.Errorf("dht22: godht GPIO%d (sysfs gpio%d): %w (is the pin free, /sys/class/gpio writable by this user, and no dht11 overlay on it?)", g.pin, g.sysfs, err)
	}
	return fmt.Errorf("dht22: godht GPIO%d: %v: %w", g.pin, err, errTransient)
}

// Close implements Sensor. go-dht unexports the pin after every read, so
// there is nothing to release.
func (g *GoDHT) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	return nil
}

func round1(v float32) float64 { return math.Round(float64(v)*10) / 10 }
