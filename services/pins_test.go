package services

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestPinRegistry(t *testing.T) {
	r := NewPinRegistry()
	if err := r.ReserveBus("i2c1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Reserve("dht22", 4); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		owner   string
		pins    []int
		replace bool
		holder  string // in the error, "" for success
	}{
		{name: "free pins", owner: "gpio", pins: []int{17, 22}},
		{name: "again is fine", owner: "gpio", pins: []int{17}},
		{name: "i2c pin", owner: "gpio", pins: []int{25, 3}, holder: "i2c1"},
		{name: "dht pin", owner: "sonar", pins: []int{4}, holder: "dht22"},
		{name: "other owner's pin", owner: "sonar", pins: []int{5, 17}, holder: "gpio"},
		{name: "replace", owner: "gpio", pins: []int{23, 24}, replace: true},
		{name: "replace refused", owner: "gpio", pins: []int{25, 2}, replace: true, holder: "i2c1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := r.Held(tc.owner)
			var err error
			if tc.replace {
				err = r.Replace(tc.owner, tc.pins...)
			} else {
				err = r.Reserve(tc.owner, tc.pins...)
			}
			if tc.holder == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				for _, p := range tc.pins {
					if h, _ := r.Holder(p); h != tc.owner {
						t.Errorf("holder of %d = %q", p, h)
					}
				}
				return
			}
			if !errors.Is(err, ErrPinHeld) || !strings.Contains(err.Error(), tc.holder) {
				t.Fatalf("err = %v, want held by %s", err, tc.holder)
			}
			if after := r.Held(tc.owner); !slices.Equal(before, after) {
				t.Errorf("failed reservation changed holdings: %v -> %v", before, after)
			}
		})
	}
	if got := r.Held("gpio"); !slices.Equal(got, []int{23, 24}) {
		t.Errorf("after replace gpio holds %v", got)
	}
	r.Release("gpio")
	if _, ok := r.Holder(23); ok {
		t.Error("23 still held after Release")
	}
	if err := r.ReserveBus("nope"); err == nil {
		t.Error("unknown bus accepted")
	}
	if p, ok := BusPins("spi0"); !ok || !slices.Equal(p, []int{7, 8, 9, 10, 11}) {
		t.Errorf("spi0 = %v", p)
	}
}
