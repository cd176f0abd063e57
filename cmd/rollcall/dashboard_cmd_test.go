package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dashPort finds a free loopback port in the dashboard tests' own range
// (TCP 27590–27599, UDP 27690–27699), beside other suites on a shared
// machine.
func dashPort(t testing.TB, network string) int {
	t.Helper()
	base := 27590
	if network == "udp" {
		base = 27690
	}
	for p := base; p < base+10; p++ {
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		if network == "udp" {
			if c, err := net.ListenPacket("udp", addr); err == nil {
				c.Close()
				return p
			}
			continue
		}
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatalf("no free %s port from %d", network, base)
	return 0
}

// TestDashboardCommand runs `rollcall dashboard` as a user would, beside
// an agent: it serves the cluster, refuses writes by default, warns when
// it listens beyond loopback without a password, and exits cleanly on
// SIGTERM.
func TestDashboardCommand(t *testing.T) {
	bin := buildRollcall(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o600)
	broker := fmt.Sprintf("127.0.0.1:%d", dashPort(t, "tcp"))
	startProc(t, bin, "agent", "--config", "../../configs/sim.yaml", "--embedded-broker", broker, "--host", "d1",
		"--state-dir", filepath.Join(dir, "state"), "--port", fmt.Sprint(dashPort(t, "udp")))
	if !waitListening(t, portOf(broker)) {
		t.Fatal("the agent's embedded broker did not start")
	}

	listen := fmt.Sprintf("127.0.0.1:%d", dashPort(t, "tcp"))
	dash := startProc(t, bin, "dashboard", "--config", empty, "--broker", "tcp://"+broker, "--listen", listen)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st struct {
			Control bool `json:"control"`
			Hosts   []struct {
				Host     string `json:"host"`
				Status   string `json:"status"`
				Services []struct {
					Function string `json:"function"`
				} `json:"services"`
			} `json:"hosts"`
		}
		res, err := http.Get("http://" + listen + "/api/state")
		if err == nil {
			json.NewDecoder(res.Body).Decode(&st)
			res.Body.Close()
		}
		if len(st.Hosts) == 1 && st.Hosts[0].Host == "d1" && st.Hosts[0].Status == "online" && len(st.Hosts[0].Services) > 0 {
			if st.Control {
				t.Error("the dashboard allows control by default")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard never showed host d1 online: %v %+v", err, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	res, err := http.Post("http://"+listen+"/api/set/d1/gpio/lamp", "application/json", strings.NewReader(`{"value": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "read_only") {
		t.Errorf("a write to the default dashboard: %s %s, want 403 read_only", res.Status, b)
	}
	stop(t, dash)
	if !strings.Contains(dash.out.String(), "rollcall dashboard on http://"+listen+"/") {
		t.Errorf("the dashboard did not say where it listens:\n%s", dash.out)
	}

	// Beyond loopback without a password: served, with a warning.
	open := startProc(t, bin, "dashboard", "--config", empty, "--broker", "tcp://"+broker,
		"--listen", fmt.Sprintf("0.0.0.0:%d", dashPort(t, "tcp")), "--allow-control")
	if !waitHTTP(t, open) {
		t.Fatal("the open dashboard never served")
	}
	stop(t, open)
	if out := open.out.String(); !strings.Contains(out, "beyond loopback without a password and allows control") {
		t.Errorf("no warning listening on every address without a password:\n%s", out)
	}
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	var n int
	fmt.Sscan(p, &n)
	return n
}

// waitHTTP waits until a dashboard started on 0.0.0.0 answers on
// loopback.
func waitHTTP(t *testing.T, p *proc) bool {
	t.Helper()
	i := p.cmd.Args
	var port int
	for j, a := range i {
		if a == "--listen" {
			port = portOf(i[j+1])
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/state", port)); err == nil {
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// stop sends SIGTERM and expects a clean exit.
func stop(t *testing.T, p *proc) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the dashboard did not exit on SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the dashboard exited %d on SIGTERM:\n%s", code, p.out)
	}
}
