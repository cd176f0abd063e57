package dac

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

// playback returns periph's replaying bus, failing the test if the code
// under test leaves any recorded transaction unused.
func playback(t *testing.T, ops ...i2ctest.IO) *i2ctest.Playback {
	t.Helper()
	return playbackShort(t, false, ops...)
}

// playbackShort is playback where, if short is true, the last recorded
// transaction returns fewer bytes than the code asks for: Playback then
// fails that transaction and leaves it unused.
func playbackShort(t *testing.T, short bool, ops ...i2ctest.IO) *i2ctest.Playback {
	t.Helper()
	p := &i2ctest.Playback{Ops: ops, DontPanic: true}
	t.Cleanup(func() {
		if !short {
			if err := p.Close(); err != nil {
				t.Error(err)
			}
			return
		}
		if p.Count != len(ops)-1 {
			t.Errorf("%d transactions before the short read, want %d", p.Count, len(ops)-1)
		}
	})
	return p
}

// errNACK is what periph's sysfs-i2c returns when the kernel reports a
// transfer the chip did not acknowledge (i2c-bcm2835 returns EREMOTEIO;
// periph formats it with %v, so only the text survives).
var errNACK = fmt.Errorf("sysfs-i2c: %v", syscall.EREMOTEIO)

// testBus replays a recording with periph's Playback, adding what a
// recording cannot hold: a chip that stops acknowledging, and a count of
// Close calls.
type testBus struct {
	*i2ctest.Playback
	// nack is the transaction, counted from 1, that the chip does not
	// acknowledge: it is still checked against the recording, then fails
	// as a NACK with nothing read. 0: the chip acknowledges everything.
	nack int

	mu     sync.Mutex
	closes int
}

func (b *testBus) Tx(addr uint16, w, r []byte) error {
	b.Lock()
	n := b.Count + 1
	b.Unlock()
	if err := b.Playback.Tx(addr, w, r); err != nil {
		return err
	}
	if n == b.nack {
		clear(r)
		return errNACK
	}
	return nil
}

func (b *testBus) Close() error {
	b.mu.Lock()
	b.closes++
	b.mu.Unlock()
	return b.Playback.Close()
}

func (b *testBus) closeCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closes
}

// fakeClock gives the EEPROM poll time without sleeping: Sleep moves Now
// on and records the pause; onSleep, if set, runs inside each Sleep.
type fakeClock struct {
	now     time.Time
	sleeps  []time.Duration
	onSleep func()
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(d time.Duration) {
	c.now = c.now.Add(d)
	c.sleeps = append(c.sleeps, d)
	if c.onSleep != nil {
		c.onSleep()
	}
}

// sysfsCopy copies testdata/sys to a temporary directory, so a test can
// write to it.
func sysfsCopy(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/sys")); err != nil {
		t.Fatal(err)
	}
	return dir
}
