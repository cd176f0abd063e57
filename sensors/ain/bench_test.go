package ain

import (
	"testing"
	"time"
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
