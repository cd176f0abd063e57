package ain

import (
	"context"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
)

// BenchmarkIIOConvert measures the sysfs side of a kernel-driver
// conversion: opening and reading the _raw and _scale files (on a Pi the
// driver's own conversion time comes on top).
func BenchmarkIIOConvert(b *testing.B) {
	d, err := NewIIO(testSysfs, "mcp3008")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := d.Convert(Channel{Input: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSimConvert measures one simulated conversion.
func BenchmarkSimConvert(b *testing.B) {
	s := NewSim(1, func() time.Time { return simEpoch })
	for b.Loop() {
		if _, err := s.Convert(Channel{Input: 3}); err != nil {
			b.Fatal(err)
		}
	}
}

// nopBus is a bus that drops what it is given: BenchmarkReading measures
// the service, not a broker.
type nopBus struct{}

func (nopBus) Publish(string, byte, bool, []byte) error { return nil }
func (nopBus) Subscribe(string, services.Handler) error { return nil }
func (nopBus) Changed()                                 {}

// BenchmarkReading measures what one read of a channel costs the
// service, conversion excepted: the scale, the deadband, and, when it is
// published, the JSON and plain payloads handed to the outbox. At 1 kHz
// this is paid a thousand times a second.
func BenchmarkReading(b *testing.B) {
	for _, tc := range []struct {
		name     string
		deadband float64
	}{{"deadband=off", 0}, {"deadband=50mV", 0.05}} {
		b.Run(tc.name, func(b *testing.B) {
			svc, err := New(Config{Channels: []ChannelConfig{{Name: "fast", Channel: 0, Deadband: tc.deadband}}},
				ServiceOptions{Env: services.Env{Host: "bench", Sim: true}})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- svc.Run(ctx, nopBus{}) }()
			<-svc.Serving()
			b.Cleanup(func() { cancel(); <-done })
			var sc *scanner
			svc.mu.Lock()
			sc = svc.scans["fast"]
			svc.mu.Unlock()
			now := time.Now()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// A slow ramp: 1 mV a read, so the deadband passes one in 50.
				s := Sample{Raw: int64(i % 4096), Volts: float64(i%3300) / 1000}
				sc.read(s, now)
				i++
			}
		})
	}
}
