package main_test

// The cluster test runs the real binary on a cluster of network namespaces
// (agent/clustertest): one mosquitto, an agent per host, sweeps and
// inventory reads from inside the hosts. It needs root; under plain
// `go test` it skips with the reason when namespaces cannot be made, and
// with CI=true or ROLLCALL_REQUIRE_NETNS=1 it fails instead.
//
//	go test ./cmd/rollcall -run TestCluster -v

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollcall/rollcall/agent/clustertest"
)

// probePort is the discovery port the agents and sweeps use; DropUDP drops
// probes on it.
const probePort = 4747

// sweepDoc is the part of `rollcall sweep --json` the tests read.
type sweepDoc struct {
	Schema int    `json:"schema"`
	Source string `json:"source"`
	Sweep  struct {
		ID         int64   `json:"id"`
		CompleteMS float64 `json:"complete_ms"`
		ElapsedMS  float64 `json:"elapsed_ms"`
		Probes     int     `json:"probes"`
		Complete   bool    `json:"complete"`
	} `json:"sweep"`
	Hosts   []hostDoc `json:"hosts"`
	Missing []string  `json:"missing"`
}

type hostDoc struct {
	Hostname string       `json:"host"`
	Machine  string       `json:"machine"`
	IPAddr   string       `json:"ipaddr"`
	Status   string       `json:"status"` // online, or missing for an expected host that never answered
	Services []serviceDoc `json:"services"`
}

type serviceDoc struct {
	Function string            `json:"function"`
	Inputs   []json.RawMessage `json:"inputs"`
	Outputs  []json.RawMessage `json:"outputs"`
	Control  string            `json:"control"`
	Setup    string            `json:"setup"`
	Get      string            `json:"get"`
}

// inventoryDoc is the part of `rollcall inventory --json` the tests read.
type inventoryDoc struct {
	Hosts []struct {
		Host   string `json:"host"`
		Status string `json:"status"`
	} `json:"hosts"`
}

func (inv inventoryDoc) status(host string) string {
	for _, h := range inv.Hosts {
		if h.Host == host {
			return h.Status
		}
	}
	return ""
}

// rollcall is the binary under test, run on a cluster with one broker.
type rollcall struct {
	bin    string
	config string // the agents' configuration: the simulated board below
	broker string
	mq     *clustertest.Mosquitto
	c      *clustertest.Cluster
	state  map[string]string // each host's state directory, kept across restarts
}

// clusterConfig is every agent's configuration file (the command line
// names the host and the broker): the simulated board of configs/sim.yaml,
// gpio only, so that every retained value is fixed and a restart can be
// compared with what was there before.
const clusterConfig = `gpio:
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

// buildRollcall builds the binary into a temporary directory.
func buildRollcall(t testing.TB) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command not found: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "rollcall")
	start := time.Now()
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built rollcall in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// newRollcall builds the binary, a cluster of n hosts and a stock
// mosquitto on the first host.
func newRollcall(t testing.TB, n int) *rollcall {
	t.Helper()
	clustertest.Skip(t)
	return newRollcallOn(t, buildRollcall(t), n, clustertest.Options{})
}

// newRollcallOn is newRollcall with a binary already built and the
// cluster's options (loss from the start, say).
func newRollcallOn(t testing.TB, bin string, n int, o clustertest.Options) *rollcall {
	t.Helper()
	clustertest.Skip(t)
	rc := &rollcall{bin: bin, state: map[string]string{}}
	rc.config = filepath.Join(t.TempDir(), "rollcall.yaml")
	if err := os.WriteFile(rc.config, []byte(clusterConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	rc.c = clustertest.NewWith(t, n, o)
	rc.mq = rc.c.Hosts[0].StartMosquitto(t, clustertest.MosquittoOptions{})
	rc.broker = rc.mq.URL
	return rc
}

// common is the flags every command takes: the configuration and the
// broker.
func (rc *rollcall) common() []string {
	return []string{"--config", rc.config, "--broker", rc.broker}
}

// local is the flags of the commands that speak for a host (agent and
// sweep): its name and the discovery port.
func (rc *rollcall) local(host string) []string {
	return append(rc.common(), "--host", host, "--port", fmt.Sprint(probePort))
}

// startAgent starts `rollcall agent --sim` on h, as h.Name, with its own
// state directory (the same one when it starts again) and a short
// keepalive so that its last will fires soon after it dies.
func (rc *rollcall) startAgent(t testing.TB, h *clustertest.Host, extra ...string) *clustertest.Proc {
	t.Helper()
	return rc.startAgentArgs(t, h, append([]string{"--keepalive", "1s"}, extra...)...)
}

// startAgentArgs starts `rollcall agent --sim` on h with only extra added
// to the host's name, broker, configuration and state directory.
func (rc *rollcall) startAgentArgs(t testing.TB, h *clustertest.Host, extra ...string) *clustertest.Proc {
	t.Helper()
	dir, ok := rc.state[h.Name]
	if !ok {
		dir = t.TempDir()
		rc.state[h.Name] = dir
	}
	args := append([]string{"agent", "--sim", "--state-dir", dir}, rc.local(h.Name)...)
	return h.Start(t, rc.bin, append(args, extra...)...)
}

// run runs a rollcall command on h and returns its stdout, stderr and exit
// status; it fails the test only when the command cannot run at all.
func (rc *rollcall) run(t testing.TB, h *clustertest.Host, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return rc.runIn(t, h, "", args...)
}

// runIn is run with stdin.
func (rc *rollcall) runIn(t testing.TB, h *clustertest.Host, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := h.Command(ctx, rc.bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		code = exit.ExitCode()
	default:
		t.Fatalf("%s: rollcall %s: %v\n%s", h.Name, strings.Join(args, " "), err, e.Bytes())
	}
	return o.String(), e.String(), code
}

// sweep runs `rollcall sweep --json` on h as sweeper and decodes it.
func (rc *rollcall) sweep(t testing.TB, h *clustertest.Host, args ...string) (doc sweepDoc, stderr string, code int) {
	t.Helper()
	args = append(append([]string{"sweep", "--json"}, rc.local("sweep-"+h.Name)...), args...)
	out, stderr, code := rc.run(t, h, args...)
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("sweep: exit %d, output not JSON: %v\nstdout:\n%s\nstderr:\n%s", code, err, out, stderr)
	}
	return doc, stderr, code
}

// inventory reads the retained inventory from h.
func (rc *rollcall) inventory(t testing.TB, h *clustertest.Host) (inventoryDoc, error) {
	t.Helper()
	out, stderr, code := rc.run(t, h, append([]string{"inventory", "--json"}, rc.common()...)...)
	var inv inventoryDoc
	if code != 0 {
		return inv, fmt.Errorf("inventory: exit %d: %s", code, stderr)
	}
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		return inv, fmt.Errorf("inventory: %v\n%s", err, out)
	}
	return inv, nil
}

// waitStatus polls the retained inventory until every host in hosts has
// the status want. Generously: at 20% loss on every link an agent's
// connection can take several attempts, and its first publications TCP
// retransmissions that back off from seconds.
func (rc *rollcall) waitStatus(t testing.TB, from *clustertest.Host, want string, hosts ...string) {
	t.Helper()
	clustertest.Eventually(t, 60*time.Second, 100*time.Millisecond, func() error {
		inv, err := rc.inventory(t, from)
		if err != nil {
			return err
		}
		var wrong []string
		for _, h := range hosts {
			if s := inv.status(h); s != want {
				wrong = append(wrong, fmt.Sprintf("%s=%q", h, s))
			}
		}
		if len(wrong) > 0 {
			return fmt.Errorf("want status %q, have %s", want, strings.Join(wrong, " "))
		}
		return nil
	})
}

// answered counts the hosts that answered a sweep.
func answered(doc sweepDoc) int {
	n := 0
	for _, h := range doc.Hosts {
		if h.Status != "missing" {
			n++
		}
	}
	return n
}

func hostNames(hs []*clustertest.Host) []string {
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
	}
	return names
}

func TestCluster(t *testing.T) {
	const n = 6
	rc := newRollcall(t, n)
	agents := make([]*clustertest.Proc, n)
	for i, h := range rc.c.Hosts {
		agents[i] = rc.startAgent(t, h, "--log-level", "debug")
	}
	names := hostNames(rc.c.Hosts)
	rc.waitStatus(t, rc.c.Hosts[0], "online", names...)

	// The sweep runs on a host other than the broker's.
	sweeper := rc.c.Hosts[n-1]
	doc, stderr, code := rc.sweep(t, sweeper, "--expect", fmt.Sprint(n))
	if code != 0 || !doc.Sweep.Complete || len(doc.Missing) > 0 {
		t.Fatalf("sweep: exit %d, complete %v, missing %v\n%s", code, doc.Sweep.Complete, doc.Missing, stderr)
	}
	t.Logf("sweep of %d hosts complete in %.1f ms, %d probes", n, doc.Sweep.CompleteMS, doc.Sweep.Probes)
	if got := answered(doc); got != n {
		t.Errorf("sweep heard %d hosts, want %d", got, n)
	}
	machines := map[string]string{}
	for _, h := range rc.c.Hosts {
		i := slices.IndexFunc(doc.Hosts, func(d hostDoc) bool { return d.Hostname == h.Name })
		if i < 0 {
			t.Errorf("%s missing from the sweep", h.Name)
			continue
		}
		d := doc.Hosts[i]
		if d.Status != "online" {
			t.Errorf("%s: status %q in the sweep, want online", h.Name, d.Status)
		}
		if d.IPAddr != h.Addr.String() {
			t.Errorf("%s: ipaddr %q, want its own address %v", h.Name, d.IPAddr, h.Addr)
		}
		if d.Machine == "" {
			t.Errorf("%s: no machine identity", h.Name)
		} else if other, dup := machines[d.Machine]; dup {
			t.Errorf("%s and %s share machine identity %s", h.Name, other, d.Machine)
		}
		machines[d.Machine] = h.Name
		j := slices.IndexFunc(d.Services, func(s serviceDoc) bool { return s.Function == "gpio" })
		if j < 0 {
			t.Errorf("%s: no gpio service in %+v", h.Name, d.Services)
			continue
		}
		if g := d.Services[j]; g.Control == "" || g.Setup == "" || g.Get == "" {
			t.Errorf("%s: gpio service without its topics: %+v", h.Name, g)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// SIGKILL one agent: it cannot say goodbye, so only its last will can
	// mark it offline, once the broker's keepalive runs out (or at once,
	// when the kernel closes its connection). Before that, a setup it
	// must come back with.
	victim := rc.c.Hosts[2]
	if out, stderr, code := rc.runIn(t, sweeper, killSetup, append([]string{"setup", victim.Name, "gpio", "-"}, rc.common()...)...); code != 0 {
		t.Fatalf("setup of %s: exit %d\n%s%s", victim.Name, code, out, stderr)
	}
	agents[2].Kill()
	start := time.Now()
	rc.waitStatus(t, rc.c.Hosts[0], "offline", victim.Name)
	t.Logf("%s offline %v after SIGKILL", victim.Name, time.Since(start).Round(time.Millisecond))
	rc.waitStatus(t, rc.c.Hosts[0], "online", slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == victim.Name })...)

	// A hung host keeps its TCP connection open, so here only the
	// keepalive (1s; the broker gives up after 1.5x) can mark it offline.
	// Once it resumes, its session reconnects and says online again.
	hung := rc.c.Hosts[3]
	if err := agents[3].Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	rc.waitStatus(t, rc.c.Hosts[0], "offline", hung.Name)
	t.Logf("%s offline %v after SIGSTOP", hung.Name, time.Since(start).Round(time.Millisecond))
	if err := agents[3].Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	rc.waitStatus(t, rc.c.Hosts[0], "online", hung.Name)
	t.Logf("%s online again %v after SIGCONT", hung.Name, time.Since(start).Round(time.Millisecond))

	// A plain sweep expects every host the retained inventory lists as
	// online, the last sweep's result included: it now fails and names
	// the dead host.
	doc, stderr, code = rc.sweep(t, sweeper, "--timeout", "1s")
	if code == 0 {
		t.Errorf("sweep with %s dead exited 0", victim.Name)
	}
	if !slices.Equal(doc.Missing, []string{victim.Name}) {
		t.Errorf("sweep missing %v, want [%s]", doc.Missing, victim.Name)
	}
	if !strings.Contains(stderr, victim.Name) {
		t.Errorf("sweep stderr does not name %s:\n%s", victim.Name, stderr)
	}
	if doc.Sweep.Complete {
		t.Error("sweep with a missing host says complete")
	}
	if got := answered(doc); got != n-1 {
		t.Errorf("sweep heard %d hosts, want %d", got, n-1)
	}

	// Started again with the same configuration and state directory, the
	// killed agent is back with the setup it acknowledged (gpio.json in
	// its state directory), its outputs at that setup's init levels.
	start = time.Now()
	agents[2] = rc.startAgent(t, victim)
	rc.waitStatus(t, rc.c.Hosts[0], "online", victim.Name)
	t.Logf("%s online %v after its restart", victim.Name, time.Since(start).Round(time.Millisecond))
	clustertest.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		state := retainedState(t, sweeper, rc.broker, []string{victim.Name})
		var d killDescription
		if err := json.Unmarshal([]byte(state[victim.Name+"/description"]), &d); err != nil {
			return fmt.Errorf("%s/description: %v", victim.Name, err)
		}
		if got := outputNames(d.gpioConfig()); got != "pump_drive@24 valve@5" {
			return fmt.Errorf("after SIGKILL and restart %s's outputs are %q, want the setup's pump_drive@24 valve@5", victim.Name, got)
		}
		if v := state[victim.Name+"/gpio/output/valve"]; v != "1" {
			return fmt.Errorf("after SIGKILL and restart %s's valve is %q, want its init 1", victim.Name, v)
		}
		return nil
	})
	doc, stderr, code = rc.sweep(t, sweeper, "--expect", fmt.Sprint(n))
	if code != 0 || !doc.Sweep.Complete || answered(doc) != n {
		t.Errorf("sweep after the restart: exit %d, complete %v, %d hosts, missing %v\n%s", code, doc.Sweep.Complete, answered(doc), doc.Missing, stderr)
	}
}
