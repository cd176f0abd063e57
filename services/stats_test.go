package services_test

import (
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
)

// TestStatsRequests: every result is counted by op and outcome, the ones
// refused before any work (busy, too large) included.
func TestStatsRequests(t *testing.T) {
	h := startRelay(t, twoRelays(), t.TempDir(), nil)
	for _, req := range []struct{ topic, payload string }{
		{"set/pump", "1"},
		{"set/pump", "0"},
		{"set/pump", "7"},
		{"set/nothing", "1"},
		{"get", ""},
		{"setup", `{"relays":"no"}`},
		{"control", "estop"},
		{"set/pump", "1"},
	} {
		h.request(req.topic, req.payload)
	}
	want := map[services.RequestOutcome]uint64{
		{Op: "set", Code: services.OutcomeOK}:       2,
		{Op: "set", Code: services.CodeInvalid}:     1,
		{Op: "set", Code: services.CodeNotFound}:    1,
		{Op: "get", Code: services.OutcomeOK}:       1,
		{Op: "setup", Code: services.CodeMalformed}: 1,
		{Op: "control", Code: services.OutcomeOK}:   1,
		{Op: "set", Code: services.CodeHalted}:      1,
	}
	got := h.rt.Stats().Requests
	for _, tc := range []struct {
		name string
		key  services.RequestOutcome
	}{
		{"sets done", services.RequestOutcome{Op: "set", Code: services.OutcomeOK}},
		{"a bad value", services.RequestOutcome{Op: "set", Code: services.CodeInvalid}},
		{"no such output", services.RequestOutcome{Op: "set", Code: services.CodeNotFound}},
		{"a get", services.RequestOutcome{Op: "get", Code: services.OutcomeOK}},
		{"a malformed setup", services.RequestOutcome{Op: "setup", Code: services.CodeMalformed}},
		{"an estop", services.RequestOutcome{Op: "control", Code: services.OutcomeOK}},
		{"a set while halted", services.RequestOutcome{Op: "set", Code: services.CodeHalted}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got[tc.key] != want[tc.key] {
				t.Errorf("%+v: %d, want %d (all: %v)", tc.key, got[tc.key], want[tc.key], got)
			}
		})
	}
	if len(got) != len(want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
}

// TestStatsChannels: each running scan is a channel with its reads, its
// errors and the inputs it publishes; a scan stopped is gone.
func TestStatsChannels(t *testing.T) {
	h := startThermo(t, thermoConfig{Probes: []string{"air", "water"}})
	h.dev.set(21.5, nil)
	h.advance(0)
	h.flush()
	channel := func(name string) services.ChannelStats {
		t.Helper()
		for _, c := range h.rt.Stats().Channels {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no channel %q in %+v", name, h.rt.Stats().Channels)
		return services.ChannelStats{}
	}
	for _, name := range []string{"air", "water"} {
		if c := channel(name); c.Reads != 1 || c.Errors != 0 || c.Failing || !slices.Equal(c.Inputs, []string{name}) {
			t.Errorf("after a good read: %+v", c)
		}
	}
	h.dev.set(0, syscall.EIO)
	for _, d := range []time.Duration{10 * time.Second, 2 * time.Second, 4 * time.Second} {
		h.advance(d)
	}
	if c := channel("air"); c.Errors != 3 || !c.Failing || !slices.Equal(c.Inputs, []string{"air"}) {
		t.Errorf("after three errors: %+v", c)
	}
	if r := h.bus.Request(t, services.Topics{Host: "pi1", Service: "thermo"}, "pi1/thermo/setup", `{"probes":["air"]}`); r.Status != "ok" {
		t.Fatalf("setup: %+v", r)
	}
	if chs := h.rt.Stats().Channels; len(chs) != 1 || chs[0].Name != "air" || chs[0].Reads != 0 {
		t.Errorf("after a setup keeping air, anew: %+v", chs)
	}
}
