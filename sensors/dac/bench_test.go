package dac

import (
	"testing"

	"github.com/rollcall/rollcall/sensors/iio"
)

// BenchmarkIIOWrite is the cost of one Write through sysfs-like files: a
// write of out_voltage0_raw and a read of out_voltage0_powerdown, each
// an open, a transfer and a close. On a Pi the kernel's I2C transfer
// (about 0.3 ms at 100 kHz) comes on top.
func BenchmarkIIOWrite(b *testing.B) {
	d, err := NewIIO(iio.Dir(sysfsCopy(b)), "mcp4725", 0)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		if err := d.Write(i & 4095); err != nil {
			b.Fatal(err)
		}
	}
}
