package ain

import (
	"errors"
	"strings"
	"testing"

	"periph.io/x/conn/v3/conntest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spitest"
)

// errNACK is what periph's Linux I2C bus returns when no chip acknowledges
// its address: the errno flattened into the message.
var errNACK = errors.New("sysfs-i2c: remote I/O error")

// faultyBus replays ops like i2ctest.Playback and fails transaction
// number failAt (from 0) with err instead, as a bus does on a NACK.
type faultyBus struct {
	*i2ctest.Playback
	failAt int
	err    error
	n      int
}

func (b *faultyBus) Tx(addr uint16, w, r []byte) error {
	n := b.n
	b.n++
	if n == b.failAt && b.err != nil {
		return b.err
	}
	return b.Playback.Tx(addr, w, r)
}

// replayI2C returns a bus replaying ops, failing transaction failAt with
// err when err is set. At the end of the test, left ops must remain
// unplayed: 0 unless the driver was meant to stop early.
func replayI2C(t *testing.T, ops []i2ctest.IO, failAt int, err error, left int) i2c.Bus {
	t.Helper()
	p := &i2ctest.Playback{Ops: ops, DontPanic: true}
	t.Cleanup(func() {
		if got := len(p.Ops) - p.Count; got != left {
			t.Errorf("%d of %d recorded transactions left unplayed, want %d", got, len(p.Ops), left)
		}
	})
	return &faultyBus{Playback: p, failAt: failAt, err: err}
}

// failConn is an SPI connection whose every transfer fails.
type failConn struct {
	spi.Conn
	err error
}

func (c failConn) Tx(w, r []byte) error { return c.err }

// replaySPI returns an SPI connection replaying ops; see replayI2C for
// left.
func replaySPI(t *testing.T, ops []conntest.IO, left int) spi.Conn {
	t.Helper()
	p := &spitest.Playback{Playback: conntest.Playback{Ops: ops, DontPanic: true}}
	t.Cleanup(func() {
		if got := len(p.Ops) - p.Count; got != left {
			t.Errorf("%d of %d recorded transfers left unplayed, want %d", got, len(p.Ops), left)
		}
	})
	c, err := p.Connect(physic.MegaHertz, spi.Mode0, 8)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkErr fails the test unless err matches want: "" for no error,
// otherwise every "|"-separated part must appear in its message.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	for _, part := range strings.Split(want, "|") {
		if !strings.Contains(err.Error(), part) {
			t.Fatalf("error %q does not contain %q", err, part)
		}
	}
}

// checkSample compares a sample with the expected code and voltage.
func checkSample(t *testing.T, got Sample, raw int64, volts float64) {
	t.Helper()
	if got.Raw != raw || !near(got.Volts, volts, 1e-9) {
		t.Errorf("got %+v, want {Raw:%d Volts:%v}", got, raw, volts)
	}
}

func near(a, b, tol float64) bool { return a-b <= tol && b-a <= tol }

// fieldOf returns the Field of a *FieldError in err's chain, or "".
func fieldOf(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}
