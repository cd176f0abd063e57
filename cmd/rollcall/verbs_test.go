package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/agent/clustertest"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// plainMosquitto runs a stock mosquitto (a listener, anonymous clients,
// nothing tuned) on a free loopback port.
func plainMosquitto(t *testing.T) string {
	t.Helper()
	return clustertest.LocalMosquitto(t, "")
}

func waitListening(t *testing.T, port int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := netDial(port); err == nil {
			c.Close()
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// TestVerbs drives one agent through mosquitto with every verb, as an
// admin would from a shell, and checks what each prints and returns.
func TestVerbs(t *testing.T) {
	bin := buildRollcall(t)
	broker := plainMosquitto(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "rollcall.yaml")
	os.WriteFile(config, []byte(killConfig), 0o644)
	common := []string{"--config", config, "--broker", broker}
	agentPort := freePort(t, "udp")
	agent := startProc(t, bin, append([]string{"agent", "--sim", "--host", "v1", "--state-dir", filepath.Join(dir, "state"),
		"--port", fmt.Sprint(agentPort)}, common...)...)
	w := watchHost(t, broker, "v1")
	w.awaitGPIO(t)

	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(bin, append(args, common...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
	expect := func(what string, code, want int, out, errs string, says ...string) {
		t.Helper()
		if code != want {
			t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, code, want, out, errs)
		}
		for _, s := range says {
			if !strings.Contains(out+errs, s) {
				t.Errorf("%s does not say %q:\nstdout: %s\nstderr: %s", what, s, out, errs)
			}
		}
	}

	out, errs, code := run("output:\n  - {name: lamp, pin: 23}\n  - {name: fan, pin: 24, init: 1}\n", "setup", "v1", "gpio", "-")
	expect("setup from stdin", code, 0, out, errs, "v1/gpio setup applied", `"fan"`)
	out, errs, code = run(`{"output":[{"name":"lamp","pin":28,"init":2}]}`, "setup", "v1", "gpio", "-")
	expect("a refused setup", code, 2, out, errs, "output[0].pin: GPIO 28 is not on the header", "output[0].init:")
	out, errs, code = run("", "setup", "v1", "gpio", "-", "--json")
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Config json.RawMessage `json:"config"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Status != "ok" || !strings.Contains(string(r.Data.Config), `"fan"`) {
		t.Errorf("setup query --json: %q %v", out, err)
	}
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("--json printed more than one line: %q", out)
	}

	out, errs, code = run("", "set", "v1", "gpio", "lamp", "on")
	expect("set", code, 0, out, errs, "v1/gpio/lamp = 1")
	out, errs, code = run("", "set", "v1", "gpio", "nope", "1")
	expect("set of no such output", code, 2, out, errs, `no output named "nope"`)
	out, errs, code = run("", "set", "v1", "gpio", "lamp", "maybe")
	expect("set of a bad value", code, 2, out, errs, "value:")
	out, errs, code = run("", "get", "v1", "gpio")
	expect("get", code, 0, out, errs, "lamp", "output", "fan")
	out, errs, code = run("", "get", "v1")
	expect("get of a host", code, 0, out, errs, `"machine"`, `"services"`)

	out, errs, code = run("", "estop", "v1")
	expect("estop", code, 0, out, errs, "v1/gpio: halted")
	out, errs, code = run("", "set", "v1", "gpio", "lamp", "1")
	expect("set while halted", code, 2, out, errs, "halted")
	out, errs, code = run("", "recover", "--all")
	expect("recover --all", code, 0, out, errs, "v1/gpio: running")
	out, errs, code = run("", "estop")
	expect("estop without a host", code, 64, out, errs, "a host or --all")

	// Every --json output is one object a line, valid against the schemas
	// under docs/schema.
	for _, args := range [][]string{
		{"setup", "v1", "gpio", "-", "--json"},
		{"set", "v1", "gpio", "lamp", "1", "--json"},
		{"set", "v1", "gpio", "lamp", "7", "--json"},
		{"get", "v1", "gpio", "--json"},
		{"estop", "v1", "--json"},
		{"recover", "v1", "--json"},
	} {
		out, _, _ := run("", args...)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			validateJSON(t, "result.json", line)
		}
	}
	port := fmt.Sprint(agentPort)
	out, errs, code = run("", "sweep", "--json", "--interface", "lo", "--port", port, "--expect", "1")
	expect("sweep --json", code, 0, out, errs)
	validateJSON(t, "inventory.json", out)
	out, errs, code = run("", "inventory", "--json")
	expect("inventory --json", code, 0, out, errs)
	validateJSON(t, "inventory.json", out)

	// watch prints the values as they change.
	watch := exec.Command(bin, append([]string{"watch", "v1", "--json"}, common...)...)
	wout := &syncBuffer{}
	watch.Stdout = wout
	watch.Start()
	waitOutput := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(wout.String(), want) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitOutput(`"kind":"status"`) // the retained status: it is watching
	run("", "set", "v1", "gpio", "lamp", "0")
	waitOutput(`"name":"lamp","value":"0"`)
	watch.Process.Signal(os.Interrupt)
	if err := watch.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("watch after Ctrl-C: %v, want exit 130", err)
		}
	}
	if !strings.Contains(wout.String(), `"name":"lamp","value":"0"`) {
		t.Errorf("watch did not print the change: %s", wout.String())
	}

	// forget refuses a host that is online, and clears one that is gone.
	out, errs, code = run("", "forget", "v1")
	expect("forget of an online host", code, 2, out, errs, "online")
	agent.cmd.Process.Signal(os.Interrupt)
	agent.wait(t)
	out, errs, code = run("", "forget", "v1")
	expect("forget", code, 0, out, errs, "cleared")
	out, errs, code = run("", "get", "v1")
	expect("get of a forgotten host", code, 2, out, errs, "no description")
}

func netDial(port int) (interface{ Close() error }, error) {
	return net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
}

// syncBuffer is a bytes.Buffer a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// validateJSON checks that doc is one line of JSON valid against
// docs/schema/<schema>.
func validateJSON(t *testing.T, schema, doc string) {
	t.Helper()
	doc = strings.TrimRight(doc, "\n")
	if strings.Contains(doc, "\n") {
		t.Errorf("--json printed more than one line:\n%s", doc)
		return
	}
	c := jsonschema.NewCompiler()
	sch, err := c.Compile("../../docs/schema/" + schema)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		t.Errorf("not JSON: %v\n%s", err, doc)
		return
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s does not hold:\n%v\n%s", schema, err, doc)
	}
}
