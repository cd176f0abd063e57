package gpio

import (
	"context"
	"os"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"

	"github.com/rollcall/rollcall/services"
)

// chanBus hands every publish on one topic to a channel, stamped.
type chanBus struct {
	topic string
	ch    chan time.Time
	subs  chan struct{}
}

func (b *chanBus) Publish(topic string, _ byte, _ bool, _ []byte) error {
	if topic == b.topic {
		b.ch <- time.Now()
	}
	return nil
}
func (b *chanBus) Subscribe(string, services.Handler) error { b.subs <- struct{}{}; return nil }
func (b *chanBus) Changed()                                 {}

func startBench(tb testing.TB, sim *Sim) (*chanBus, func()) {
	tb.Helper()
	cfg := Config{Driver: DriverSim, Input: []InputPin{{Name: "button", Pin: 17, Pull: "down"}}}
	svc, err := New(cfg, Options{Env: services.Env{Host: host}, Driver: sim})
	if err != nil {
		tb.Fatal(err)
	}
	bus := &chanBus{topic: host + "/gpio/input/button", ch: make(chan time.Time, 4096), subs: make(chan struct{}, 8)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx, bus) }()
	<-svc.Serving()
	<-bus.ch // the initial value
	return bus, func() { cancel(); <-done }
}

// BenchmarkEdgeToPublish measures an input edge on the sim driver to its
// on_change message leaving the service (target p99 ≤ 2 ms).
func BenchmarkEdgeToPublish(b *testing.B) {
	sim := NewSim()
	bus, stop := startBench(b, sim)
	defer stop()
	lat := make([]time.Duration, 0, b.N)
	level := pgpio.Low
	b.ResetTimer()
	for range b.N {
		level = !level
		t0 := time.Now()
		sim.Drive(17, level)
		select {
		case t1 := <-bus.ch:
			lat = append(lat, t1.Sub(t0))
		case <-timeout():
			b.Fatal("no publish for an edge")
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkSoak1000EdgesPerSecond toggles one input 1,000 times a second
// for ROLLCALL_SOAK (default 3s; the figure is for 1m) and
// reports goroutines and heap before and after, and CPU per second.
func BenchmarkSoak1000EdgesPerSecond(b *testing.B) {
	dur := 3 * time.Second
	if s := os.Getenv("ROLLCALL_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		dur = d
	}
	sim := NewSim()
	bus, stop := startBench(b, sim)
	defer stop()
	drain := make(chan int)
	quit := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-bus.ch:
				n++
			case <-quit:
				drain <- n
				return
			}
		}
	}()
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	g0, h0, c0 := runtime.NumGoroutine(), heap(), cpu()
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	end := time.After(dur)
	edges := 0
	level := pgpio.Low
	t0 := time.Now()
loop:
	for {
		select {
		case now := <-tick.C:
			// Catch up on ticks the scheduler dropped: 1,000 a second.
			for due := int(now.Sub(t0) / time.Millisecond); edges < due; edges++ {
				level = !level
				sim.Drive(17, level)
			}
		case <-end:
			break loop
		}
	}
	b.StopTimer()
	c1 := cpu()
	// Let the last edges through before counting.
	deadline := timeout()
	for len(bus.ch) > 0 {
		select {
		case <-deadline:
			b.Fatal("publishes stuck")
		default:
			runtime.Gosched()
		}
	}
	close(quit)
	published := <-drain
	g1, h1 := runtime.NumGoroutine(), heap()
	b.ReportMetric(float64(edges)/dur.Seconds(), "edges/s")
	b.ReportMetric(float64(published), "published")
	b.ReportMetric(float64(g0), "goroutines-before")
	b.ReportMetric(float64(g1), "goroutines-after")
	b.ReportMetric(float64(h0)/1024, "heap-KiB-before")
	b.ReportMetric(float64(h1)/1024, "heap-KiB-after")
	b.ReportMetric(100*(c1-c0).Seconds()/dur.Seconds(), "cpu-%")
	if g1 > g0+2 {
		b.Errorf("goroutines grew from %d to %d", g0, g1)
	}
}
