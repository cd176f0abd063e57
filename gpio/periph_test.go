package gpio

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/rollcall/rollcall/services/servicestest"
)

// outPin is a gpiotest pin that fails the test if it is ever Read while
// it is an output: on gpioioctl that Read would turn it into an input.
type outPin struct {
	*gpiotest.Pin
	t      testing.TB
	output atomic.Bool
	highs  atomic.Int64
	lows   atomic.Int64
	closed atomic.Bool
}

func (p *outPin) Out(l pgpio.Level) error {
	p.output.Store(true)
	if l {
		p.highs.Add(1)
	} else {
		p.lows.Add(1)
	}
	return p.Pin.Out(l)
}

func (p *outPin) In(pull pgpio.Pull, edge pgpio.Edge) error {
	p.output.Store(false)
	return p.Pin.In(pull, edge)
}

func (p *outPin) Read() pgpio.Level {
	if p.output.Load() {
		p.t.Errorf("%s: Read on an output", p.N)
	}
	return p.Pin.Read()
}

// Close is what gpioioctl lines have; the driver must call it.
func (p *outPin) Close() { p.closed.Store(true) }

type board struct {
	mu   sync.Mutex
	pins map[string]*outPin
}

func newBoard(t testing.TB, edges map[int]chan pgpio.Level, pins ...int) *board {
	b := &board{pins: map[string]*outPin{}}
	for _, n := range pins {
		name := "GPIO" + itoa(n)
		b.pins[name] = &outPin{Pin: &gpiotest.Pin{N: name, Num: n, EdgesChan: edges[n]}, t: t}
	}
	return b
}

func itoa(n int) string { return strconv.Itoa(n) }

func (b *board) lookup(name string) pgpio.PinIO {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.pins[name]; ok {
		return p
	}
	return nil
}

func (b *board) pin(n int) *outPin { return b.pins["GPIO"+itoa(n)] }

func newTestPeriph(t *testing.T, b *board, root string) *Periph {
	t.Helper()
	d, err := NewPeriph(PeriphOptions{Lookup: b.lookup, PWMRoot: root, EdgeWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPeriphOutputInput(t *testing.T) {
	edges := make(chan pgpio.Level, 4)
	b := newBoard(t, map[int]chan pgpio.Level{17: edges}, 25, 17, 5)
	d := newTestPeriph(t, b, t.TempDir())

	out, err := d.Output(25, pgpio.High)
	if err != nil {
		t.Fatal(err)
	}
	if b.pin(25).Pin.Read() != pgpio.High {
		t.Fatal("GPIO25 not driven high")
	}
	if err := out.Out(pgpio.Low); err != nil || b.pin(25).Pin.Read() != pgpio.Low {
		t.Fatalf("Out(Low): %v", err)
	}
	if err := out.Close(); err != nil || !b.pin(25).closed.Load() {
		t.Fatalf("Close did not release the line: %v", err)
	}

	in, err := d.Input(17, pgpio.PullDown)
	if err != nil {
		t.Fatal(err)
	}
	if p := b.pin(17); p.P != pgpio.PullDown || p.Read() != pgpio.Low {
		t.Fatalf("pull %v level %v", p.P, p.Read())
	}
	edges <- pgpio.High
	if !in.WaitForEdge(time.Minute) || in.Read() != pgpio.High {
		t.Fatal("edge not seen")
	}
	if in.WaitForEdge(0) { // clamped to EdgeWait, never "forever"
		t.Fatal("edge from nowhere")
	}
	_ = in.Close()

	// A pin without edge support is polled.
	poll, err := d.Input(5, pgpio.PullUp)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		for !poll.WaitForEdge(time.Second) {
		}
		close(got)
	}()
	// Toggle until the poller, which compares with the level it saw
	// first, notices.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := timeout()
	for lvl := pgpio.Low; ; lvl = !lvl {
		select {
		case <-got:
		case <-tick.C:
			_ = b.pin(5).Pin.Out(lvl)
			continue
		case <-deadline:
			t.Fatal("polled edge not seen")
		}
		break
	}
	_ = poll.Close()

	if _, err := d.Output(30, pgpio.Low); err == nil || !strings.Contains(err.Error(), "GPIO30") {
		t.Fatalf("missing pin: %v", err)
	}
}

// sysfsTree makes <root>/pwmchip0 with channel 0 exported.
func sysfsTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	ch := filepath.Join(root, "pwmchip0", "pwm0")
	if err := os.MkdirAll(ch, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"pwmchip0/export", "pwmchip0/unexport", "pwmchip0/pwm0/period", "pwmchip0/pwm0/duty_cycle", "pwmchip0/pwm0/polarity", "pwmchip0/pwm0/enable"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readSysfs(t *testing.T, root, f string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, f))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPeriphSysfsPWM(t *testing.T) {
	root := sysfsTree(t)
	b := newBoard(t, nil, 12, 18)
	d := newTestPeriph(t, b, root)
	p, err := d.PWM(18, dutyOf(20), time.Millisecond, true)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file, want string
	}{
		{"period", "pwmchip0/pwm0/period", "1000000"},
		{"duty", "pwmchip0/pwm0/duty_cycle", "200000"},
		{"polarity", "pwmchip0/pwm0/polarity", "inversed"},
		{"enable", "pwmchip0/pwm0/enable", "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := readSysfs(t, root, tc.file); got != tc.want {
				t.Errorf("%s = %q, want %q", tc.file, got, tc.want)
			}
		})
	}
	if b.pin(18).highs.Load()+b.pin(18).lows.Load() != 0 {
		t.Error("hardware PWM pin was driven as a GPIO")
	}
	if err := p.Set(dutyOf(50), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := readSysfs(t, root, "pwmchip0/pwm0/period") + " " + readSysfs(t, root, "pwmchip0/pwm0/duty_cycle"); got != "20000000 10000000" {
		t.Errorf("after Set: %s", got)
	}
	if _, err := d.PWM(12, dutyOf(20), time.Millisecond, false); err == nil || !strings.Contains(err.Error(), "GPIO18") {
		t.Errorf("12 shares channel 0 with 18: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if readSysfs(t, root, "pwmchip0/pwm0/enable") != "0" || readSysfs(t, root, "pwmchip0/unexport") != "0" {
		t.Error("channel not disabled and unexported")
	}
	if _, err := d.PWM(12, dutyOf(20), time.Millisecond, false); err != nil {
		t.Errorf("channel not free after Close: %v", err)
	}
}

func TestPeriphSoftPWM(t *testing.T) {
	b := newBoard(t, nil, 5, 18)
	d := newTestPeriph(t, b, t.TempDir()) // no pwmchip0: 18 falls back too
	if _, err := d.PWM(5, pgpio.DutyHalf, 500*time.Microsecond, false); err == nil {
		t.Error("software PWM accepted a 500µs period")
	}
	for _, n := range []int{5, 18} {
		p, err := d.PWM(n, pgpio.DutyHalf, 2*time.Millisecond, false)
		if err != nil {
			t.Fatal(err)
		}
		pin := b.pin(n)
		servicestest.WaitUntil(t, "toggling", func() bool { return pin.highs.Load() > 3 && pin.lows.Load() > 3 })
		if err := p.Set(pgpio.DutyMax, 0); err != nil {
			t.Fatal(err)
		}
		servicestest.WaitUntil(t, "steady high", func() bool { return pin.Pin.Read() == pgpio.High })
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if pin.Pin.Read() != pgpio.Low || !pin.closed.Load() {
			t.Errorf("GPIO%d not left low and released", n)
		}
	}
}

// TestServiceOnPeriph runs the whole service on the periph driver over
// gpiotest pins: outputs are driven and never read, edges are reported,
// and shutdown leaves outputs at failsafe with lines released.
func TestServiceOnPeriph(t *testing.T) {
	edges := make(chan pgpio.Level, 4)
	brd := newBoard(t, map[int]chan pgpio.Level{17: edges}, 25, 17)
	d := newTestPeriph(t, brd, t.TempDir())
	cfg := Config{Driver: DriverPeriph,
		Output: []OutputPin{{Name: "relay", Pin: 25, Init: 1, ActiveLow: true}},
		Input:  []InputPin{{Name: "door", Pin: 17, Pull: "down"}}}
	h := startWith(t, cfg, "", d, servicestest.NewBus())
	bus := h.Bus
	bus.Expect(t, 0, host+"/gpio/input/door", "0")
	relay := brd.pin(25)
	if relay.Pin.Read() != pgpio.Low {
		t.Error("active-low relay at init 1 should be driven low")
	}
	h.Request("set/relay", "0")
	if relay.Pin.Read() != pgpio.High {
		t.Error("relay off should be high")
	}
	edges <- pgpio.High
	bus.Expect(t, 0, host+"/gpio/input/door", "1")
	h.Request("set/relay", "1")
	h.Stop()
	if relay.Pin.Read() != pgpio.High || !relay.closed.Load() || !brd.pin(17).closed.Load() {
		t.Error("shutdown did not leave the relay at failsafe 0 (high) and release the lines")
	}
}

// brokenLine is an output whose writes start failing on demand, as a
// gpiochip line does when its chip goes away.
type brokenLine struct {
	pgpio.PinIO
	broken atomic.Bool
}

func (b *brokenLine) Out(l pgpio.Level) error {
	if b.broken.Load() {
		return errors.New("gpiochip0: line 5: no such device")
	}
	return b.PinIO.Out(l)
}

// TestSoftPWMReportsWriteErrors: a software PWM whose line fails stops
// toggling and says why on the next Set and on Close, rather than
// pretending to run.
func TestSoftPWMReportsWriteErrors(t *testing.T) {
	line := &brokenLine{PinIO: &gpiotest.Pin{N: "GPIO5", Num: 5}}
	p := newSoftPWM(line, pgpio.DutyHalf, 2*time.Millisecond, false)
	line.broken.Store(true)
	servicestest.WaitUntil(t, "the failure to be noticed", func() bool { return p.Set(pgpio.DutyHalf, 0) != nil })
	if err := p.Set(pgpio.DutyHalf, 0); err == nil || !strings.Contains(err.Error(), "no such device") {
		t.Errorf("Set after a failed write: %v", err)
	}
	if err := p.Close(); err == nil || !strings.Contains(err.Error(), "no such device") {
		t.Errorf("Close after a failed write: %v", err)
	}
}
