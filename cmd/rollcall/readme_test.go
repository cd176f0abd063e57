package main

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/agent"
)

// TestReadmeConfigTable checks the README's configuration table against
// the code: every key the loader knows is documented, nothing else is,
// and each flag the table names is the flag that sets that key.
func TestReadmeConfigTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Configuration\n")
	if !ok {
		t.Fatal("README.md has no Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	code := regexp.MustCompile("`([^`]+)`")
	documented := map[string]bool{}
	flagFor := map[string]string{} // key -> flag, from the table
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		var keys, flags []string
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			keys = append(keys, m[1])
		}
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			flags = append(flags, strings.TrimPrefix(m[1], "--"))
		}
		if len(flags) > 0 && len(flags) != len(keys) {
			t.Errorf("row %q: %d keys and %d flags; pair them one to one", strings.TrimSpace(line), len(keys), len(flags))
			continue
		}
		for i, k := range keys {
			documented[k] = true
			if len(flags) > 0 {
				flagFor[k] = flags[i]
			}
		}
	}
	keys := leafKeys(reflect.TypeFor[agent.Config](), "")
	for _, k := range keys {
		if !documented[k] {
			t.Errorf("key %s is not in the README's configuration table", k)
		}
	}
	for k := range documented {
		if !slices.Contains(keys, k) {
			t.Errorf("the README documents %s, which the configuration does not have", k)
		}
	}
	for flag, key := range flagKeys {
		if got, ok := flagFor[key]; !ok || got != flag {
			t.Errorf("key %s is set by --%s; the README says %q", key, flag, got)
		}
	}
	for key, flag := range flagFor {
		if flagKeys[flag] != key {
			t.Errorf("the README says --%s sets %s; it sets %q", flag, key, flagKeys[flag])
		}
	}
}
