package ain

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"time"

	"github.com/rollcall/rollcall/services"
)

// Config is the ain service's configuration: the "ain" block of the
// agent's configuration file and the payload of <host>/ain/setup. Chips
// are the converters the host has; channels are what is read from them.
type Config struct {
	// Chips is kept as it is when a setup leaves it out, so that a setup
	// of channels alone works on a host whose chips are in its
	// configuration file; "chips": [] removes them all.
	Chips    []ChipConfig    `json:"chips"`
	Channels []ChannelConfig `json:"channels"`
}

// ChipConfig is one converter. Which fields apply depends on the chip:
// bus and addr for the I2C chips (ads1115, ads1015, pcf8591), bus, cs
// and speed_hz for the mcp3008, device for iio, none for sim.
type ChipConfig struct {
	Name string `json:"name" rollcall:"required"`
	// Chip is the model: mcp3008, ads1115, ads1015, pcf8591, iio or sim.
	Chip string `json:"chip" rollcall:"required"`
	// Bus is the bus by the name claims use: i2c1 (default for I2C
	// chips), spi0 (default for the mcp3008).
	Bus string `json:"bus,omitempty"`
	// Addr is the I2C address; 0 is 0x48.
	Addr int `json:"addr,omitempty"`
	// CS is the SPI chip select: 0 is CE0 (GPIO 8), 1 is CE1 (GPIO 7).
	CS int `json:"cs,omitempty"`
	// VRef is the reference voltage of an mcp3008 or pcf8591, or of the
	// mcp320x device of an iio chip whose overlay declares none; 0 is 3.3.
	VRef float64 `json:"vref,omitempty"`
	// SpeedHz is the mcp3008's SPI clock; 0 is 1 MHz.
	SpeedHz int64 `json:"speed_hz,omitempty"`
	// Device is the iio device: iio:deviceN or its driver's name
	// (mcp3008, ads1015).
	Device string `json:"device,omitempty"`
	// DAC says that the dac service drives this pcf8591's analog output:
	// conversions then keep the output enabled, and the chip's address is
	// shared with the dac service instead of held alone.
	DAC bool `json:"dac,omitempty"`
}

// ChannelConfig is one analog input, read every Interval and published
// when it moved by Deadband or more.
type ChannelConfig struct {
	Name string `json:"name" rollcall:"required"`
	// Chip names the chip in Chips; "" is the first.
	Chip string `json:"chip,omitempty"`
	// Channel is the chip's input (0–7 on an mcp3008, 0–3 on the others;
	// N of in_voltageN_raw on iio); with Neg, the positive side of a
	// differential pair.
	Channel int `json:"channel" rollcall:"required"`
	// Neg makes the channel differential: Channel − Neg, where the chip
	// has that pair.
	Neg *int `json:"neg,omitempty"`
	// Range is the full-scale range in volts of an ads1115/ads1015 (its
	// PGA: 6.144, 4.096, 2.048, 1.024, 0.512, 0.256); 0 is 4.096.
	Range float64 `json:"range,omitempty"`
	// Rate is the data rate in samples per second of an ads1115/ads1015;
	// 0 is the chip's default (128, 1600).
	Rate int `json:"rate,omitempty"`
	// Interval is how often the channel is read; 0 is DefaultInterval.
	Interval services.Duration `json:"interval,omitempty"`
	// Deadband is how far, in Unit, the value must move from the last one
	// published to be published again; 0 publishes every reading.
	Deadband float64 `json:"deadband,omitempty"`
	// Scale and Offset turn volts into the value: value = volts × scale +
	// offset. A scale of 0 is 1.
	Scale  float64 `json:"scale,omitempty"`
	Offset float64 `json:"offset,omitempty"`
	// Unit is the value's unit; "" is V. It must be given when Scale or
	// Offset is.
	Unit string `json:"unit,omitempty"`
}

// Limits of a setup.
const (
	DefaultInterval = time.Second
	// MinInterval allows a 1 kHz scan of one channel.
	MinInterval = time.Millisecond
	MaxInterval = 24 * time.Hour
	MaxChips    = 16
	MaxChannels = 64
	maxVRef     = 5.5   // V: the mcp3008's and pcf8591's VDD limit
	maxDeadband = 1e9   // in unit
	defaultUnit = "V"   // what a reading is in without scale and offset
	defaultAddr = 0x48  // where ADS1x15 and PCF8591 boards are strapped
	mcpMaxHz    = 3.6e6 // the mcp3008's top clock, at 5 V
)

// pcf8591Share is the share name under which the ain and dac services
// hold the two halves of one PCF8591.
const pcf8591Share = ChipPCF8591

// interval is the channel's scan interval, its default filled in.
func (c ChannelConfig) interval() time.Duration {
	if c.Interval == 0 {
		return DefaultInterval
	}
	return c.Interval.D()
}

func (c ChannelConfig) scale() float64 {
	if c.Scale == 0 {
		return 1
	}
	return c.Scale
}

func (c ChannelConfig) unit() string {
	if c.Unit == "" {
		return defaultUnit
	}
	return c.Unit
}

// channel is the driver's Channel for c.
func (c ChannelConfig) channel() Channel {
	ch := Channel{Input: c.Channel, Range: c.Range, Rate: c.Rate}
	if c.Neg != nil {
		ch.Diff, ch.Neg = true, *c.Neg
	}
	return ch
}

// equal reports whether two channels read the same way.
func (c ChannelConfig) equal(o ChannelConfig) bool { return reflect.DeepEqual(c, o) }

// chipOf returns the chip a channel reads and its index, or -1.
func (c Config) chipOf(ch ChannelConfig) (ChipConfig, int) {
	return services.Find(c.Chips, ch.Chip, ChipConfig.name)
}

// bus is the chip's bus with its default filled in, "" for iio and sim.
func (c ChipConfig) bus() string {
	model, _ := LookupChip(c.Chip)
	switch {
	case c.Bus != "":
		return c.Bus
	case model.Bus == "i2c":
		return "i2c1"
	case model.Bus == "spi":
		return "spi0"
	}
	return ""
}

func (c ChipConfig) addr() int {
	if c.Addr == 0 {
		return defaultAddr
	}
	return c.Addr
}

func (c ChipConfig) vref() float64 {
	if c.VRef == 0 {
		return defaultVRef
	}
	return c.VRef
}

// Claims implements services.Setup: the I2C address or SPI chip select of
// every chip on a bus, and the iio devices, each at its chip's field. A
// pcf8591 whose analog output the dac service drives (dac: true) shares
// its address with the dac service.
func (c Config) Claims() []services.Claim {
	var cl []services.Claim
	for i, ch := range c.Chips {
		model, ok := LookupChip(ch.Chip)
		if !ok {
			continue
		}
		field := fmt.Sprintf("chips[%d]", i)
		switch model.Bus {
		case "i2c":
			if ch.Chip == ChipPCF8591 && ch.DAC {
				cl = append(cl, services.SharedI2CClaim(field+".addr", ch.bus(), ch.addr(), pcf8591Share))
			} else {
				cl = append(cl, services.I2CClaim(field+".addr", ch.bus(), ch.addr()))
			}
		case "spi":
			cl = append(cl, services.SPIClaim(field+".cs", ch.bus(), ch.CS))
		case "iio":
			if ch.Device != "" {
				cl = append(cl, services.IIOClaim(field+".device", ch.Device))
			}
		}
	}
	return cl
}

// merge returns cur with patch's chips and channels merged by name: one
// of the same name is replaced, new names are added.
func merge(cur, patch Config) Config {
	return Config{
		Chips:    services.MergeByName(cur.Chips, patch.Chips, ChipConfig.name),
		Channels: services.MergeByName(cur.Channels, patch.Channels, ChannelConfig.name),
	}
}

func (c ChipConfig) name() string    { return c.Name }
func (c ChannelConfig) name() string { return c.Name }

var busName = regexp.MustCompile(`^(i2c|spi)([0-9]{1,2})$`)

// Check implements services.Setup: chip models and what each takes, every
// channel against its chip (inputs, pairs, ranges, rates), intervals the
// chip can keep up with, scale, offset, unit and deadband, unique names.
// Addresses held by others are the runtime's to check.
func (c Config) Check(services.Checker) services.Errors {
	var errs services.Errors
	add := func(code, field, format string, a ...any) {
		errs = append(errs, services.Errorf(code, field, format, a...))
	}
	if len(c.Chips) > MaxChips {
		add(services.CodeInvalid, "chips", "%d chips; at most %d", len(c.Chips), MaxChips)
		return errs
	}
	if len(c.Channels) > MaxChannels {
		add(services.CodeInvalid, "channels", "%d channels; at most %d", len(c.Channels), MaxChannels)
		return errs
	}
	chipNames := services.NewNames("chip")
	for i, ch := range c.Chips {
		f := fmt.Sprintf("chips[%d]", i)
		errs = append(errs, chipNames.Check(f, ch.Name)...)
		errs = append(errs, checkChip(f, ch)...)
	}
	names := services.NewNames("")
	for i, ch := range c.Channels {
		f := fmt.Sprintf("channels[%d]", i)
		errs = append(errs, names.Check(f, ch.Name)...)
		errs = append(errs, c.checkChannel(f, ch)...)
	}
	return errs
}

// checkChip checks one chip's fields against its model.
func checkChip(f string, ch ChipConfig) services.Errors {
	var errs services.Errors
	add := func(field, format string, a ...any) {
		errs = append(errs, services.Errorf(services.CodeInvalid, f+"."+field, format, a...))
	}
	model, ok := LookupChip(ch.Chip)
	if !ok || ch.Chip != model.Name {
		add("chip", "unknown chip %q (want mcp3008, ads1115, ads1015, pcf8591, iio or sim)", services.Truncate(ch.Chip, 40))
		return errs
	}
	want := func(field string, set bool, why string) {
		if set {
			add(field, "%s", why)
		}
	}
	switch model.Bus {
	case "i2c":
		if m := busName.FindStringSubmatch(ch.bus()); m == nil || m[1] != "i2c" {
			add("bus", "%q is not an I2C bus (i2c1 is the header's, pins 3 and 5)", services.Truncate(ch.Bus, 40))
		}
		if ch.Addr < 0 || ch.Addr > 0x7f || !model.hasAddr(uint16(ch.addr())) {
			add("addr", "%s: the %s answers at %s only", hexAddr(ch.addr()), ch.Chip, addrList(model.Addrs))
		}
		want("cs", ch.CS != 0, "cs is for SPI chips; the "+ch.Chip+" is on I2C")
		want("speed_hz", ch.SpeedHz != 0, "speed_hz is the mcp3008's SPI clock")
		want("device", ch.Device != "", "device is for iio chips")
	case "spi":
		m := busName.FindStringSubmatch(ch.bus())
		if m == nil || m[1] != "spi" {
			add("bus", "%q is not an SPI bus (spi0 is the header's)", services.Truncate(ch.Bus, 40))
		} else if n := maxCS(m[2]); ch.CS < 0 || ch.CS > n {
			add("cs", "chip select %d: %s has chip selects 0–%d", ch.CS, ch.bus(), n)
		}
		if ch.SpeedHz < 0 || ch.SpeedHz > mcpMaxHz {
			add("speed_hz", "%d Hz: the mcp3008 takes 1 Hz to 3.6 MHz (1.35 MHz at 2.7 V); 0 is 1 MHz", ch.SpeedHz)
		}
		want("addr", ch.Addr != 0, "addr is for I2C chips; the mcp3008 is on SPI (cs)")
		want("device", ch.Device != "", "device is for iio chips")
	default: // iio, sim
		want("bus", ch.Bus != "", "bus is for I2C and SPI chips")
		want("addr", ch.Addr != 0, "addr is for I2C chips")
		want("cs", ch.CS != 0, "cs is for SPI chips")
		want("speed_hz", ch.SpeedHz != 0, "speed_hz is the mcp3008's SPI clock")
		if model.Bus == "iio" && !services.ValidTopicName(ch.Device) {
			add("device", "an iio chip needs its device: iio:deviceN or the driver's name (mcp3008, ads1015)")
		}
		want("device", model.Bus == "sim" && ch.Device != "", "device is for iio chips")
	}
	switch ch.Chip {
	case ChipMCP3008, ChipPCF8591, ChipIIO:
		if ch.VRef < 0 || ch.VRef > maxVRef || math.IsNaN(ch.VRef) {
			add("vref", "%g V: the reference must be above 0 and at most %g V; 0 is %g V", ch.VRef, maxVRef, defaultVRef)
		}
	default:
		want("vref", ch.VRef != 0, "the "+ch.Chip+" has no reference input: choose a channel's range instead")
	}
	want("dac", ch.DAC && ch.Chip != ChipPCF8591, "dac is for a pcf8591, whose analog output the dac service drives")
	return errs
}

// maxCS is the highest chip select of SPI bus n on a Pi: spi0 has CE0
// and CE1, spi1 three, the others (Pi 4 overlays) up to two.
func maxCS(n string) int {
	switch n {
	case "1":
		return 2
	}
	return 1
}

// checkChannel checks one channel against its chip.
func (c Config) checkChannel(f string, ch ChannelConfig) services.Errors {
	var errs services.Errors
	add := func(field, format string, a ...any) {
		errs = append(errs, services.Errorf(services.CodeInvalid, join(f, field), format, a...))
	}
	cc, idx := c.chipOf(ch)
	switch {
	case idx < 0 && ch.Chip == "":
		add("chip", "no chips configured: add one under chips (mcp3008, ads1115, ads1015, pcf8591, iio or sim)")
	case idx < 0:
		add("chip", "no chip named %q under chips", services.Truncate(ch.Chip, 64))
	default:
		if model, ok := LookupChip(cc.Chip); ok && cc.Chip == model.Name {
			if err := model.Check(ch.channel()); err != nil {
				field, msg := "", err.Error()
				if fe, ok := err.(*FieldError); ok {
					field, msg = fe.Field, fe.Msg
				}
				if field == "input" {
					field = "channel"
				}
				add(field, "%s (chip %s is a %s)", msg, cc.Name, cc.Chip)
			} else if min := conversionTime(model, ch.channel()); ch.Interval != 0 && ch.Interval.D() < min {
				add("interval", "%s: at %d SPS one conversion takes %s; the interval must be at least %s", ch.Interval, model.WithDefaults(ch.channel()).Rate, min, min)
			}
		}
	}
	if ch.Interval != 0 && (ch.Interval.D() < MinInterval || ch.Interval.D() > MaxInterval) {
		add("interval", "%s: the interval must be between %s and %s; 0 is %s", ch.Interval, MinInterval, MaxInterval, DefaultInterval)
	}
	if !(ch.Deadband >= 0 && ch.Deadband <= maxDeadband) {
		add("deadband", "%g: the deadband must be between 0 (publish every reading) and %g", ch.Deadband, maxDeadband)
	}
	return append(errs, services.CheckScale(f, ch.Scale, ch.Offset, ch.Unit)...)
}

// conversionTime is how long the chip takes to convert ch, rounded up to
// a millisecond: one period plus the 10% the ADS1x15 datasheets allow, for
// the chips with a data rate; 0 for the others.
func conversionTime(model Chip, ch Channel) time.Duration {
	ch = model.WithDefaults(ch)
	if ch.Rate == 0 {
		return 0
	}
	period := time.Second / time.Duration(ch.Rate)
	return (period + period/10 + time.Millisecond - 1).Truncate(time.Millisecond)
}

func join(path, field string) string {
	if field == "" {
		return path
	}
	return path + "." + field
}

func hexAddr(a int) string { return "0x" + strconv.FormatInt(int64(a), 16) }
