package dashboard

import "github.com/rollcall/rollcall/services"

// A Class says how the page shows or drives one interface: the widget,
// its range and step, the decimals of a reading. The page knows widgets,
// never services: a service whose description says type, unit and
// min/max gets a fitting control without a line of its own here.
type Class struct {
	// Widget is one of switch (a bool output), slider (a number or duty
	// output with a range), number (a number output without one), text
	// (an output of any other type), lamp (a bool input), gauge (a
	// reading with a range) and value (any other reading).
	Widget string `json:"widget"`
	// Label names the quantity (temperature, duty...), for people.
	Label string   `json:"label,omitempty"`
	Unit  string   `json:"unit,omitempty"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
	// Step is a slider's or number box's step.
	Step float64 `json:"step,omitempty"`
	// Decimals is how many decimals a reading is shown with.
	Decimals int `json:"decimals"`
}

// A classRule matches interfaces by direction, type, mode and unit (an
// empty field matches any) and gives their class.
type classRule struct {
	output          bool
	typ, mode, unit string
	class           Class
	// min and max are the rule's range, when hasRange: a duty is 0–100
	// whatever the description says.
	min, max float64
	hasRange bool
}

// classes is what the dashboard knows of kinds of interface, most
// specific first: the first rule that matches wins. A range the
// description gives (min, max) wins over a rule's.
var classes = []classRule{
	{output: true, typ: "bool", class: Class{Widget: "switch"}},
	{output: true, typ: "pwm", class: Class{Widget: "slider", Label: "duty", Unit: "%", Step: 1}, min: 0, max: 100, hasRange: true},
	{output: true, typ: "number", unit: "V", class: Class{Widget: "slider", Label: "voltage", Step: 0.01, Decimals: 3}},
	{output: true, typ: "number", unit: "%", class: Class{Widget: "slider", Label: "percent", Step: 1, Decimals: 1}, min: 0, max: 100, hasRange: true},
	{output: true, typ: "number", class: Class{Widget: "slider", Step: 0.01, Decimals: 2}},
	{output: true, class: Class{Widget: "text"}},
	{typ: "bool", class: Class{Widget: "lamp"}},
	{typ: "pwm", class: Class{Widget: "gauge", Label: "duty", Unit: "%", Decimals: 0}, min: 0, max: 100, hasRange: true},
	{typ: "number", unit: "°C", class: Class{Widget: "gauge", Label: "temperature", Decimals: 1}},
	{typ: "number", unit: "%RH", class: Class{Widget: "gauge", Label: "humidity", Decimals: 1}},
	{typ: "number", mode: "distance", class: Class{Widget: "gauge", Label: "distance", Decimals: 3}},
	{typ: "number", unit: "V", class: Class{Widget: "gauge", Label: "voltage", Decimals: 3}},
	{typ: "number", unit: "%", class: Class{Widget: "gauge", Label: "percent", Decimals: 1}, min: 0, max: 100, hasRange: true},
	{typ: "number", class: Class{Widget: "gauge", Decimals: 2}},
	{class: Class{Widget: "value"}},
}

// classify gives an interface its class. A slider or gauge needs a range:
// without one from the description or the rule, a slider becomes a
// number box and a gauge a plain value.
func classify(output bool, it services.Interface) Class {
	var r classRule
	for _, c := range classes {
		if c.output == output && (c.typ == "" || c.typ == it.Type) && (c.mode == "" || c.mode == it.Mode) && (c.unit == "" || c.unit == it.Unit) {
			r = c
			break
		}
	}
	c := r.class
	if it.Unit != "" {
		c.Unit = it.Unit
	}
	if r.hasRange {
		c.Min, c.Max = ptr(r.min), ptr(r.max)
	}
	if it.Min != nil {
		c.Min = ptr(*it.Min)
	}
	if it.Max != nil {
		c.Max = ptr(*it.Max)
	}
	if c.Min == nil || c.Max == nil || *c.Max <= *c.Min {
		switch c.Widget {
		case "slider":
			c.Widget = "number"
		case "gauge":
			c.Widget = "value"
		}
	}
	return c
}

func ptr(f float64) *float64 { return &f }
