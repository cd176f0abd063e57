package dac_test

import (
	"errors"
	"fmt"

	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/rollcall/rollcall/sensors/dac"
)

func ExampleRaw() {
	c, _ := dac.LookupChip("mcp4725")
	const vdd = 3.3 // measured on the chip's VDD pin
	raw, err := dac.Raw(1.2, c.Bits, vdd)
	fmt.Println(raw, err)
	fmt.Printf("%.4f V\n", dac.Volts(raw, c.Bits, vdd))
	_, err = dac.Raw(4, c.Bits, vdd)
	fmt.Println(errors.Is(err, dac.ErrRange))
	// Output:
	// 1489 <nil>
	// 1.1996 V
	// true
}

func ExampleSim_OnWrite() {
	out, _ := dac.Open(dac.Options{Chip: "sim"})
	sim := out.(*dac.Sim)
	// A simulated input wired to the output sees every code written.
	sim.OnWrite(func(raw int) { fmt.Printf("input now %.2f V\n", dac.Volts(raw, 12, 3.3)) })
	_ = out.Write(2048)
	_ = out.Write(4095)
	fmt.Println(sim.Value(), sim.Writes())
	// Output:
	// input now 1.65 V
	// input now 3.30 V
	// 4095 2
}

func ExampleMCP4725_Write() {
	// The fast mode write replayed: two bytes, the top nibble first.
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{{Addr: 0x60, W: []byte{0x08, 0x00}}}}
	d := dac.NewMCP4725(bus, 0x60)
	fmt.Println(d.Write(2048), bus.Close())
	// Output: <nil> <nil>
}
