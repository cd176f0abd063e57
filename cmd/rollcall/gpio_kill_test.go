package main_test

// TestGPIOSetupSurvivesSIGKILL runs the real binary on loopback (no
// namespaces, no root): a setup answered ok is on disk, so an agent
// killed with SIGKILL right after the answer comes back with it.
//
//	go test ./cmd/rollcall -run TestGPIOSetupSurvivesSIGKILL -v

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// killConfig is the agent's configuration file: the sim board of
// configs/sim.yaml.
const killConfig = `discovery:
  interfaces: [lo]
gpio:
  driver: sim
  output:
    - {name: pump_drive, pin: 25, init: 0, pull: down}
    - {name: lamp, pin: 23, init: 0}
  input:
    - {name: float_switch, pin: 17, pull: down, edge: both}
    - {name: button, pin: 22, pull: down, edge: both}
  wiring:
    - {from: 25, to: 17}
`

// killSetup moves the pump to GPIO 24 (still wired to float_switch),
// drops the lamp and adds a valve: nothing of it is in the file.
const killSetup = `{"id":"before-kill",
 "output":[{"name":"pump_drive","pin":24,"failsafe":0},{"name":"valve","pin":5,"init":1,"failsafe":1}],
 "input":[{"name":"float_switch","pin":17,"pull":"down","edge":"both"}],
 "wiring":[{"from":24,"to":17}]}`

func TestGPIOSetupSurvivesSIGKILL(t *testing.T) {
	k := newKillAgent(t, "k1", killConfig)
	a, w := k.start(t)
	before := w.awaitDescription(t, func(d killDescription) bool { return d.gpioConfig() != nil })
	w.awaitGPIO(t)
	if got := outputNames(before.gpioConfig()); got != "pump_drive@25 lamp@23" {
		t.Fatalf("outputs from the file: %s", got)
	}

	res := w.request(t, "k1/gpio/setup", []byte(killSetup))
	if res.Status != "ok" || string(res.ID) != `"before-kill"` {
		t.Fatalf("setup result: %s", res)
	}
	// No grace: the ok is the promise that the setup is kept.
	kill(t, a, w)
	published := w.lastVersion()

	_, w = k.start(t)
	// The version goes up across the restart too.
	after := w.awaitDescription(t, func(d killDescription) bool { return d.gpioConfig() != nil && d.Version > published })
	if got := outputNames(after.gpioConfig()); got != "pump_drive@24 valve@5" {
		t.Errorf("after SIGKILL and restart the description's outputs are %s, want the setup's pump_drive@24 valve@5", got)
	}
	w.awaitGPIO(t)
	q := w.request(t, "k1/gpio/setup", nil)
	var cfg struct {
		Config json.RawMessage `json:"config"`
	}
	json.Unmarshal(q.Data, &cfg)
	if q.Status != "ok" || outputNames(cfg.Config) != "pump_drive@24 valve@5" || !bytes.Contains(cfg.Config, []byte(`"wiring":[{"from":24,"to":17}]`)) {
		t.Errorf("setup query after restart: %s", q)
	}
	// The restored setup is live: its wiring carries the pump to the
	// float switch, and the valve came up at its init level.
	if v := w.retained(t, "k1/gpio/output/valve"); v != "1" {
		t.Errorf("valve %q after restart, want its init 1", v)
	}
	from := w.mark()
	if r := w.request(t, "k1/gpio/set/pump_drive", []byte("1")); r.Status != "ok" {
		t.Fatalf("set after restart: %s", r)
	}
	w.awaitValue(t, from, "k1/gpio/input/float_switch", "1")
}

// killDescription is the part of <host>/description the test reads.
type killDescription struct {
	Version  uint64 `json:"version"`
	Services []struct {
		Function string `json:"function"`
		State    struct {
			Config json.RawMessage `json:"config"`
		} `json:"state"`
	} `json:"services"`
}

func (d killDescription) gpioConfig() json.RawMessage {
	for _, s := range d.Services {
		if s.Function == "gpio" {
			return s.State.Config
		}
	}
	return nil
}

func (w *hostWatch) awaitDescription(t testing.TB, ok func(killDescription) bool) killDescription {
	t.Helper()
	var d killDescription
	w.await(t, 0, "a description", func(m killMsg) bool {
		return m.topic == w.host+"/description" && json.Unmarshal([]byte(m.payload), &d) == nil && ok(d)
	})
	return d
}

// lastVersion is the highest description version seen.
func (w *hostWatch) lastVersion() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var v uint64
	for _, m := range w.msgs {
		var d killDescription
		if m.topic == w.host+"/description" && json.Unmarshal([]byte(m.payload), &d) == nil {
			v = max(v, d.Version)
		}
	}
	return v
}

// outputNames lists a gpio config's outputs as "name@pin ...".
func outputNames(cfg json.RawMessage) string {
	var c struct {
		Output []struct {
			Name string `json:"name"`
			Pin  int    `json:"pin"`
		} `json:"output"`
	}
	json.Unmarshal(cfg, &c)
	var s []string
	for _, o := range c.Output {
		s = append(s, fmt.Sprintf("%s@%d", o.Name, o.Pin))
	}
	return strings.Join(s, " ")
}
