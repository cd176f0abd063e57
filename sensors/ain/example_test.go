package ain_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/rollcall/rollcall/sensors/ain"
	"github.com/rollcall/rollcall/sensors/iio"
)

// A setup is checked against the chip before any bus is opened; the
// error names the field a setup result reports.
func ExampleChip_Check() {
	c, _ := ain.LookupChip("ads1115")
	err := c.Check(ain.Channel{Input: 0, Diff: true, Neg: 2})
	var fe *ain.FieldError
	if errors.As(err, &fe) {
		fmt.Println(fe.Field)
	}
	fmt.Println(err)
	fmt.Println(c.Check(ain.Channel{Input: 2, Diff: true, Neg: 3, Range: 0.256, Rate: 860}))
	// Output:
	// neg
	// ads1115: neg: 0-2 is not a differential pair of the ads1115 (pairs: 0-1, 0-3, 1-3, 2-3)
	// <nil>
}

// A test pins a simulated input to a voltage; it comes back quantized to
// 12 bits of 3.3 V.
func ExampleSim_Pin() {
	s := ain.NewSim(1, func() time.Time { return time.Unix(1_750_000_000, 0) })
	s.Pin(2, 1.25)
	smp, _ := s.Convert(ain.Channel{Input: 2})
	fmt.Printf("%d %.4f\n", smp.Raw, smp.Volts)
	// Output: 1552 1.2504
}

// Through the kernel's driver, here the sysfs of an MCP3008 under
// dtoverlay=mcp3008 kept in testdata.
func ExampleOpen_iio() {
	c, err := ain.Open(ain.Options{Chip: "iio", Device: "mcp3008", Sysfs: iio.Dir("testdata/sys")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	smp, err := c.Convert(ain.Channel{Input: 1})
	fmt.Printf("%d %.3f V %v\n", smp.Raw, smp.Volts, err)
	// Output: 512 1.650 V <nil>
}
