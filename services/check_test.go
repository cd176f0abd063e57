package services_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/services"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		name, s string
		n       int
		want    string
	}{
		{"short", "pump", 8, "pump"},
		{"exactly n", "pump", 4, "pump"},
		{"cut", "greenhouse", 5, "green…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := services.Truncate(tc.s, tc.n); got != tc.want {
				t.Errorf("Truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
			}
		})
	}
}

// TestNames: problems stand at each item's own field, in the list's
// order, with the second use of a name reported, never the first.
func TestNames(t *testing.T) {
	type problem struct{ code, field, says string }
	tests := []struct {
		name  string
		kind  string
		names []string
		want  []problem
	}{
		{name: "unique", names: []string{"a", "b", "c"}},
		{name: "a duplicate", names: []string{"a", "b", "a", "a"}, want: []problem{
			{services.CodeConflict, "items[2].name", `duplicate name "a" (also items[0])`},
			{services.CodeConflict, "items[3].name", `duplicate name "a" (also items[0])`}}},
		{name: "not a topic level", names: []string{"a/b", "", "$SYS"}, want: []problem{
			{services.CodeInvalid, "items[0].name", `name "a/b" cannot stand as a topic level`},
			{services.CodeInvalid, "items[1].name", `name "" cannot stand as a topic level`},
			{services.CodeInvalid, "items[2].name", `name "$SYS" cannot stand as a topic level`}}},
		{name: "an invalid name is not recorded", names: []string{"a#", "a#"}, want: []problem{
			{services.CodeInvalid, "items[0].name", "cannot stand"}, {services.CodeInvalid, "items[1].name", "cannot stand"}}},
		{name: "a long name is quoted short", names: []string{strings.Repeat("x", 100)}, want: []problem{
			{services.CodeInvalid, "items[0].name", `"` + strings.Repeat("x", 70) + `…"`}}},
		{name: "chips", kind: "chip", names: []string{"ads", "a+b", "ads"}, want: []problem{
			{services.CodeInvalid, "items[1].name", `name "a+b": 1–64 bytes, no / + # control characters or leading $`},
			{services.CodeConflict, "items[2].name", `duplicate chip name "ads" (also items[0])`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := services.NewNames(tc.kind)
			var got []problem
			for i, name := range tc.names {
				for _, e := range n.Check(fmt.Sprintf("items[%d]", i), name) {
					got = append(got, problem{e.Code, e.Field, e.Message})
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems %+v, want %+v", got, tc.want)
			}
			for i, w := range tc.want {
				if got[i].code != w.code || got[i].field != w.field || !strings.Contains(got[i].says, w.says) {
					t.Errorf("problem %d: %+v, want %+v", i, got[i], w)
				}
			}
		})
	}
}

func TestCheckScale(t *testing.T) {
	tests := []struct {
		name          string
		scale, offset float64
		unit          string
		want          []string // fields with a problem
	}{
		{name: "volts"},
		{name: "a scale of 1 is volts", scale: 1},
		{name: "a percentage", scale: 30.3, unit: "%"},
		{name: "scaled without a unit", scale: 2, want: []string{"ch.unit"}},
		{name: "offset without a unit", offset: -1, want: []string{"ch.unit"}},
		{name: "too large either way", scale: -2e9, offset: 2e9, unit: "V", want: []string{"ch.scale", "ch.offset"}},
		{name: "a unit with a quote", unit: `"C`, want: []string{"ch.unit"}},
		{name: "a unit with a control character", unit: "m\n", want: []string{"ch.unit"}},
		{name: "a unit with spaces around", unit: " m", want: []string{"ch.unit"}},
		{name: "a unit too long", unit: strings.Repeat("u", services.MaxUnit+1), want: []string{"ch.unit"}},
		{name: "a unit of MaxUnit bytes", unit: strings.Repeat("u", services.MaxUnit)},
		{name: "not UTF-8", unit: "\xff", want: []string{"ch.unit"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range services.CheckScale("ch", tc.scale, tc.offset, tc.unit) {
				if e.Code != services.CodeInvalid || e.Message == "" {
					t.Errorf("problem %+v", e)
				}
				got = append(got, e.Field)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems at %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIIOClaim(t *testing.T) {
	tests := []struct{ name, device, want string }{
		{"a directory", "iio:device0", "iio:device0"},
		{"a driver's name", "mcp3008", "iio:mcp3008"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := services.ResourceClaim("chips[0].device", tc.want)
			if got := services.IIOClaim("chips[0].device", tc.device); got != want {
				t.Errorf("IIOClaim(%q) = %+v, want %+v", tc.device, got, want)
			}
		})
	}
}
