package main_test

// TestAINDACSurviveSIGKILL runs the real binary on loopback (no
// namespaces, no root): the ain and dac setups answered ok, and the last
// dac value set, are on disk, so an agent killed with SIGKILL right after
// the answers comes back with them.
//
//	go test ./cmd/rollcall -run TestAINDACSurviveSIGKILL -v

import (
	"strings"
	"testing"
)

// analogKillConfig is the agent's configuration file: one simulated
// channel and one simulated output.
const analogKillConfig = `discovery:
  interfaces: [lo]
ain:
  chips:
    - {name: adc, chip: mcp3008}
  channels:
    - {name: soil, chip: adc, channel: 0, interval: 1s}
dac:
  chips:
    - {name: dac0, chip: mcp4725}
  outputs:
    - {name: level, chip: dac0, init: 0.5, failsafe: 0}
`

func TestAINDACSurviveSIGKILL(t *testing.T) {
	k := newKillAgent(t, "k2", analogKillConfig)
	a, w := k.start(t)
	w.awaitService(t, "ain")
	w.awaitService(t, "dac")
	w.awaitValue(t, 0, "k2/dac/output/level/value", "0.500317383") // init 0.5 V: 621 of 4096

	if r := w.request(t, "k2/ain/setup", []byte(`{"id":"a","channels":[{"name":"tank","channel":5,"interval":"100ms","scale":2,"unit":"V"}]}`)); r.Status != "ok" {
		t.Fatalf("ain setup: %s", r)
	}
	if r := w.request(t, "k2/dac/setup", []byte(`{"id":"d","outputs":[{"name":"level","chip":"dac0","init":0.5,"failsafe":0},{"name":"bias","chip":"dac0","channel":0,"init":1}]}`)); r.Status != "error" {
		t.Fatalf("a setup driving one channel twice was accepted: %s", r)
	}
	if r := w.request(t, "k2/dac/setup", []byte(`{"id":"d","chips":[{"name":"dac0","chip":"mcp4725"},{"name":"dac1","chip":"mcp4725","addr":97}],
		"outputs":[{"name":"level","chip":"dac0","init":0.5,"failsafe":0},{"name":"bias","chip":"dac1","init":1}]}`)); r.Status != "ok" {
		t.Fatalf("dac setup: %s", r)
	}
	if r := w.request(t, "k2/dac/set/level", []byte("2")); r.Status != "ok" {
		t.Fatalf("set: %s", r)
	}
	// No grace: the ok is the promise that the setups and the value are kept.
	kill(t, a, w)

	_, w = k.start(t)
	w.awaitService(t, "ain")
	w.awaitService(t, "dac")
	// The value set before the kill, not init: 2 V is 2482 of 4096.
	if v := w.retained(t, "k2/dac/output/level/value"); v != "1.9996582" {
		t.Errorf("level after SIGKILL and restart: %s, want the last set 1.9996582", v)
	}
	if v := w.retained(t, "k2/dac/output/bias/value"); v != "0.999829102" {
		t.Errorf("bias after restart: %s, want its init", v)
	}
	// The ain setup is live: its channel reads.
	w.await(t, 0, "a tank reading", func(m killMsg) bool { return m.topic == "k2/ain/input/tank" })
	q := w.request(t, "k2/ain/setup", nil)
	if q.Status != "ok" || !strings.Contains(string(q.Data), `"name":"tank","channel":5`) {
		t.Errorf("ain setup after restart: %s", q)
	}
	q = w.request(t, "k2/dac/setup", nil)
	if q.Status != "ok" || !strings.Contains(string(q.Data), `"name":"bias","chip":"dac1"`) {
		t.Errorf("dac setup after restart: %s", q)
	}
}
