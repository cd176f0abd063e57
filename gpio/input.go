package gpio

import (
	"sync"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"

	"github.com/rollcall/rollcall/services"
)

// edgeWait bounds one WaitForEdge, so a watcher notices it is stopped
// even on a line whose Halt cannot interrupt a wait.
const edgeWait = 250 * time.Millisecond

// input watches one input line: a goroutine waits for edges from the
// driver, a debounce timer lets the level settle, and a settled change
// that passes the edge filter is published, retained.
type input struct {
	spec    InputPin
	line    InputLine
	clock   services.Clock
	publish func(level int)

	mu       sync.Mutex
	level    int
	stopped  bool
	debounce services.Timer
	scan     services.Timer

	stop chan struct{}
	done chan struct{}
}

// newInput watches line; publish is called with every settled level that
// passes the edge filter, with the lock of the input held.
func newInput(spec InputPin, line InputLine, clock services.Clock, publish func(level int)) *input {
	return &input{spec: spec, line: line, clock: clock, publish: publish,
		stop: make(chan struct{}), done: make(chan struct{})}
}

func (in *input) logical(l pgpio.Level) int {
	if bool(l) != in.spec.ActiveLow {
		return 1
	}
	return 0
}

// start publishes the initial level and starts watching.
func (in *input) start() {
	in.mu.Lock()
	in.level = in.logical(in.line.Read())
	in.publishLocked()
	if d := in.spec.Scan.D(); d > 0 {
		in.scan = in.clock.AfterFunc(d, in.scanTick)
	}
	in.mu.Unlock()
	go in.watch()
}

func (in *input) watch() {
	defer close(in.done)
	for {
		select {
		case <-in.stop:
			return
		default:
		}
		if in.line.WaitForEdge(edgeWait) {
			if in.spec.Debounce == 0 {
				in.settle()
				continue
			}
			in.mu.Lock()
			if !in.stopped {
				if in.debounce != nil {
					in.debounce.Stop()
				}
				in.debounce = in.clock.AfterFunc(in.spec.Debounce.D(), in.settle)
			}
			in.mu.Unlock()
		}
	}
}

// settle reads the level once it has had time to settle and publishes a
// change that passes the edge filter. The line is only read while the
// watcher is not stopped: reading a released gpioioctl line would
// request it again.
func (in *input) settle() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return
	}
	lvl := in.logical(in.line.Read())
	if lvl == in.level {
		return
	}
	in.level = lvl
	switch in.spec.Edge {
	case "rising":
		if lvl != 1 {
			return
		}
	case "falling":
		if lvl != 0 {
			return
		}
	}
	in.publishLocked()
}

func (in *input) scanTick() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return
	}
	in.level = in.logical(in.line.Read())
	in.publishLocked()
	in.scan = in.clock.AfterFunc(in.spec.Scan.D(), in.scanTick)
}

func (in *input) publishLocked() { in.publish(in.level) }

// close stops the watcher and releases the line.
func (in *input) close() error {
	in.mu.Lock()
	in.stopped = true
	if in.debounce != nil {
		in.debounce.Stop()
	}
	if in.scan != nil {
		in.scan.Stop()
	}
	in.mu.Unlock()
	close(in.stop)
	_ = in.line.Halt()
	<-in.done
	return in.line.Close()
}
