package sonar_test

import (
	"errors"
	"io/fs"
	"sort"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/rollcall/rollcall/sensors/sonar"
)

var epoch = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// levelAt is a level a line took at a time.
type levelAt struct {
	at time.Time
	l  gpio.Level
}

// pulse is how the module answers one trigger: ECHO rises rise after the
// trigger's falling edge and falls width later. A negative rise means it
// never rises, a negative width that it never falls.
type pulse struct{ rise, width time.Duration }

// bench is an HC-SR04 on two lines, in virtual time. The trigger records
// every level it is driven to; each falling trigger edge schedules the
// next planned pulse on the echo line. The echo line behaves like
// gpioioctl's: edges queue until a WaitForEdge takes them, a wait returns
// at once for a queued edge, In does not flush them, and a timeout must be
// positive (gpioioctl waits forever on 0 and not at all below). The
// ranger's clock is the bench's: Sleep and every wait move it forward.
type bench struct {
	t      *testing.T
	now    time.Time
	plans  []pulse
	fired  int
	trig   []levelAt
	queued []levelAt // echo edges not yet taken by a wait
	edges  []levelAt // every echo edge, for Read
	halts  int
	edge   gpio.Edge // the echo's edge detection, from In

	trigPin *trigPin
	echoPin *echoPin
}

func newBench(t *testing.T, plans ...pulse) *bench {
	t.Helper()
	b := &bench{t: t, now: epoch, plans: plans}
	b.trigPin = &trigPin{Pin: gpiotest.Pin{N: "GPIO23", Num: 23}, b: b}
	b.echoPin = &echoPin{Pin: gpiotest.Pin{N: "GPIO24", Num: 24}, b: b}
	return b
}

func (b *bench) Now() time.Time        { return b.now }
func (b *bench) Sleep(d time.Duration) { b.now = b.now.Add(d) }

// echoEdge queues an edge on the echo line, keeping time order.
func (b *bench) echoEdge(at time.Time, l gpio.Level) {
	e := levelAt{at, l}
	b.queued = append(b.queued, e)
	b.edges = append(b.edges, e)
	sort.SliceStable(b.queued, func(i, j int) bool { return b.queued[i].at.Before(b.queued[j].at) })
	sort.SliceStable(b.edges, func(i, j int) bool { return b.edges[i].at.Before(b.edges[j].at) })
}

// triggers returns the times of the trigger's rising edges and the width
// of each pulse.
func (b *bench) triggers() (rises []time.Time, widths []time.Duration) {
	for i := 1; i < len(b.trig); i++ {
		if b.trig[i-1].l == gpio.High && b.trig[i].l == gpio.Low {
			rises = append(rises, b.trig[i-1].at)
			widths = append(widths, b.trig[i].at.Sub(b.trig[i-1].at))
		}
	}
	return rises, widths
}

type trigPin struct {
	gpiotest.Pin
	b *bench
}

func (p *trigPin) Out(l gpio.Level) error {
	b := p.b
	if n := len(b.trig); n > 0 && b.trig[n-1].l == gpio.High && l == gpio.Low {
		if b.fired < len(b.plans) {
			pl := b.plans[b.fired]
			if pl.rise >= 0 {
				b.echoEdge(b.now.Add(pl.rise), gpio.High)
				if pl.width >= 0 {
					b.echoEdge(b.now.Add(pl.rise+pl.width), gpio.Low)
				}
			}
		}
		b.fired++
	}
	b.trig = append(b.trig, levelAt{b.now, l})
	return p.Pin.Out(l)
}

type echoPin struct {
	gpiotest.Pin
	b *bench
}

func (p *echoPin) In(pull gpio.Pull, edge gpio.Edge) error {
	if pull != gpio.PullDown {
		p.b.t.Errorf("echo In(%s, %s): want a pull-down, so an unplugged module reads low", pull, edge)
	}
	p.b.edge = edge
	return nil
}

func (p *echoPin) Read() gpio.Level {
	l := gpio.Low
	for _, e := range p.b.edges {
		if e.at.After(p.b.now) {
			break
		}
		l = e.l
	}
	return l
}

func (p *echoPin) WaitForEdge(timeout time.Duration) bool {
	b := p.b
	if timeout <= 0 {
		b.t.Errorf("WaitForEdge(%v): gpioioctl waits forever on 0 and drops queued edges below", timeout)
		return false
	}
	if b.edge != gpio.BothEdges {
		b.t.Errorf("WaitForEdge with edge detection %s, want both edges", b.edge)
	}
	if len(b.queued) > 0 && !b.queued[0].at.After(b.now.Add(timeout)) {
		e := b.queued[0]
		b.queued = b.queued[1:]
		if e.at.After(b.now) {
			b.now = e.at
		}
		return true
	}
	b.now = b.now.Add(timeout)
	return false
}

func (p *echoPin) Halt() error {
	p.b.halts++
	return nil
}

func (b *bench) ranger(opts sonar.GPIOOptions) *sonar.GPIO {
	b.t.Helper()
	opts.Now, opts.Sleep = b.Now, b.Sleep
	r, err := sonar.NewGPIO(b.trigPin, b.echoPin, opts)
	if err != nil {
		b.t.Fatal(err)
	}
	return r
}

// roundTrip is the echo of a target at metres in air at 20 °C.
func roundTrip(metres float64) time.Duration {
	return time.Duration(2 * metres / sonar.SpeedOfSound(20) * float64(time.Second))
}

func TestGPIOPing(t *testing.T) {
	tests := []struct {
		name    string
		before  []levelAt // echo edges before the first ping
		plan    pulse
		want    time.Duration
		wantIs  error  // with want 0: the error Ping must return
		wantMsg string // with want 0: part of its text
		noTrig  bool   // the trigger must not have fired
	}{
		{name: "1 m", plan: pulse{460 * time.Microsecond, roundTrip(1)}, want: roundTrip(1)},
		{name: "2 cm", plan: pulse{460 * time.Microsecond, roundTrip(0.02)}, want: roundTrip(0.02)},
		{name: "4 m", plan: pulse{2 * time.Millisecond, roundTrip(4)}, want: roundTrip(4)},
		{name: "longest echo", plan: pulse{time.Millisecond, sonar.MaxEcho}, want: sonar.MaxEcho},
		{name: "no target", plan: pulse{time.Millisecond, 38 * time.Millisecond},
			wantIs: sonar.ErrNoEcho, wantMsg: "sonar: echo GPIO24 high for over 30ms: no echo"},
		{name: "echo never falls", plan: pulse{time.Millisecond, -1}, wantIs: sonar.ErrNoEcho},
		{name: "echo never rises", plan: pulse{-1, 0},
			wantMsg: "sonar: echo GPIO24 did not rise within 20ms of the trigger on GPIO23: check the 5 V supply"},
		{name: "busy from an earlier pulse", before: []levelAt{{epoch, gpio.High}, {epoch.Add(100 * time.Millisecond), gpio.Low}},
			plan: pulse{500 * time.Microsecond, roundTrip(1.5)}, want: roundTrip(1.5)},
		{name: "stuck high", before: []levelAt{{epoch, gpio.High}}, noTrig: true,
			wantMsg: "sonar: echo GPIO24 stays high with no trigger: check the divider"},
		{name: "chattering", before: chatter(40), noTrig: true,
			wantMsg: "sonar: echo GPIO24 keeps changing with no trigger"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, tc.plan)
			for _, e := range tc.before {
				b.echoEdge(e.at, e.l)
			}
			r := b.ranger(sonar.GPIOOptions{})
			got, err := r.Ping()
			switch {
			case tc.want != 0 && (err != nil || got != tc.want):
				t.Errorf("Ping = %v, %v; want %v", got, err, tc.want)
			case tc.want == 0 && err == nil:
				t.Errorf("Ping = %v, want an error", got)
			case tc.wantIs != nil && !errors.Is(err, tc.wantIs):
				t.Errorf("Ping error %v, want %v", err, tc.wantIs)
			case tc.wantIs == nil && errors.Is(err, sonar.ErrNoEcho):
				t.Errorf("Ping error %v is ErrNoEcho, which means no target, not a fault", err)
			case err != nil && !strings.Contains(err.Error(), tc.wantMsg):
				t.Errorf("Ping error %q, want %q", err, tc.wantMsg)
			}
			rises, widths := b.triggers()
			if tc.noTrig {
				if len(rises) != 0 {
					t.Errorf("the trigger fired %d times with ECHO not low", len(rises))
				}
				return
			}
			if len(rises) != 1 || widths[0] != sonar.MinTrigger {
				t.Errorf("trigger pulses %v, want one of %v", widths, sonar.MinTrigger)
			}
			if b.trig[0].l != gpio.Low || b.trig[len(b.trig)-1].l != gpio.Low {
				t.Errorf("trigger levels %v, want it low before and after", b.trig)
			}
		})
	}
}

// chatter is n echo edges 100 µs apart, from epoch.
func chatter(n int) []levelAt {
	var e []levelAt
	for i := range n {
		e = append(e, levelAt{epoch.Add(time.Duration(i) * 100 * time.Microsecond), gpio.Level(i%2 == 0)})
	}
	return e
}

func TestGPIOTriggerWidth(t *testing.T) {
	tests := []struct {
		name    string
		width   time.Duration
		want    time.Duration
		wantMsg string
	}{
		{name: "default", width: 0, want: 10 * time.Microsecond},
		{name: "longer", width: 25 * time.Microsecond, want: 25 * time.Microsecond},
		{name: "too short", width: 5 * time.Microsecond, wantMsg: "sonar: trigger pulse 5µs is shorter than the HC-SR04's 10µs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, pulse{time.Millisecond, roundTrip(1)})
			r, err := sonar.NewGPIO(b.trigPin, b.echoPin, sonar.GPIOOptions{TriggerWidth: tc.width, Now: b.Now, Sleep: b.Sleep})
			if tc.wantMsg != "" {
				if err == nil || err.Error() != tc.wantMsg {
					t.Fatalf("NewGPIO error %v, want %q", err, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Ping(); err != nil {
				t.Fatal(err)
			}
			if _, widths := b.triggers(); len(widths) != 1 || widths[0] != tc.want {
				t.Errorf("trigger pulses %v, want one of %v", widths, tc.want)
			}
		})
	}
}

// A no-target pulse outlasts the wait for it; its falling edge, still
// queued at the next ping, must not be taken for that ping's rising edge.
func TestGPIOStaleEdge(t *testing.T) {
	b := newBench(t,
		pulse{time.Millisecond, 38 * time.Millisecond},
		pulse{500 * time.Microsecond, roundTrip(0.5)},
		pulse{time.Millisecond, 38 * time.Millisecond},
		pulse{500 * time.Microsecond, roundTrip(2.5)},
	)
	r := b.ranger(sonar.GPIOOptions{})
	want := []time.Duration{0, roundTrip(0.5), 0, roundTrip(2.5)}
	for i, w := range want {
		got, err := r.Ping()
		if w == 0 {
			if !errors.Is(err, sonar.ErrNoEcho) {
				t.Errorf("ping %d = %v, %v; want ErrNoEcho", i, got, err)
			}
			continue
		}
		if err != nil || got != w {
			t.Errorf("ping %d = %v, %v; want %v", i, got, err, w)
		}
	}
}

func TestGPIOMinGap(t *testing.T) {
	b := newBench(t, pulse{500 * time.Microsecond, roundTrip(1)}, pulse{500 * time.Microsecond, roundTrip(1)},
		pulse{500 * time.Microsecond, roundTrip(1)}, pulse{500 * time.Microsecond, roundTrip(1)})
	r := b.ranger(sonar.GPIOOptions{})
	for range 3 {
		if _, err := r.Ping(); err != nil {
			t.Fatal(err)
		}
	}
	// The caller waits longer than MinGap: no extra wait.
	b.Sleep(200 * time.Millisecond)
	called := b.now
	if _, err := r.Ping(); err != nil {
		t.Fatal(err)
	}
	rises, _ := b.triggers()
	if len(rises) != 4 {
		t.Fatalf("%d triggers, want 4", len(rises))
	}
	for i := 1; i < 3; i++ {
		if gap := rises[i].Sub(rises[i-1]); gap != sonar.MinGap {
			t.Errorf("back-to-back pings %d and %d triggered %v apart, want %v", i-1, i, gap, sonar.MinGap)
		}
	}
	if d := rises[3].Sub(called); d > 5*time.Millisecond {
		t.Errorf("a ping 200ms after the last waited %v before triggering", d)
	}
}

func TestGPIOClose(t *testing.T) {
	b := newBench(t, pulse{500 * time.Microsecond, roundTrip(1)})
	r := b.ranger(sonar.GPIOOptions{})
	if _, err := r.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if b.halts == 0 {
		t.Error("Close did not halt the echo pin, which would interrupt a waiting Ping")
	}
	if last := b.trig[len(b.trig)-1]; last.l != gpio.Low {
		t.Errorf("trigger left %s", last.l)
	}
	if _, err := r.Ping(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Ping after Close: %v, want fs.ErrClosed", err)
	}
}

func TestNewGPIOErrors(t *testing.T) {
	b := newBench(t)
	if _, err := sonar.NewGPIO(nil, b.echoPin, sonar.GPIOOptions{}); err == nil {
		t.Error("NewGPIO without a trigger pin succeeded")
	}
	if _, err := sonar.NewGPIO(b.trigPin, failingIn{b.echoPin}, sonar.GPIOOptions{}); err == nil ||
		!strings.Contains(err.Error(), "sonar: echo GPIO24: edge detection: no interrupts") {
		t.Errorf("NewGPIO on a pin without edges: %v", err)
	}
}

type failingIn struct{ *echoPin }

func (failingIn) In(gpio.Pull, gpio.Edge) error { return errors.New("no interrupts") }
