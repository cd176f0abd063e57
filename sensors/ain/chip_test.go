package ain

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		chip  string
		ch    Channel
		field string // "" when valid
		msg   string // part of the message
	}{
		{name: "mcp3008 first input", chip: "mcp3008", ch: Channel{Input: 0}},
		{name: "mcp3008 last input", chip: "mcp3008", ch: Channel{Input: 7}},
		{name: "mcp3008 input past the last", chip: "mcp3008", ch: Channel{Input: 8}, field: "input", msg: "inputs 0–7"},
		{name: "negative input", chip: "ads1115", ch: Channel{Input: -1}, field: "input", msg: "negative"},
		{name: "mcp3008 pair", chip: "mcp3008", ch: Channel{Input: 7, Diff: true, Neg: 6}},
		{name: "mcp3008 pair across groups", chip: "mcp3008", ch: Channel{Input: 1, Diff: true, Neg: 2}, field: "neg", msg: "1-2 is not a differential pair"},
		{name: "pair with itself", chip: "sim", ch: Channel{Input: 2, Diff: true, Neg: 2}, field: "neg", msg: "cannot pair"},
		{name: "neg without diff", chip: "mcp3008", ch: Channel{Input: 0, Neg: 1}, field: "neg", msg: "set diff"},
		{name: "mcp3008 has no PGA", chip: "mcp3008", ch: Channel{Range: 4.096}, field: "range", msg: "no programmable gain"},
		{name: "mcp3008 has no data rate", chip: "mcp3008", ch: Channel{Rate: 128}, field: "rate", msg: "no selectable data rate"},
		{name: "ads1115 pair 2-3 at 0.256 V, 860 SPS", chip: "ads1115", ch: Channel{Input: 2, Diff: true, Neg: 3, Range: 0.256, Rate: 860}},
		{name: "ads1115 reversed pair", chip: "ads1115", ch: Channel{Input: 3, Diff: true, Neg: 0}, field: "neg", msg: "pairs: 0-1, 0-3, 1-3, 2-3"},
		{name: "ads1115 input 4", chip: "ads1115", ch: Channel{Input: 4}, field: "input", msg: "inputs 0–3"},
		{name: "ads1115 range from a config file", chip: "ads1115", ch: Channel{Range: 4.0960000001}},
		{name: "ads1115 range it lacks", chip: "ads1115", ch: Channel{Range: 3.3}, field: "range", msg: "3.3 V is not one of 6.144, 4.096"},
		{name: "negative range", chip: "ads1115", ch: Channel{Range: -4.096}, field: "range"},
		{name: "ads1115 rate of the ads1015", chip: "ads1115", ch: Channel{Rate: 1600}, field: "rate", msg: "8, 16, 32, 64, 128, 250, 475, 860"},
		{name: "ads1015 rate", chip: "ads1015", ch: Channel{Rate: 3300}},
		{name: "ads1015 rate of the ads1115", chip: "ads1015", ch: Channel{Rate: 8}, field: "rate"},
		{name: "pcf8591 pair 0-1", chip: "pcf8591", ch: Channel{Input: 0, Diff: true, Neg: 1}},
		{name: "pcf8591 pair 1-2", chip: "pcf8591", ch: Channel{Input: 1, Diff: true, Neg: 2}, field: "neg"},
		{name: "pcf8591 has no PGA", chip: "pcf8591", ch: Channel{Range: 2.048}, field: "range"},
		{name: "iio takes any input", chip: "iio", ch: Channel{Input: 42}},
		{name: "iio takes any pair", chip: "iio", ch: Channel{Input: 5, Diff: true, Neg: 9}},
		{name: "iio negative neg", chip: "iio", ch: Channel{Input: 0, Diff: true, Neg: -1}, field: "neg"},
		{name: "iio range is the overlay's", chip: "iio", ch: Channel{Range: 4.096}, field: "range"},
		{name: "sim any pair", chip: "sim", ch: Channel{Input: 7, Diff: true, Neg: 0}},
		{name: "sim input 8", chip: "sim", ch: Channel{Input: 8}, field: "input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := LookupChip(tt.chip)
			if !ok {
				t.Fatalf("no chip %q", tt.chip)
			}
			err := c.Check(tt.ch)
			if tt.field == "" {
				checkErr(t, err, "")
				return
			}
			if got := fieldOf(err); got != tt.field {
				t.Fatalf("Check(%+v) = %v, want an error on field %q", tt.ch, err, tt.field)
			}
			checkErr(t, err, tt.chip+": "+tt.field+": |"+tt.msg)
		})
	}
}

func TestLookupChip(t *testing.T) {
	tests := []struct {
		name, lookup, want string
		bus                string
		bits               int
	}{
		{name: "lower case", lookup: "mcp3008", want: "mcp3008", bus: "spi", bits: 10},
		{name: "any case", lookup: "ADS1115", want: "ads1115", bus: "i2c", bits: 16},
		{name: "ads1015", lookup: "ads1015", want: "ads1015", bus: "i2c", bits: 12},
		{name: "pcf8591", lookup: "PCF8591", want: "pcf8591", bus: "i2c", bits: 8},
		{name: "iio", lookup: "iio", want: "iio", bus: "iio"},
		{name: "sim", lookup: "sim", want: "sim", bus: "sim", bits: 12},
		{name: "unknown", lookup: "mcp3208"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := LookupChip(tt.lookup)
			if ok != (tt.want != "") || c.Name != tt.want || c.Bus != tt.bus || c.Bits != tt.bits {
				t.Errorf("LookupChip(%q) = %q on %q, %d bits, %v; want %q on %q, %d bits", tt.lookup, c.Name, c.Bus, c.Bits, ok, tt.want, tt.bus, tt.bits)
			}
		})
	}
}

func TestChipsAreCopies(t *testing.T) {
	a := Chips()
	for i := range a {
		if len(a[i].Ranges) > 0 {
			a[i].Ranges[0] = 99
		}
		if len(a[i].Pairs) > 0 {
			a[i].Pairs[0] = [2]int{9, 9}
		}
	}
	c, _ := LookupChip("ads1115")
	if c.Ranges[0] != 6.144 || c.Pairs[0] != [2]int{0, 1} {
		t.Errorf("changing what Chips returned changed the table: %v %v", c.Ranges, c.Pairs)
	}
	seen := map[string]bool{}
	for _, c := range Chips() {
		if seen[c.Name] {
			t.Errorf("chip %q listed twice", c.Name)
		}
		seen[c.Name] = true
	}
}

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		chip string
		ch   Channel
		fsr  float64
		rate int
	}{
		{name: "ads1115 defaults", chip: "ads1115", fsr: 4.096, rate: 128},
		{name: "ads1015 defaults", chip: "ads1015", fsr: 4.096, rate: 1600},
		{name: "set values stay", chip: "ads1115", ch: Channel{Range: 0.512, Rate: 8}, fsr: 0.512, rate: 8},
		{name: "mcp3008 has none", chip: "mcp3008"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := LookupChip(tt.chip)
			got := c.WithDefaults(tt.ch)
			if got.Range != tt.fsr || got.Rate != tt.rate {
				t.Errorf("WithDefaults(%+v) = %+v, want range %v, rate %d", tt.ch, got, tt.fsr, tt.rate)
			}
			if err := c.Check(got); err != nil {
				t.Errorf("defaults do not pass Check: %v", err)
			}
		})
	}
}

func TestSessionClose(t *testing.T) {
	closer := &countCloser{err: errors.New("bus busy")}
	s := session{owned: closer}
	if err := s.close(); !errors.Is(err, closer.err) {
		t.Errorf("first close = %v, want the bus's error", err)
	}
	if err := s.close(); err != nil || closer.n != 1 {
		t.Errorf("second close = %v after %d bus closes, want nil after 1", err, closer.n)
	}
	if err := s.lock(); !errors.Is(err, errClosed) {
		t.Errorf("lock after close = %v, want errClosed", err)
	}
}

type countCloser struct {
	n   int
	err error
}

func (c *countCloser) Close() error { c.n++; return c.err }
