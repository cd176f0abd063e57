package main_test

// TestAINDACSurviveSIGKILL runs the real binary on loopback (no
// namespaces, no root): the ain and dac setups answered ok, and the last
// dac value set, are on disk, so an agent killed with SIGKILL right after
// the answers comes back with them.
//
//	go test ./cmd/rollcall -run TestAINDACSurviveSIGKILL -v

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

// awaitService waits until service answers a get.
func (w *hostWatch) awaitService(t testing.TB, service string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		id := fmt.Sprintf(`"ready-%d"`, i)
		from := w.mark()
		w.cl.Publish(w.host+"/"+service+"/get", 1, false, `{"id":`+id+`}`)
		if _, ok := w.tryAwait(from, 200*time.Millisecond, func(m killMsg) bool {
			return m.topic == w.host+"/"+service+"/result" && strings.Contains(m.payload, `"id":`+id)
		}); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %s service of %s never answered", service, w.host)
		}
	}
}

// ask publishes payload to <host>/<service>/<topic> and returns the next
// result of that op on the service's result topic.
func (w *hostWatch) ask(t testing.TB, service, topic, payload string) killResult {
	t.Helper()
	op, _, _ := strings.Cut(topic, "/")
	from := w.mark()
	if tk := w.cl.Publish(w.host+"/"+service+"/"+topic, 1, false, payload); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("publish: %v", tk.Error())
	}
	var r killResult
	w.await(t, from, "a "+op+" result from "+service, func(m killMsg) bool {
		var head struct {
			Op string `json:"op"`
		}
		if m.topic != w.host+"/"+service+"/result" || json.Unmarshal([]byte(m.payload), &head) != nil || head.Op != op {
			return false
		}
		return json.Unmarshal([]byte(m.payload), &r) == nil
	})
	return r
}

func TestAINDACSurviveSIGKILL(t *testing.T) {
	bin := buildRollcall(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "rollcall.yaml")
	if err := os.WriteFile(config, []byte(analogKillConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	brokerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	args := []string{"agent", "--sim", "--host", "k2", "--state-dir", state,
		"--embedded-broker", brokerAddr, "--port", fmt.Sprint(freePort(t, "udp")), "--config", config}

	a := startProc(t, bin, args...)
	w := watchHost(t, "tcp://"+brokerAddr, "k2")
	w.awaitService(t, "ain")
	w.awaitService(t, "dac")
	w.awaitValue(t, 0, "k2/dac/output/level/value", "0.500317383") // init 0.5 V: 621 of 4096

	if r := w.ask(t, "ain", "setup", `{"id":"a","channels":[{"name":"tank","channel":5,"interval":"100ms","scale":2,"unit":"V"}]}`); r.Status != "ok" {
		t.Fatalf("ain setup: %s", r)
	}
	if r := w.ask(t, "dac", "setup", `{"id":"d","outputs":[{"name":"level","chip":"dac0","init":0.5,"failsafe":0},{"name":"bias","chip":"dac0","channel":0,"init":1}]}`); r.Status != "error" {
		t.Fatalf("a setup driving one channel twice was accepted: %s", r)
	}
	if r := w.ask(t, "dac", "setup", `{"id":"d","chips":[{"name":"dac0","chip":"mcp4725"},{"name":"dac1","chip":"mcp4725","addr":97}],
		"outputs":[{"name":"level","chip":"dac0","init":0.5,"failsafe":0},{"name":"bias","chip":"dac1","init":1}]}`); r.Status != "ok" {
		t.Fatalf("dac setup: %s", r)
	}
	if r := w.ask(t, "dac", "set/level", "2"); r.Status != "ok" {
		t.Fatalf("set: %s", r)
	}
	// No grace: the ok is the promise that the setups and the value are kept.
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.wait(t)
	w.close()

	startProc(t, bin, args...)
	w = watchHost(t, "tcp://"+brokerAddr, "k2")
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
	q := w.ask(t, "ain", "setup", "")
	if q.Status != "ok" || !strings.Contains(string(q.Data), `"name":"tank","channel":5`) {
		t.Errorf("ain setup after restart: %s", q)
	}
	q = w.ask(t, "dac", "setup", "")
	if q.Status != "ok" || !strings.Contains(string(q.Data), `"name":"bias","chip":"dac1"`) {
		t.Errorf("dac setup after restart: %s", q)
	}
}
