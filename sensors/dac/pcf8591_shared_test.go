package dac_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/rollcall/rollcall/sensors/ain"
	"github.com/rollcall/rollcall/sensors/dac"
	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// pcf8591 is a PCF8591 on an I2C bus, as far as its control byte goes
// (datasheet Rev. 7 §8.2, Figure 4): bit 6 enables the analog output,
// bits 1:0 pick the input (single-ended here); a byte after the control
// byte goes to the DAC (Figure 15); each byte read is the previous
// conversion and starts the next (§8.4).
type pcf8591 struct {
	mu      sync.Mutex
	control byte
	dac     byte
	inputs  [4]byte
	last    byte
	// disabled counts the control bytes that switched the analog output
	// off after the DAC had been written: AOUT dropping to high impedance
	// under whatever it drives.
	disabled int
	written  bool
}

func (f *pcf8591) String() string                  { return "I2C1" }
func (f *pcf8591) SetSpeed(physic.Frequency) error { return nil }

func (f *pcf8591) Tx(addr uint16, w, r []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if addr != 0x48 {
		return fmt.Errorf("sysfs-i2c: remote I/O error")
	}
	if len(w) > 0 {
		f.control = w[0]
		if f.control&0x40 == 0 && f.written {
			f.disabled++
		}
		if len(w) > 1 {
			f.dac, f.written = w[len(w)-1], true
		}
	}
	for i := range r {
		r[i], f.last = f.last, f.inputs[f.control&3]
	}
	return nil
}

func (f *pcf8591) state() (aout bool, code byte, disabled int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.control&0x40 != 0, f.dac, f.disabled
}

// run runs svc on bus until the test ends.
func run(t *testing.T, svc services.Service, bus *servicestest.Bus) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx, bus) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", svc.Name(), err)
		}
	})
	<-svc.(services.Serving).Serving()
}

// TestPCF8591BothHalves: the ain service reads a PCF8591's inputs while
// the dac service drives its output, on one host: the address is shared
// because the ain chip says dac: true, every conversion keeps the output
// enabled, and each reads the input it selected.
func TestPCF8591BothHalves(t *testing.T) {
	chip := &pcf8591{inputs: [4]byte{10, 20, 200, 40}}
	bus := servicestest.NewBus()
	clock := servicestest.NewClock()
	claims := servicestest.Claims(t, nil)
	env := services.Env{Host: "pi1", Claims: claims, Clock: clock}
	a, err := ain.New(ain.Config{}, ain.ServiceOptions{Env: env, Open: func(ain.ChipConfig) (ain.Converter, error) {
		return ain.NewPCF8591(chip, 0x48, 3.3), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dac.New(dac.Config{}, dac.ServiceOptions{Env: env, Open: func(dac.ChipConfig, int) (dac.Output, error) {
		return dac.NewPCF8591(chip, 0x48), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a, bus)
	run(t, d, bus)
	ainTopics := services.Topics{Host: "pi1", Service: "ain"}
	dacTopics := services.Topics{Host: "pi1", Service: "dac"}

	// Without dac: true, ain holds the address alone and dac is refused.
	if r := bus.Request(t, ainTopics, ainTopics.Setup(), `{"chips":[{"name":"yl40","chip":"pcf8591"}],"channels":[{"name":"light","channel":2}]}`); r.Status != "ok" {
		t.Fatalf("ain setup: %+v", r.Problems())
	}
	r := bus.Request(t, dacTopics, dacTopics.Setup(), `{"chips":[{"name":"yl40","chip":"pcf8591"}],"outputs":[{"name":"led","init":1.65}]}`)
	if !r.HasError(services.CodeConflict, "chips[0].addr") || !strings.Contains(r.Error.Message, "ain (chips[0].addr, unshared)") {
		t.Fatalf("dac beside an ain that holds the chip alone: %+v", r.Problems())
	}

	if r := bus.Request(t, ainTopics, ainTopics.Setup(), `{"chips":[{"name":"yl40","chip":"pcf8591","dac":true}],"channels":[{"name":"light","channel":2,"interval":"100ms"},{"name":"dark","channel":0,"interval":"100ms"}]}`); r.Status != "ok" {
		t.Fatalf("ain setup sharing the chip: %+v", r.Problems())
	}
	if r := bus.Request(t, dacTopics, dacTopics.Setup(), `{"chips":[{"name":"yl40","chip":"pcf8591"}],"outputs":[{"name":"led","init":1.65}]}`); r.Status != "ok" {
		t.Fatalf("dac setup sharing the chip: %+v", r.Problems())
	}
	from := bus.Mark()
	for i := range 20 {
		clock.Advance(100 * time.Millisecond)
		if i == 10 {
			if r := bus.Request(t, dacTopics, dacTopics.Set("led"), "2"); r.Status != "ok" {
				t.Fatalf("set: %+v", r.Problems())
			}
		}
	}
	if r := bus.Request(t, ainTopics, ainTopics.Setup(), ""); r.Status != "ok" { // flush
		t.Fatal(r.Problems())
	}
	if aout, code, disabled := chip.state(); !aout || code != 155 || disabled != 0 {
		t.Errorf("AOUT enabled %v at code %d, switched off %d times; want on at 155 (2 V), never off", aout, code, disabled)
	}
	// 200 and 10 of 256 at 3.3 V.
	for name, want := range map[string]string{"light": "2.578125", "dark": "0.12890625"} {
		got := bus.Published(from, "pi1/ain/input/"+name+"/value")
		if len(got) == 0 {
			t.Errorf("%s: no readings", name)
		}
		for _, m := range got {
			if m.Payload != want {
				t.Errorf("%s read %s, want %s: a conversion of another input", name, m.Payload, want)
			}
		}
	}
}
