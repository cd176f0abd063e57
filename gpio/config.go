package gpio

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rollcall/rollcall/services"
)

// Config is the GPIO service's pin configuration: the "gpio" block of the
// agent's configuration file and the payload of <host>/gpio/setup. Pins
// are grouped by kind, as in the seed.
type Config struct {
	// Driver is "periph" (real hardware) or "sim" (in-memory board); ""
	// lets the agent choose. It cannot change while the agent runs.
	Driver string      `json:"driver,omitempty"`
	Output []OutputPin `json:"output"`
	PWM    []PWMPin    `json:"pwm"`
	Input  []InputPin  `json:"input"`
	// FailsafeAfter drives every output to its failsafe level once the
	// broker has been unreachable this long, counted from start as well as
	// from a lost connection; 0 never does.
	FailsafeAfter services.Duration `json:"failsafe_after,omitempty"`
	// Wiring connects output pins to input pins of the sim driver, so that
	// driving the output changes the input. The periph driver ignores it.
	Wiring []Wire `json:"wiring,omitempty"`
}

// OutputPin is a digital output.
type OutputPin struct {
	Name string `json:"name" rollcall:"required"`
	Pin  int    `json:"pin" rollcall:"required"`
	// Init is the logical level (0 or 1) set when the pin is configured.
	Init int `json:"init"`
	// Pull is "up", "down" or "none". The character device cannot bias a
	// line requested as an output, so on periph it is recorded only.
	Pull string `json:"pull,omitempty"`
	// ActiveLow makes logical 1 drive the line low.
	ActiveLow bool `json:"active_low,omitempty"`
	// Failsafe is the logical level (0 or 1) taken on shutdown, on estop
	// and after FailsafeAfter without a broker.
	Failsafe int `json:"failsafe"`
	// Follow is a topic whose values drive the output, as a set would:
	// another host's retained input topic links that input to this
	// output, and resynchronises on every restart of either side.
	Follow string `json:"follow,omitempty"`
}

// PWMPin is a pulse-width-modulated output. Its value is a duty cycle in
// percent (0–100).
type PWMPin struct {
	Name string `json:"name" rollcall:"required"`
	Pin  int    `json:"pin" rollcall:"required"`
	// Init is the duty in percent set when the pin is configured.
	Init float64 `json:"init"`
	// Period is the PWM period in microseconds (1000 = 1 kHz); 0 means
	// DefaultPeriod. Software PWM (pins without hardware PWM) needs at
	// least MinSoftPeriod.
	Period int `json:"period,omitempty"`
	// Pol is "normal" (duty is the high time) or "inverted".
	Pol string `json:"pol,omitempty"`
	// Failsafe is the duty taken on shutdown, estop and broker loss.
	Failsafe float64 `json:"failsafe,omitempty"`
	// Follow is a topic whose values drive the duty (see OutputPin).
	Follow string `json:"follow,omitempty"`
}

// InputPin is a digital input reported on change.
type InputPin struct {
	Name string `json:"name" rollcall:"required"`
	Pin  int    `json:"pin" rollcall:"required"`
	Pull string `json:"pull,omitempty"`
	// Edge is which changes are published: "rising" (to 1), "falling"
	// (to 0) or "both" (the default).
	Edge string `json:"edge,omitempty"`
	// Debounce is how long the level must stay put before it counts.
	Debounce services.Duration `json:"debounce,omitempty"`
	// OnChange is a topic each change is also published to, not retained:
	// another host's <host>/<service>/set/<name> drives that output from
	// this input. The value is always published, retained, on
	// <host>/gpio/input/<name>.
	OnChange string `json:"on_change,omitempty"`
	// Scan, when set, also publishes the value at this interval.
	Scan      services.Duration `json:"scan,omitempty"`
	ActiveLow bool              `json:"active_low,omitempty"`
}

// Wire connects a sim output pin to a sim input pin (BCM numbers).
type Wire struct {
	From int `json:"from" rollcall:"required"`
	To   int `json:"to" rollcall:"required"`
}

// Limits of the pin model.
const (
	DefaultPeriod    = 1000      // µs, 1 kHz
	MinSoftPeriod    = 1000      // µs: software PWM is not usable faster
	MaxPeriod        = 1_000_000 // µs, 1 Hz
	MaxDebounce      = 10 * time.Second
	MinScan          = 10 * time.Millisecond
	MaxFailsafeAfter = 24 * time.Hour
	// MaxPins bounds the pins of one setup: the header has 28.
	MaxPins = services.HeaderPins
)

// hardwarePWM lists the header pins a Pi routes to its PWM block.
var hardwarePWM = map[int]bool{12: true, 13: true, 18: true, 19: true}

// HardwarePWM reports whether pin can carry hardware PWM (BCM 12, 13, 18,
// 19, with the pwm or pwm-2chan overlay).
func HardwarePWM(pin int) bool { return hardwarePWM[pin] }

// FailsafeDelay implements services.FailsafeDelayer.
func (c Config) FailsafeDelay() time.Duration { return c.FailsafeAfter.D() }

// merge returns cur with patch's pins merged by name: a pin of the same
// name is replaced (even by one of another kind), new names are added, and
// the scalar fields present in the payload override cur's.
func merge(cur, patch Config, present map[string]bool) Config {
	out := cur.clone()
	if present["driver"] {
		out.Driver = patch.Driver
	}
	if present["failsafe_after"] {
		out.FailsafeAfter = patch.FailsafeAfter
	}
	if present["wiring"] {
		out.Wiring = slices.Clone(patch.Wiring)
	}
	drop := func(name string) {
		out.Output = slices.DeleteFunc(out.Output, func(p OutputPin) bool { return p.Name == name })
		out.PWM = slices.DeleteFunc(out.PWM, func(p PWMPin) bool { return p.Name == name })
		out.Input = slices.DeleteFunc(out.Input, func(p InputPin) bool { return p.Name == name })
	}
	for _, p := range patch.Output {
		if i := slices.IndexFunc(out.Output, func(q OutputPin) bool { return q.Name == p.Name }); i >= 0 {
			out.Output[i] = p
			continue
		}
		drop(p.Name)
		out.Output = append(out.Output, p)
	}
	for _, p := range patch.PWM {
		if i := slices.IndexFunc(out.PWM, func(q PWMPin) bool { return q.Name == p.Name }); i >= 0 {
			out.PWM[i] = p
			continue
		}
		drop(p.Name)
		out.PWM = append(out.PWM, p)
	}
	for _, p := range patch.Input {
		if i := slices.IndexFunc(out.Input, func(q InputPin) bool { return q.Name == p.Name }); i >= 0 {
			out.Input[i] = p
			continue
		}
		drop(p.Name)
		out.Input = append(out.Input, p)
	}
	return out
}

func (c Config) clone() Config {
	c.Output = slices.Clone(c.Output)
	c.PWM = slices.Clone(c.PWM)
	c.Input = slices.Clone(c.Input)
	c.Wiring = slices.Clone(c.Wiring)
	return c
}

// Claims implements services.Setup: every pin, at its field.
func (c Config) Claims() []services.Claim {
	var cl []services.Claim
	for i, o := range c.Output {
		cl = append(cl, services.PinClaim(fmt.Sprintf("output[%d].pin", i), o.Pin))
	}
	for i, o := range c.PWM {
		cl = append(cl, services.PinClaim(fmt.Sprintf("pwm[%d].pin", i), o.Pin))
	}
	for i, o := range c.Input {
		cl = append(cl, services.PinClaim(fmt.Sprintf("input[%d].pin", i), o.Pin))
	}
	return cl
}

var (
	pulls = []string{"", "up", "down", "none"}
	edges = []string{"", "rising", "falling", "both"}
	pols  = []string{"", "normal", "inverted"}
)

// Check implements services.Setup: the header, every enum and range,
// unique names, and the topics inputs publish to and outputs follow. Pins
// held by others are the runtime's to check, against the host's claims.
func (c Config) Check(ck services.Checker) services.Errors {
	var errs services.Errors
	add := func(code, field, format string, a ...any) {
		errs = append(errs, services.Errorf(code, field, format, a...))
	}
	if c.Driver != "" && c.Driver != DriverPeriph && c.Driver != DriverSim {
		add(services.CodeInvalid, "driver", "unknown driver %q (want periph or sim)", c.Driver)
	}
	if c.FailsafeAfter < 0 || c.FailsafeAfter.D() > MaxFailsafeAfter {
		add(services.CodeInvalid, "failsafe_after", "must be between 0 and %s", MaxFailsafeAfter)
	}
	if n := len(c.Output) + len(c.PWM) + len(c.Input); n > MaxPins {
		add(services.CodeInvalid, "", "%d pins; the header has %d", n, MaxPins)
		return errs // and each would be reported again below
	}
	names := services.NewNames("")
	pin := func(field, name string, p int) {
		errs = append(errs, names.Check(field, name)...)
		if p < 0 || p >= services.HeaderPins {
			add(services.CodeInvalid, field+".pin", "GPIO %d is not on the header (BCM 0–27)", p)
		}
	}
	enum := func(field, v string, allowed []string) {
		if !slices.Contains(allowed, v) {
			add(services.CodeInvalid, field, "%q is not one of %s", services.Truncate(v, 40), strings.Join(allowed[1:], ", "))
		}
	}
	follow := func(field, topic string) {
		if topic == "" {
			return
		}
		if msg := ck.CheckFollow(topic); msg != "" {
			add(services.CodeInvalid, field, "%s", msg)
		}
	}
	for i, o := range c.Output {
		f := fmt.Sprintf("output[%d]", i)
		pin(f, o.Name, o.Pin)
		if o.Init != 0 && o.Init != 1 {
			add(services.CodeInvalid, f+".init", "init must be 0 or 1, not %d", o.Init)
		}
		if o.Failsafe != 0 && o.Failsafe != 1 {
			add(services.CodeInvalid, f+".failsafe", "failsafe must be 0 or 1, not %d", o.Failsafe)
		}
		enum(f+".pull", o.Pull, pulls)
		follow(f+".follow", o.Follow)
	}
	for i, o := range c.PWM {
		f := fmt.Sprintf("pwm[%d]", i)
		pin(f, o.Name, o.Pin)
		if !validDuty(o.Init) {
			add(services.CodeInvalid, f+".init", "duty must be 0–100 %%, not %v", o.Init)
		}
		if !validDuty(o.Failsafe) {
			add(services.CodeInvalid, f+".failsafe", "duty must be 0–100 %%, not %v", o.Failsafe)
		}
		if msg := checkPeriod(o.Pin, o.Period); msg != "" {
			add(services.CodeInvalid, f+".period", "%s", msg)
		}
		enum(f+".pol", o.Pol, pols)
		follow(f+".follow", o.Follow)
	}
	for i, o := range c.Input {
		f := fmt.Sprintf("input[%d]", i)
		pin(f, o.Name, o.Pin)
		enum(f+".pull", o.Pull, pulls)
		enum(f+".edge", o.Edge, edges)
		if o.Debounce < 0 || o.Debounce.D() > MaxDebounce {
			add(services.CodeInvalid, f+".debounce", "debounce must be between 0 and %s", MaxDebounce)
		}
		if o.Scan != 0 && (o.Scan.D() < MinScan || o.Scan.D() > MaxFailsafeAfter) {
			add(services.CodeInvalid, f+".scan", "scan must be 0 (off) or between %s and %s", MinScan, MaxFailsafeAfter)
		}
		if o.OnChange != "" {
			if msg := ck.CheckOnChange(o.OnChange); msg != "" {
				add(services.CodeInvalid, f+".on_change", "%s", msg)
			}
		}
	}
	if len(c.Wiring) > MaxPins {
		add(services.CodeInvalid, "wiring", "%d wires; the header has %d pins", len(c.Wiring), MaxPins)
		return errs
	}
	for i, w := range c.Wiring {
		f := fmt.Sprintf("wiring[%d]", i)
		if w.From < 0 || w.From >= services.HeaderPins {
			add(services.CodeInvalid, f+".from", "GPIO %d is not on the header (BCM 0–27)", w.From)
		}
		if w.To < 0 || w.To >= services.HeaderPins {
			add(services.CodeInvalid, f+".to", "GPIO %d is not on the header (BCM 0–27)", w.To)
		} else if w.To == w.From {
			add(services.CodeInvalid, f+".to", "GPIO %d is wired to itself; a wire joins an output to an input", w.To)
		}
	}
	return errs
}

func validDuty(d float64) bool { return d >= 0 && d <= 100 }

// checkPeriod returns why period (µs) cannot drive pin, or "".
func checkPeriod(pin, period int) string {
	if period == 0 {
		return ""
	}
	if period < 1 || period > MaxPeriod {
		return fmt.Sprintf("period must be 1–%d µs, not %d", MaxPeriod, period)
	}
	if !HardwarePWM(pin) && period < MinSoftPeriod {
		return fmt.Sprintf("GPIO %d has no hardware PWM; software PWM needs a period of at least %d µs", pin, MinSoftPeriod)
	}
	return ""
}
