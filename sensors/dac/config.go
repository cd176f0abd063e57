package dac

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/rollcall/rollcall/services"
)

// Config is the dac service's configuration: the "dac" block of the
// agent's configuration file and the payload of <host>/dac/setup.
type Config struct {
	// Chips is kept as it is when a setup leaves it out; "chips": []
	// removes them all.
	Chips   []ChipConfig   `json:"chips"`
	Outputs []OutputConfig `json:"outputs"`
	// FailsafeAfter drives every output to its failsafe value once the
	// broker has been unreachable this long, counted from start as well as
	// from a lost connection; 0 never does.
	FailsafeAfter services.Duration `json:"failsafe_after,omitempty"`
}

// ChipConfig is one DAC chip. bus and addr apply to the I2C chips
// (mcp4725, pcf8591), device to iio, neither to sim.
type ChipConfig struct {
	Name string `json:"name" rollcall:"required"`
	// Chip is the model: mcp4725, pcf8591, iio or sim.
	Chip string `json:"chip" rollcall:"required"`
	// Bus is the I2C bus by the name claims use; "" is i2c1.
	Bus string `json:"bus,omitempty"`
	// Addr is the I2C address; 0 is the chip's first (0x60, 0x48).
	Addr int `json:"addr,omitempty"`
	// VRef is full scale in volts: the mcp4725's supply, the pcf8591's
	// VREF pin. 0 is 3.3, or for iio what the driver reports.
	VRef float64 `json:"vref,omitempty"`
	// Device is the iio device: iio:deviceN or the driver's name; "" is
	// mcp4725.
	Device string `json:"device,omitempty"`
}

// OutputConfig is one analog output. Its value is in Unit: value =
// volts × scale + offset, so a set, init and failsafe are all in Unit.
type OutputConfig struct {
	Name string `json:"name" rollcall:"required"`
	// Chip names the chip in Chips; "" is the first.
	Chip string `json:"chip,omitempty"`
	// Channel is the chip's output, from 0.
	Channel int `json:"channel,omitempty"`
	// Init is the value set when the output is configured, unless a
	// restart restores the value it had.
	Init float64 `json:"init"`
	// Failsafe is the value taken on shutdown, on estop and after
	// FailsafeAfter without a broker.
	Failsafe float64 `json:"failsafe"`
	// Scale and Offset turn volts into the value; a scale of 0 is 1.
	Scale  float64 `json:"scale,omitempty"`
	Offset float64 `json:"offset,omitempty"`
	// Unit is the value's unit; "" is V. It must be given with Scale or
	// Offset.
	Unit string `json:"unit,omitempty"`
	// Follow is a topic whose values drive the output, as a set would:
	// an ain reading (<host>/ain/input/<name>, or its /value) or a gpio
	// PWM duty, through Scale and Offset. Values beyond the output's range
	// are clamped to it.
	Follow string `json:"follow,omitempty"`
}

// Limits of a setup.
const (
	MaxChips         = 16
	MaxOutputs       = 16
	MaxFailsafeAfter = 24 * time.Hour
	maxVRef          = 5.5 // V: both chips' supply limit
	defaultVRef      = 3.3 // V: the Pi's rail
	defaultUnit      = "V"
)

// pcf8591Share is the share name under which the dac and ain services
// hold the two halves of one PCF8591.
const pcf8591Share = "pcf8591"

// FailsafeDelay implements services.FailsafeDelayer.
func (c Config) FailsafeDelay() time.Duration { return c.FailsafeAfter.D() }

func (o OutputConfig) scale() float64 {
	if o.Scale == 0 {
		return 1
	}
	return o.Scale
}

func (o OutputConfig) unit() string {
	if o.Unit == "" {
		return defaultUnit
	}
	return o.Unit
}

// volts is the voltage for value v.
func (o OutputConfig) volts(v float64) float64 { return (v - o.Offset) / o.scale() }

// value is the value for volts.
func (o OutputConfig) value(volts float64) float64 { return volts*o.scale() + o.Offset }

// chipOf returns the chip an output is on and its index, or -1.
func (c Config) chipOf(o OutputConfig) (ChipConfig, int) {
	return services.Find(c.Chips, o.Chip, ChipConfig.name)
}

func (c ChipConfig) model() (Chip, bool) {
	m, ok := LookupChip(c.Chip)
	return m, ok
}

func (c ChipConfig) bus() string {
	if m, _ := c.model(); c.Bus == "" && m.Bus == "i2c" {
		return "i2c1"
	}
	return c.Bus
}

func (c ChipConfig) addr() int {
	if m, _ := c.model(); c.Addr == 0 && len(m.Addrs) > 0 {
		return int(m.Addrs[0])
	}
	return c.Addr
}

// vref is full scale as configured; an iio chip's driver may know
// better (see Service).
func (c ChipConfig) vref() float64 {
	if c.VRef == 0 {
		return defaultVRef
	}
	return c.VRef
}

func (c ChipConfig) device() string {
	if c.Device == "" {
		return "mcp4725"
	}
	return c.Device
}

// Claims implements services.Setup: the I2C address of every I2C chip
// and the iio devices, at the chip's field. A pcf8591's address is
// shared with the ain service, which may read the chip's inputs when its
// chip says dac: true.
func (c Config) Claims() []services.Claim {
	var cl []services.Claim
	for i, ch := range c.Chips {
		m, ok := ch.model()
		if !ok {
			continue
		}
		field := fmt.Sprintf("chips[%d]", i)
		switch {
		case ch.Chip == "pcf8591":
			cl = append(cl, services.SharedI2CClaim(field+".addr", ch.bus(), ch.addr(), pcf8591Share))
		case m.Bus == "i2c":
			cl = append(cl, services.I2CClaim(field+".addr", ch.bus(), ch.addr()))
		case m.Bus == "iio":
			cl = append(cl, services.IIOClaim(field+".device", ch.device()))
		}
	}
	return cl
}

// merge returns cur with patch's chips and outputs merged by name, and
// failsafe_after when the payload has it.
func merge(cur, patch Config, present map[string]bool) Config {
	out := Config{
		Chips:         services.MergeByName(cur.Chips, patch.Chips, ChipConfig.name),
		Outputs:       services.MergeByName(cur.Outputs, patch.Outputs, OutputConfig.name),
		FailsafeAfter: cur.FailsafeAfter,
	}
	if present["failsafe_after"] {
		out.FailsafeAfter = patch.FailsafeAfter
	}
	return out
}

func (c ChipConfig) name() string   { return c.Name }
func (o OutputConfig) name() string { return o.Name }

var i2cBus = regexp.MustCompile(`^i2c([0-9]{1,2})$`)

// Check implements services.Setup: chip models and what each takes,
// every output against its chip, its init and failsafe values within the
// chip's range, scale, offset and unit, the topic it follows, unique
// names. Addresses held by others are the runtime's to check.
func (c Config) Check(ck services.Checker) services.Errors {
	var errs services.Errors
	add := func(code, field, format string, a ...any) {
		errs = append(errs, services.Errorf(code, field, format, a...))
	}
	if c.FailsafeAfter < 0 || c.FailsafeAfter.D() > MaxFailsafeAfter {
		add(services.CodeInvalid, "failsafe_after", "must be between 0 (never) and %s", MaxFailsafeAfter)
	}
	if len(c.Chips) > MaxChips {
		add(services.CodeInvalid, "chips", "%d chips; at most %d", len(c.Chips), MaxChips)
		return errs
	}
	if len(c.Outputs) > MaxOutputs {
		add(services.CodeInvalid, "outputs", "%d outputs; at most %d", len(c.Outputs), MaxOutputs)
		return errs
	}
	chipNames := services.NewNames("chip")
	for i, ch := range c.Chips {
		f := fmt.Sprintf("chips[%d]", i)
		errs = append(errs, chipNames.Check(f, ch.Name)...)
		errs = append(errs, checkChip(f, ch)...)
	}
	names := services.NewNames("")
	driven := map[[2]any]string{} // chip name, channel -> field
	for i, o := range c.Outputs {
		f := fmt.Sprintf("outputs[%d]", i)
		errs = append(errs, names.Check(f, o.Name)...)
		cc, idx := c.chipOf(o)
		switch {
		case idx < 0 && o.Chip == "":
			add(services.CodeInvalid, f+".chip", "no chips configured: add one under chips (mcp4725, pcf8591, iio or sim)")
		case idx < 0:
			add(services.CodeInvalid, f+".chip", "no chip named %q under chips", services.Truncate(o.Chip, 64))
		default:
			m, ok := cc.model()
			if ok && (o.Channel < 0 || o.Channel >= m.Outputs) {
				add(services.CodeInvalid, f+".channel", "channel %d: the %s has %d output(s), from 0", o.Channel, cc.Chip, m.Outputs)
			} else if prev, dup := driven[[2]any{cc.Name, o.Channel}]; dup {
				add(services.CodeConflict, f+".channel", "channel %d of chip %s is already driven by %s", o.Channel, cc.Name, prev)
			} else {
				driven[[2]any{cc.Name, o.Channel}] = f
			}
			if ok {
				for _, v := range []struct {
					field string
					value float64
				}{{"init", o.Init}, {"failsafe", o.Failsafe}} {
					if msg := checkValue(o, cc, m, v.value); msg != "" {
						add(services.CodeInvalid, f+"."+v.field, "%s", msg)
					}
				}
			}
		}
		errs = append(errs, services.CheckScale(f, o.Scale, o.Offset, o.Unit)...)
		if o.Follow != "" {
			if msg := ck.CheckFollow(o.Follow); msg != "" {
				add(services.CodeInvalid, f+".follow", "%s", msg)
			}
		}
	}
	return errs
}

// checkValue returns why value cannot be set on o, or "": its voltage
// must lie within 0 and the chip's reference.
func checkValue(o OutputConfig, cc ChipConfig, m Chip, value float64) string {
	if _, err := Raw(o.volts(value), m.Bits, cc.vref()); err != nil {
		return rangeMessage(o, cc.vref(), value)
	}
	return ""
}

// rangeMessage says what values o takes with reference vref.
func rangeMessage(o OutputConfig, vref, value float64) string {
	lo, hi := o.value(0), o.value(vref)
	if lo > hi {
		lo, hi = hi, lo
	}
	if o.unit() == defaultUnit && o.scale() == 1 && o.Offset == 0 {
		return fmt.Sprintf("%s V is outside 0–%s V, the chip's reference", fmtFloat(value), fmtFloat(vref))
	}
	return fmt.Sprintf("%s %s (%s V) is outside %s–%s %s, 0–%s V at the chip", fmtFloat(value), o.unit(), fmtFloat(o.volts(value)), fmtFloat(lo), fmtFloat(hi), o.unit(), fmtFloat(vref))
}

func checkChip(f string, ch ChipConfig) services.Errors {
	var errs services.Errors
	add := func(field, format string, a ...any) {
		errs = append(errs, services.Errorf(services.CodeInvalid, f+"."+field, format, a...))
	}
	m, ok := ch.model()
	if !ok {
		add("chip", "unknown chip %q (want mcp4725, pcf8591, iio or sim)", services.Truncate(ch.Chip, 40))
		return errs
	}
	switch m.Bus {
	case "i2c":
		if !i2cBus.MatchString(ch.bus()) {
			add("bus", "%q is not an I2C bus (i2c1 is the header's, pins 3 and 5)", services.Truncate(ch.Bus, 40))
		}
		if ch.Addr < 0 || ch.Addr > 0x7f || !m.HasAddr(uint16(ch.addr())) {
			add("addr", "%#02x: the %s answers at %#02x–%#02x only", ch.addr(), ch.Chip, m.Addrs[0], m.Addrs[len(m.Addrs)-1])
		}
		if ch.Device != "" {
			add("device", "device is for iio chips")
		}
	default:
		if ch.Bus != "" {
			add("bus", "bus is for I2C chips")
		}
		if ch.Addr != 0 {
			add("addr", "addr is for I2C chips")
		}
		if m.Bus == "iio" && ch.Device != "" && !services.ValidTopicName(ch.Device) {
			add("device", "%q: iio:deviceN or the driver's name (mcp4725)", services.Truncate(ch.Device, 40))
		}
		if m.Bus == "sim" && ch.Device != "" {
			add("device", "device is for iio chips")
		}
	}
	if !(ch.VRef >= 0 && ch.VRef <= maxVRef) {
		add("vref", "%g V: full scale must be above 0 and at most %g V; 0 is %g V", ch.VRef, maxVRef, defaultVRef)
	}
	return errs
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }
