package services_test

import (
	"reflect"
	"testing"

	"github.com/rollcall/rollcall/services"
)

type named struct{ Name, V string }

func nameOf(n named) string { return n.Name }

func TestMergeByName(t *testing.T) {
	tests := []struct {
		name       string
		cur, patch []named
		want       []named
	}{
		{name: "nothing", want: nil},
		{name: "into nothing", patch: []named{{"a", "1"}}, want: []named{{"a", "1"}}},
		{name: "replaced in place, new ones at the end", cur: []named{{"a", "1"}, {"b", "1"}, {"c", "1"}},
			patch: []named{{"d", "2"}, {"b", "2"}}, want: []named{{"a", "1"}, {"b", "2"}, {"c", "1"}, {"d", "2"}}},
		{name: "an empty patch keeps all", cur: []named{{"a", "1"}}, patch: []named{}, want: []named{{"a", "1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]named(nil), tc.cur...)
			got := services.MergeByName(tc.cur, tc.patch, nameOf)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if !reflect.DeepEqual(tc.cur, before) {
				t.Errorf("cur modified: %v", tc.cur)
			}
		})
	}
}

func TestFind(t *testing.T) {
	list := []named{{"ads", "1"}, {"mcp", "2"}}
	tests := []struct {
		name, find string
		list       []named
		want       named
		wantIndex  int
	}{
		{name: "by name", list: list, find: "mcp", want: list[1], wantIndex: 1},
		{name: "none named is the first", list: list, find: "", want: list[0], wantIndex: 0},
		{name: "none named in an empty list", find: "", wantIndex: -1},
		{name: "unknown", list: list, find: "pcf", wantIndex: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, i := services.Find(tc.list, tc.find, nameOf)
			if got != tc.want || i != tc.wantIndex {
				t.Errorf("Find(%q) = %v, %d; want %v, %d", tc.find, got, i, tc.want, tc.wantIndex)
			}
		})
	}
}
