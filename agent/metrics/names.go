package metrics

import (
	"encoding/json"
	"math"
	"strings"

	"github.com/rollcall/rollcall/services"
)

// A unit says how values in one of the units services describe
// themselves with become values in Prometheus's base unit, which names
// the metric: base = value*scale + offset.
type unit struct {
	suffix        string
	scale, offset float64
}

// units maps the units of services' descriptions to base units. Percent
// becomes a ratio from 0 to 1, as Prometheus's naming guide asks, so that
// a relative humidity and a PWM duty compare with other ratios (and
// nobody has to guess whether 0.5 means half or half a percent).
var units = map[string]unit{
	"V":   {"volts", 1, 0},
	"mV":  {"volts", 1e-3, 0},
	"A":   {"amperes", 1, 0},
	"mA":  {"amperes", 1e-3, 0},
	"W":   {"watts", 1, 0},
	"J":   {"joules", 1, 0},
	"Wh":  {"joules", 3600, 0},
	"kWh": {"joules", 3.6e6, 0},
	"°C":  {"celsius", 1, 0},
	"°F":  {"celsius", 5.0 / 9, -32 * 5.0 / 9},
	"K":   {"celsius", 1, -273.15},
	"%":   {"ratio", 0.01, 0},
	"%RH": {"ratio", 0.01, 0},
	"m":   {"meters", 1, 0},
	"cm":  {"meters", 1e-2, 0},
	"mm":  {"meters", 1e-3, 0},
	"m/s": {"meters_per_second", 1, 0},
	"s":   {"seconds", 1, 0},
	"ms":  {"seconds", 1e-3, 0},
	"µs":  {"seconds", 1e-6, 0},
	"Hz":  {"hertz", 1, 0},
	"kHz": {"hertz", 1e3, 0},
	"Pa":  {"pascals", 1, 0},
	"hPa": {"pascals", 100, 0},
	"kPa": {"pascals", 1e3, 0},
	"g":   {"grams", 1, 0},
	"kg":  {"grams", 1e3, 0},
	"lx":  {"lux", 1, 0},
	"lux": {"lux", 1, 0},
	"B":   {"bytes", 1, 0},
}

// Interface words that name no quantity: an ain "channel" is whatever the
// chip converts, its unit says the rest.
var noQuantity = map[string]bool{"": true, "channel": true}

// A reading is how one interface of a service shows as a gauge.
type reading struct {
	name string // rollcall_<service>_[<quantity>_]<suffix>
	help string
	unit unit
}

// readingOf names the gauge of interface it of service, generically: the
// service, the interface's own word for what it is (its mode: temperature,
// output, pwm), what its type says (a bool is a level, a pwm a duty) and
// its unit turned into the base unit's name. A unit the table does not
// know is kept, made fit for a metric name, and the value is not scaled.
func readingOf(service string, it services.Interface) reading {
	var what []string
	if !noQuantity[it.Mode] {
		what = append(what, clean(it.Mode))
	}
	u, known := units[it.Unit]
	if !known {
		u = unit{suffix: clean(it.Unit), scale: 1}
	}
	switch it.Type {
	case "bool":
		u = unit{suffix: "level", scale: 1}
	case "pwm":
		what = append(what, "duty")
	}
	parts := append([]string{"rollcall", clean(service)}, what...)
	if u.suffix != "" {
		parts = append(parts, u.suffix)
	} else if len(what) == 0 {
		parts = append(parts, "value")
	}
	quantity := strings.Join(what, " ")
	if quantity == "" {
		quantity = "value"
	}
	in := "in " + u.suffix
	switch u.suffix {
	case "":
		in = "in the unit it describes"
	case "ratio":
		in = "as a ratio (1 is 100%)"
	case "level":
		in = "as a level (1 high, 0 low)"
	}
	return reading{
		name: strings.Join(parts, "_"),
		help: "Current " + quantity + " of the " + service + " service's interfaces, " + in + ", from its description.",
		unit: u,
	}
}

// clean makes s fit for a metric name: ASCII letters, digits and
// underscores, "/" read as "per", '%' as "percent", '°' dropped.
func clean(s string) string {
	var b strings.Builder
	under := func() {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "_") {
			b.WriteByte('_')
		}
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == 'µ':
			b.WriteByte('u')
		case r == '°':
		case r == '/':
			under()
			b.WriteString("per_")
		case r == '%':
			under()
			b.WriteString("percent_")
		default:
			under()
		}
	}
	return strings.Trim(b.String(), "_")
}

// number returns v as a float, if it is a number (or a bool, as 1 or 0);
// anything else, nil included, is not shown.
func number(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case int32:
		f = float64(x)
	case uint64:
		f = float64(x)
	case uint32:
		f = float64(x)
	case uint:
		f = float64(x)
	case bool:
		if x {
			f = 1
		}
	case json.Number:
		var err error
		if f, err = x.Float64(); err != nil {
			return 0, false
		}
	case *float64:
		if x == nil {
			return 0, false
		}
		f = *x
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}
