package homeassistant

import "slices"

// A ClassTable lists the device classes of one Home Assistant platform
// that rollcall's readings map to, each with the units Home Assistant
// documents for it. A class outside the table is never sent: Home
// Assistant refuses an entity whose unit its class does not allow.
type ClassTable map[string][]string

// SensorClasses are the sensor classes readings may get (Home Assistant's
// sensor documentation, "Device class").
var SensorClasses = ClassTable{
	"temperature": {"°C", "°F", "K"},
	"humidity":    {"%"},
	"moisture":    {"%"},
	"battery":     {"%"},
	"distance":    {"km", "m", "cm", "mm", "mi", "nmi", "yd", "in"},
	"voltage":     {"V", "mV", "µV", "kV", "MV"},
	"current":     {"A", "mA", "µA"},
	"illuminance": {"lx"},
	"pressure":    {"Pa", "kPa", "hPa", "bar", "cbar", "mbar", "mmHg", "inHg", "psi"},
	"power":       {"mW", "W", "kW", "MW", "GW", "TW"},
	"frequency":   {"Hz", "kHz", "MHz", "GHz"},
}

// NumberClasses are the number classes outputs may get (Home Assistant's
// number documentation, "Device class"): fewer units than for sensors.
var NumberClasses = ClassTable{
	"temperature": {"°C", "°F", "K"},
	"humidity":    {"%"},
	"moisture":    {"%"},
	"distance":    {"km", "m", "cm", "mm", "mi", "nmi", "yd", "in"},
	"voltage":     {"V", "mV", "µV", "kV", "MV"},
	"current":     {"A", "mA"},
	"illuminance": {"lx"},
	"pressure":    {"Pa", "kPa", "hPa", "bar", "cbar", "mbar", "mmHg", "inHg", "psi"},
	"power":       {"mW", "W", "kW", "MW", "GW", "TW"},
	"frequency":   {"Hz", "kHz", "MHz", "GHz"},
}

// unitAliases spell units the way Home Assistant does, and say the class
// a spelling implies: the dht22 service publishes humidity in "%RH".
var unitAliases = map[string]struct{ unit, class string }{
	"%RH":  {"%", "humidity"},
	"degC": {"°C", ""},
	"℃":    {"°C", ""},
	"uV":   {"µV", ""},
	"μV":   {"µV", ""}, // Greek mu; Home Assistant writes the micro sign
	"uA":   {"µA", ""},
	"μA":   {"µA", ""},
}

// Classify returns the unit Home Assistant should show for a reading in
// unit, and its device class in t, or "" when none fits. The interface's
// mode names the class when it is one ("temperature", "distance") and
// allows the unit; otherwise a unit that belongs to one class only ("V",
// "°C", "m") decides. "%" alone decides nothing: humidity, moisture and
// battery all use it. A unit Home Assistant does not know is kept, with
// no class.
func Classify(mode, unit string, t ClassTable) (haUnit, class string) {
	u, implied := unit, ""
	if a, ok := unitAliases[unit]; ok {
		u, implied = a.unit, a.class
	}
	if u == "" {
		return "", ""
	}
	if slices.Contains(t[mode], u) {
		return u, mode
	}
	if implied != "" && slices.Contains(t[implied], u) {
		return u, implied
	}
	found := ""
	for c, units := range t {
		if slices.Contains(units, u) {
			if found != "" {
				return u, ""
			}
			found = c
		}
	}
	return u, found
}
