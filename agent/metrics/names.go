package metrics

import (
	"encoding/json"
	"math"
	"strings"

	"github.com/rollcall/rollcall/services"
)

// A unit says how values in one of the units services describe
// themselves with become values in Prometheus's base unit, which names
// the metric: base = (value + shift) * mul / div. A division rather than
// a multiplication by 0.01 keeps 47.6 %RH at 0.476, not
// 0.47600000000000003.
type unit struct {
	suffix          string
	shift, mul, div float64
}

func (u unit) base(v float64) float64 { return (v + u.shift) * u.mul / u.div }

// units maps the units of services' descriptions to base units. Percent
// becomes a ratio from 0 to 1, as Prometheus's naming guide asks, so that
// a relative humidity and a PWM duty compare with other ratios (and
// nobody has to guess whether 0.5 means half or half a percent).
var units = map[string]unit{
	"V":   {"volts", 0, 1, 1},
	"mV":  {"volts", 0, 1, 1e3},
	"A":   {"amperes", 0, 1, 1},
	"mA":  {"amperes", 0, 1, 1e3},
	"W":   {"watts", 0, 1, 1},
	"J":   {"joules", 0, 1, 1},
	"Wh":  {"joules", 0, 3600, 1},
	"kWh": {"joules", 0, 3.6e6, 1},
	"°C":  {"celsius", 0, 1, 1},
	"°F":  {"celsius", -32, 5, 9},
	"K":   {"celsius", -273.15, 1, 1},
	"%":   {"ratio", 0, 1, 100},
	"%RH": {"ratio", 0, 1, 100},
	"m":   {"meters", 0, 1, 1},
	"cm":  {"meters", 0, 1, 100},
	"mm":  {"meters", 0, 1, 1e3},
	"m/s": {"meters_per_second", 0, 1, 1},
	"s":   {"seconds", 0, 1, 1},
	"ms":  {"seconds", 0, 1, 1e3},
	"µs":  {"seconds", 0, 1, 1e6},
	"Hz":  {"hertz", 0, 1, 1},
	"kHz": {"hertz", 0, 1e3, 1},
	"Pa":  {"pascals", 0, 1, 1},
	"hPa": {"pascals", 0, 100, 1},
	"kPa": {"pascals", 0, 1e3, 1},
	"g":   {"grams", 0, 1, 1},
	"kg":  {"grams", 0, 1e3, 1},
	"lx":  {"lux", 0, 1, 1},
	"lux": {"lux", 0, 1, 1},
	"B":   {"bytes", 0, 1, 1},
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
		u = unit{suffix: clean(it.Unit), mul: 1, div: 1}
	}
	switch it.Type {
	case "bool":
		u = unit{suffix: "level", mul: 1, div: 1}
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
