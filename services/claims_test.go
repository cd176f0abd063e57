package services

import (
	"strings"
	"testing"
)

func TestClaims(t *testing.T) {
	tests := []struct {
		name  string
		held  map[string][]Claim // before the claim, by owner
		buses []string
		owner string
		want  []Claim
		// field of the error and what its message must name, "" for success
		field   string
		mention []string
	}{
		{name: "free pins", owner: "gpio", want: []Claim{PinClaim("output[0].pin", 17), PinClaim("input[0].pin", 22)}},
		{name: "pin vs pin", held: map[string][]Claim{"sonar": {PinClaim("trigger", 23)}},
			owner: "gpio", want: []Claim{PinClaim("output[0].pin", 23)},
			field: "output[0].pin", mention: []string{"gpio", "sonar", "trigger", "GPIO 23"}},
		{name: "pin vs enabled bus", buses: []string{"i2c1"},
			owner: "gpio", want: []Claim{PinClaim("input[0].pin", 3)},
			field: "input[0].pin", mention: []string{"gpio", "buses", "i2c1", "GPIO 3"}},
		{name: "pin vs a device's bus", held: map[string][]Claim{"ain": {I2CClaim("chips[0].addr", "i2c1", 0x48)}},
			owner: "gpio", want: []Claim{PinClaim("output[0].pin", 2)},
			field: "output[0].pin", mention: []string{"gpio", "ain", "chips[0].addr", "i2c1"}},
		{name: "device vs a pin of its bus", held: map[string][]Claim{"gpio": {PinClaim("output[0].pin", 2)}},
			owner: "ain", want: []Claim{I2CClaim("chips[0].addr", "i2c1", 0x48)},
			field: "chips[0].addr", mention: []string{"ain", "gpio", "output[0].pin", "GPIO 2"}},
		{name: "two addresses on one bus", held: map[string][]Claim{"dac": {I2CClaim("outputs[0].addr", "i2c1", 0x60)}}, buses: []string{"i2c1"},
			owner: "ain", want: []Claim{I2CClaim("chips[0].addr", "i2c1", 0x48)}},
		{name: "same address", held: map[string][]Claim{"dac": {I2CClaim("outputs[0].addr", "i2c1", 0x48)}},
			owner: "ain", want: []Claim{I2CClaim("chips[0].addr", "i2c1", 0x48)},
			field: "chips[0].addr", mention: []string{"ain", "dac", "outputs[0].addr", "0x48"}},
		{name: "same address on another bus", held: map[string][]Claim{"dac": {I2CClaim("outputs[0].addr", "i2c0", 0x48)}},
			owner: "ain", want: []Claim{I2CClaim("chips[0].addr", "i2c1", 0x48)}},
		{name: "SPI chip selects apart", held: map[string][]Claim{"ain": {SPIClaim("chips[0].cs", "spi0", 0)}},
			owner: "dac", want: []Claim{SPIClaim("outputs[0].cs", "spi0", 1)}},
		{name: "SPI chip select twice", held: map[string][]Claim{"ain": {SPIClaim("chips[0].cs", "spi0", 0)}},
			owner: "dac", want: []Claim{SPIClaim("outputs[0].cs", "spi0", 0)},
			field: "outputs[0].cs", mention: []string{"dac", "ain", "chips[0].cs", "spi0 chip select 0"}},
		{name: "pin vs SPI bus", held: map[string][]Claim{"ain": {SPIClaim("chips[0].cs", "spi0", 0)}},
			owner: "gpio", want: []Claim{PinClaim("input[0].pin", 9)},
			field: "input[0].pin", mention: []string{"gpio", "ain", "spi0"}},
		{name: "one's own pin twice", owner: "gpio", want: []Claim{PinClaim("output[0].pin", 5), PinClaim("input[1].pin", 5)},
			field: "input[1].pin", mention: []string{"output[0].pin", "GPIO 5"}},
		{name: "resource", held: map[string][]Claim{"dht22": {ResourceClaim("device", "iio:device0")}},
			owner: "ain", want: []Claim{ResourceClaim("chips[0].device", "iio:device0")},
			field: "chips[0].device", mention: []string{"ain", "dht22", "iio:device0"}},
		{name: "two halves of one chip, shared", held: map[string][]Claim{"dac": {SharedI2CClaim("outputs[0].chip", "i2c1", 0x48, "pcf8591")}},
			owner: "ain", want: []Claim{SharedI2CClaim("chips[0].addr", "i2c1", 0x48, "pcf8591")}},
		{name: "unshared against shared", held: map[string][]Claim{"dac": {SharedI2CClaim("chips[0].addr", "i2c1", 0x48, "pcf8591")}},
			owner: "ain", want: []Claim{I2CClaim("chips[0].addr", "i2c1", 0x48)},
			field: "chips[0].addr", mention: []string{"ain", "dac", "chips[0].addr", "shared only as pcf8591", "0x48"}},
		{name: "shared against unshared", held: map[string][]Claim{"ain": {I2CClaim("chips[1].addr", "i2c1", 0x48)}},
			owner: "dac", want: []Claim{SharedI2CClaim("chips[0].addr", "i2c1", 0x48, "pcf8591")},
			field: "chips[0].addr", mention: []string{"dac", "ain", "chips[1].addr", "unshared"}},
		{name: "shared under another name", held: map[string][]Claim{"ain": {SharedI2CClaim("chips[0].addr", "i2c1", 0x48, "pcf8591")}},
			owner: "dac", want: []Claim{SharedI2CClaim("chips[0].addr", "i2c1", 0x48, "other")},
			field: "chips[0].addr", mention: []string{"shared only as pcf8591"}},
		{name: "one's own shared claim twice", owner: "ain",
			want:  []Claim{SharedI2CClaim("chips[0].addr", "i2c1", 0x48, "pcf8591"), SharedI2CClaim("chips[1].addr", "i2c1", 0x48, "pcf8591")},
			field: "chips[1].addr", mention: []string{"chips[0].addr", "0x48"}},
		{name: "shared chip against a pin of its bus", held: map[string][]Claim{"gpio": {PinClaim("output[0].pin", 3)}},
			owner: "ain", want: []Claim{SharedI2CClaim("chips[0].addr", "i2c1", 0x48, "pcf8591")},
			field: "chips[0].addr", mention: []string{"gpio", "GPIO 3"}},
		{name: "own claims are replaced, not conflicting", held: map[string][]Claim{"gpio": {PinClaim("output[0].pin", 5)}},
			owner: "gpio", want: []Claim{PinClaim("input[0].pin", 5)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClaims()
			for i, b := range tc.buses {
				if errs := c.EnableBus("buses["+string(rune('0'+i))+"]", b); errs != nil {
					t.Fatal(errs)
				}
			}
			for o, cl := range tc.held {
				if errs := c.Replace(o, cl); errs != nil {
					t.Fatal(errs)
				}
			}
			before := c.Held(tc.owner)
			errs := c.Replace(tc.owner, tc.want)
			if tc.field == "" {
				if errs != nil {
					t.Fatalf("refused: %v", errs)
				}
				if got := c.Held(tc.owner); len(got) != len(tc.want) {
					t.Errorf("holds %v", got)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tc.field || errs[0].Code != CodeConflict {
				t.Fatalf("errors %v, want one conflict at %s", errs, tc.field)
			}
			for _, m := range tc.mention {
				if !strings.Contains(errs[0].Message, m) {
					t.Errorf("%q does not name %q", errs[0].Message, m)
				}
			}
			if after := c.Held(tc.owner); len(after) != len(before) {
				t.Errorf("a refused claim changed holdings: %v -> %v", before, after)
			}
		})
	}
}

func TestClaimsBuses(t *testing.T) {
	c := NewClaims()
	if errs := c.EnableBus("buses[0]", "i2c7"); errs == nil || errs[0].Field != "buses[0]" {
		t.Errorf("unknown bus: %v", errs)
	}
	if errs := c.Replace("gpio", []Claim{PinClaim("output[0].pin", 8)}); errs != nil {
		t.Fatal(errs)
	}
	if errs := c.EnableBus("buses[1]", "spi0"); errs == nil || !strings.Contains(errs[0].Message, "gpio") {
		t.Errorf("a bus over a held pin: %v", errs)
	}
	c.Release("gpio")
	if errs := c.EnableBus("buses[1]", "spi0"); errs != nil {
		t.Errorf("after release: %v", errs)
	}
	if o, ok := c.PinHolder(10); !ok || o != BusOwner {
		t.Errorf("holder of GPIO 10: %q %v", o, ok)
	}
	if p, ok := BusPins("spi0"); !ok || len(p) != 5 {
		t.Errorf("spi0 pins %v", p)
	}
}
