package agent

// The example of examples/python, a service that is a program of its own,
// run as a subprocess next to an agent the way a user runs it on a Pi,
// against the embedded broker and against mosquitto: the host lists it, a
// default sweep waits for its slow reply, it answers requests like a
// built-in service, its will takes it off the list, and it comes back.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rollcall/rollcall/agent/broker"
	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/services"
)

// systemPython is the interpreter the example's README tells users to
// run: Debian's, which python3-paho-mqtt installs into. A python3 found
// first on PATH (pyenv, a virtualenv) usually lacks paho.
const systemPython = "/usr/bin/python3"

var displayScript = filepath.Join("..", "examples", "python", "display.py")

// requirePythonPaho skips the test when the system's Python or its paho
// module is missing, and fails it instead where the test must run.
func requirePythonPaho(t *testing.T) {
	t.Helper()
	missing := func(why string) {
		t.Helper()
		if os.Getenv("ROLLCALL_REQUIRE_NETNS") == "1" || os.Getenv("CI") != "" {
			t.Fatalf("%s (.ci/run installs python3-paho-mqtt)", why)
		}
		t.Skip(why)
	}
	if _, err := os.Stat(systemPython); err != nil {
		missing(systemPython + " is missing: apt-get install python3 python3-paho-mqtt")
	}
	if out, err := exec.Command(systemPython, "-c", "import paho.mqtt.client").CombinedOutput(); err != nil {
		missing(fmt.Sprintf("%s cannot import paho.mqtt (%v: %s): apt-get install python3-paho-mqtt",
			systemPython, err, bytes.TrimSpace(out)))
	}
}

// syncBuffer is the output of a subprocess, written by exec's copying
// goroutines and read by the test.
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

// displayProc is one run of the example script.
type displayProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed once the process has exited; err is then set
	err  error
}

// startDisplay runs the script with args. The test's cleanup kills it if
// it still runs, and shows what it logged when the test failed.
func startDisplay(t *testing.T, args ...string) *displayProc {
	t.Helper()
	p := &displayProc{t: t, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(systemPython, append([]string{displayScript}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", displayScript, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("display.py (pid %d) said:\n%s", p.cmd.Process.Pid, p.out.String())
		}
	})
	return p
}

// kill ends the process, if it still runs, and waits for it.
func (p *displayProc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// signal sends sig and waits for the process to exit.
func (p *displayProc) signal(sig syscall.Signal) error {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(10 * time.Second):
		p.t.Fatalf("display.py still running 10s after %v", sig)
		return nil
	}
}

// displayResult is a result as the user reads it off pi1/display/result,
// with its id decoded so that tests can compare it with the request's.
type displayResult struct {
	userResult
	ID any `json:"id"`
}

// displayRequest publishes payload to topic and returns the next result
// of the display service: the user sends one request at a time, and the
// service answers in order.
func displayRequest(u *mqttUser, topic string, payload []byte) displayResult {
	u.t.Helper()
	from := u.mark()
	u.publish(topic, payload)
	m, _ := u.await(from, "a result for "+topic, func(m userMsg) bool { return m.topic == "pi1/display/result" })
	var r displayResult
	if err := json.Unmarshal([]byte(m.payload), &r); err != nil {
		u.t.Fatalf("result %q: %v", m.payload, err)
	}
	return r
}

// displayConfig is the display's setup.
type displayConfig struct {
	Lines int `json:"lines"`
	Width int `json:"width"`
}

// setupData is the data of a setup result, and the state of the display's
// description.
type setupData struct {
	Config displayConfig `json:"config"`
	Halted bool          `json:"halted"`
}

func okSetup(t *testing.T, r displayResult) setupData {
	t.Helper()
	if r.Status != "ok" || r.Op != services.OpSetup {
		t.Fatalf("setup: status %q op %q, problems %+v", r.Status, r.Op, r.problems())
	}
	var d setupData
	if err := json.Unmarshal(r.Data, &d); err != nil {
		t.Fatalf("setup data %s: %v", r.Data, err)
	}
	return d
}

// outputText is the retained text of the display's output.
func outputText(t *testing.T, u *mqttUser) string {
	t.Helper()
	raw := u.retained("pi1/display/output/text")
	var s string
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatalf("pi1/display/output/text holds %q, not a JSON string: %v", raw, err)
	}
	return s
}

// displayListed reports whether summary, a payload of pi1/services, lists
// the display.
func displayListed(t *testing.T, summary string) bool {
	t.Helper()
	var s struct {
		Services []cluster.Service `json:"services"`
	}
	if err := json.Unmarshal([]byte(summary), &s); err != nil {
		t.Fatalf("pi1/services %q: %v", summary, err)
	}
	return slices.ContainsFunc(s.Services, func(si cluster.Service) bool { return si.Function == "display" && si.External })
}

// awaitListing waits, from message index from on, for the host's summary
// to list the display (or no longer list it), and checks the agent's
// description agrees. The summary is what a sweep reads, so a sweep
// started after this sees it.
func awaitListing(t *testing.T, u *mqttUser, a *Agent, from int, listed bool) {
	t.Helper()
	what := "pi1/services to list display"
	if !listed {
		what = "pi1/services to drop display"
	}
	u.await(from, what, func(m userMsg) bool {
		return m.topic == "pi1/services" && displayListed(t, m.payload) == listed
	})
	i := slices.IndexFunc(a.Describe().Services, func(d services.Description) bool { return d.Function == "display" })
	if (i >= 0) != listed {
		t.Fatalf("pi1's description lists display: %v, want %v", i >= 0, listed)
	}
	if listed && !a.Describe().Services[i].External {
		t.Fatal("pi1 lists display, but not as external")
	}
}

// sweepDisplay runs a sweep with the test cluster's defaults, as `rollcall
// sweep` with no flags does, and checks it waited for the display's reply
// and found it on pi1 only.
func sweepDisplay(t *testing.T, c *testCluster) cluster.Inventory {
	t.Helper()
	start := time.Now()
	inv, err := cluster.Sweep(context.Background(), c.sweepConfig(), cluster.SweepOptions{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if !inv.Sweep.Complete || len(inv.Missing) > 0 {
		t.Fatalf("sweep: complete %v, missing %v, hosts %+v", inv.Sweep.Complete, inv.Missing, inv.Hosts)
	}
	// Each report is answered 200 ms after it arrives: a sweep complete
	// sooner did not wait for the display.
	if inv.Sweep.CompleteMS < 190 {
		t.Errorf("sweep complete in %.1f ms: it did not wait for the display's 200 ms reply", inv.Sweep.CompleteMS)
	}
	t.Logf("default sweep with the display answering after 200 ms: complete in %.1f ms, %d probes, whole call %v",
		inv.Sweep.CompleteMS, inv.Sweep.Probes, took.Round(time.Millisecond))
	var hosts []string
	for _, h := range inv.Hosts {
		hosts = append(hosts, h.Host)
		var fns []string
		for _, s := range h.Services {
			fns = append(fns, s.Function)
		}
		slices.Sort(fns)
		want := []string{"gpio"}
		if h.Host == "pi1" {
			want = []string{"display", "gpio"}
		}
		if !slices.Equal(fns, want) {
			// pi2's reports reach the script too: it must answer only pi1's.
			t.Errorf("%s services %v, want %v", h.Host, fns, want)
		}
		if len(h.MissingServices) > 0 {
			t.Errorf("%s missing services %v", h.Host, h.MissingServices)
		}
		for _, s := range h.Services {
			if s.Function != "display" {
				continue
			}
			want := cluster.Service{
				Function: "display",
				Inputs:   []services.Interface{},
				Outputs: []services.Interface{{Name: "text", Topic: "pi1/display/output/text", Type: "string",
					Mode: "text", Set: "pi1/display/set/text"}},
				Control:  "pi1/display/control",
				Setup:    "pi1/display/setup",
				Get:      "pi1/display/get",
				Result:   "pi1/display/result",
				Health:   "ok",
				External: true,
			}
			got, _ := json.Marshal(s)
			wantb, _ := json.Marshal(want)
			if !bytes.Equal(got, wantb) {
				t.Errorf("display in the sweep:\n got %s\nwant %s", got, wantb)
			}
		}
	}
	if !slices.Equal(hosts, []string{"pi1", "pi2"}) {
		t.Errorf("hosts %v, want pi1 and pi2", hosts)
	}
	return inv
}

// checkReportsAnswered publishes reports as a monitor would, and checks the
// script answers its own host's with a reply that follows the protocol,
// and ignores the others: a report for another host, and forged ones
// naming as their reply topic one that rollcall reserves (pi1/status) or
// the report topic itself. Those come first; the script schedules replies
// in order, so nothing seen by a bounded wait after its own host's reply
// means they were dropped.
func checkReportsAnswered(t *testing.T, broker string, u *mqttUser, machine string) {
	t.Helper()
	replies := newMQTTUser(t, broker, "test")
	monitor := connectUser(t, broker, userID("monitor"))
	looped := make(chan string, 16)
	tk := monitor.Subscribe(discovery.DefaultReportTopic, 1, func(_ paho.Client, m paho.Message) {
		if strings.Contains(string(m.Payload()), `"function"`) {
			select {
			case looped <- string(m.Payload()):
			default:
			}
		}
	})
	if !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("subscribe %s: %v", discovery.DefaultReportTopic, tk.Error())
	}
	report := func(host, machine, topic string, id int) {
		t.Helper()
		b, err := json.Marshal(discovery.Report{Hostname: host, ReplyTo: "tester", Cmd: discovery.CmdGetStatus,
			IPAddr: "127.0.0.1", Topic: topic, ID: int64(id), Machine: machine, V: 1})
		if err != nil {
			t.Fatal(err)
		}
		if tk := monitor.Publish(discovery.DefaultReportTopic, 1, false, b); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
			t.Fatalf("publish report: %v", tk.Error())
		}
	}
	fromHost := u.mark()
	report("pi1", machine, "pi1/status", 75)
	report("pi1", machine, discovery.DefaultReportTopic, 76)
	report("pi2", "a-machine-of-pi2", "test/replies", 77)
	report("pi1", machine, "test/replies", 78)
	m, i := replies.await(0, "the display's reply", func(m userMsg) bool { return m.topic == "test/replies" })
	r, err := discovery.ParseReply([]byte(m.payload))
	if err != nil {
		t.Fatalf("reply %s: %v", m.payload, err)
	}
	if r.Hostname != "pi1" || r.Machine != machine || r.ID != 78 || r.ReplyTo != "tester" || r.Cmd != discovery.CmdGetStatus ||
		r.Function != "display" || !r.External || r.Setup != "pi1/display/setup" || len(r.Outputs) != 1 {
		t.Errorf("reply %+v, want pi1's display answering report 78", r)
	}
	if strings.Contains(m.payload, `"state"`) {
		t.Errorf("reply %s carries the service's state", m.payload)
	}
	if m, _, ok := replies.tryAwait(i+1, 300*time.Millisecond, func(m userMsg) bool { return m.topic == "test/replies" }); ok {
		t.Errorf("a second reply, to a report for another host: %s", m.payload)
	}
	for _, m := range u.since(fromHost) {
		if m.topic == "pi1/status" {
			t.Errorf("a report naming pi1/status as its reply topic was answered: %s", m.payload)
		}
	}
	select {
	case m := <-looped:
		t.Errorf("a report naming the report topic as its reply topic was answered: %s", m)
	default:
	}
}

// TestExternalPythonService runs examples/python/display.py beside agent
// pi1 (pi2 runs too, so the script sees reports for a host not its own).
func TestExternalPythonService(t *testing.T) {
	requirePythonPaho(t)
	forEachBroker(t, func(t *testing.T, broker string) {
		c := newTestCluster(t, broker)
		a := c.start(c.config("pi1"))
		c.start(c.config("pi2"))
		u := newMQTTUser(t, broker, "pi1")
		args := []string{"--host", "pi1", "--broker", broker, "--delay", "0.2",
			"--state", filepath.Join(t.TempDir(), "display.json"), "--keepalive", "5"}

		from := u.mark()
		p := startDisplay(t, args...)
		awaitListing(t, u, a, from, true)
		sweepDisplay(t, c)
		checkReportsAnswered(t, broker, u, a.Machine())

		// Driven like a built-in service.
		d := okSetup(t, displayRequest(u, "pi1/display/setup", []byte(`{"id":"s1","lines":4,"width":20}`)))
		if d.Config != (displayConfig{Lines: 4, Width: 20}) || d.Halted {
			t.Errorf("setup result %+v, want 4 lines of 20, not halted", d)
		}
		var desc struct {
			State setupData `json:"state"`
		}
		u.await(0, "the retained description with the new setup", func(m userMsg) bool {
			return m.topic == "pi1/display/description" && json.Unmarshal([]byte(m.payload), &desc) == nil &&
				desc.State.Config == displayConfig{Lines: 4, Width: 20}
		})

		for _, tc := range []struct {
			name, topic, payload string
			id                   any // the request's id, echoed; nil when it has none
			code, field          string
		}{
			{"setup field of the wrong type", "setup", `{"id":"b1","lines":"two"}`, "b1", "malformed", "lines"},
			{"setup field out of range", "setup", `{"id":"b2","lines":9,"width":20}`, "b2", "invalid", "lines"},
			{"setup with an unknown field", "setup", `{"id":3,"lines":2,"colour":"red"}`, 3.0, "malformed", "colour"},
			{"setup merge not a bool", "setup", `{"id":"b4","merge":"yes"}`, "b4", "malformed", "merge"},
			{"setup not JSON", "setup", `{"lines":`, nil, "malformed", ""},
			{"setup not an object", "setup", `[2]`, nil, "malformed", ""},
			{"text too wide", "set/text", `{"id":"b5","value":"this line is wider than twenty"}`, "b5", "invalid", "value"},
			{"too many lines", "set/text", "a\nb\nc\nd\ne", nil, "invalid", "value"},
			{"text not a string", "set/text", `{"id":"b6","value":7}`, "b6", "malformed", "value"},
			{"set without a value", "set/text", `{"id":"b7"}`, "b7", "malformed", "value"},
			{"no such output", "set/colour", "red", nil, "not_found", ""},
			{"unknown command", "control", `{"id":"b8","cmd":"reboot"}`, "b8", "invalid", "cmd"},
			{"get of nothing", "get/pins", `{"id":"b9"}`, "b9", "not_found", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := displayRequest(u, "pi1/display/"+tc.topic, []byte(tc.payload))
				ps := r.problems()
				if r.Status != "error" || len(ps) == 0 || ps[0].Code != tc.code || ps[0].Field != tc.field || ps[0].Message == "" {
					t.Fatalf("result %+v, problems %+v; want %s on field %q", r, ps, tc.code, tc.field)
				}
				if r.ID != tc.id {
					t.Errorf("result id %v (%T), want %v", r.ID, r.ID, tc.id)
				}
			})
		}
		if d := okSetup(t, displayRequest(u, "pi1/display/setup", nil)); d.Config != (displayConfig{Lines: 4, Width: 20}) {
			t.Errorf("after the refused setups the setup is %+v, want it unchanged", d.Config)
		}

		from = u.mark()
		r := displayRequest(u, "pi1/display/set/text", []byte(`{"id":"t1","value":"hello\nworld"}`))
		if r.Status != "ok" || r.Op != services.OpSet || r.ID != "t1" {
			t.Fatalf("set: %+v, problems %+v", r, r.problems())
		}
		u.awaitValue(from, "pi1/display/output/text", `"hello\nworld"`)
		if got := outputText(t, u); got != "hello\nworld" {
			t.Errorf("retained output %q, want hello, world", got)
		}

		// Estop blanks the display and refuses sets until recover.
		if r := displayRequest(u, "pi1/display/control", []byte("estop")); r.Status != "ok" || !r.halted() {
			t.Fatalf("estop: %+v", r)
		}
		if got := outputText(t, u); got != "" {
			t.Errorf("output after estop %q, want blank", got)
		}
		if r := displayRequest(u, "pi1/display/set/text", []byte("hi")); r.Status != "error" || r.problems()[0].Code != "halted" {
			t.Errorf("set while halted: %+v", r)
		}
		if r := displayRequest(u, "pi1/display/control", []byte(`{"cmd":"recover"}`)); r.Status != "ok" || r.halted() {
			t.Fatalf("recover: %+v", r)
		}

		// Killed without a word: the broker publishes its will, and the
		// host stops listing it.
		from = u.mark()
		if err := p.signal(syscall.SIGKILL); err == nil {
			t.Fatal("display.py exited cleanly on SIGKILL?")
		}
		awaitListing(t, u, a, from, false)
		if got := u.retained("pi1/display/status"); got != "offline" {
			t.Errorf("retained status %q after SIGKILL, want the will, offline", got)
		}

		// A request left retained while it was down is ignored when it
		// comes back: the broker hands it over as retained.
		stale := connectUser(t, broker, userID("stale"))
		if tk := stale.Publish("pi1/display/set/text", 1, true, `{"id":"stale","value":"stale"}`); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
			t.Fatalf("publish retained request: %v", tk.Error())
		}
		stale.Disconnect(0)

		from = u.mark()
		p = startDisplay(t, args...)
		awaitListing(t, u, a, from, true)
		if d := okSetup(t, displayRequest(u, "pi1/display/setup", nil)); d.Config != (displayConfig{Lines: 4, Width: 20}) || d.Halted {
			t.Errorf("setup after a restart %+v, want the one applied before, not halted", d)
		}
		if r := displayRequest(u, "pi1/display/get", []byte(`{"id":"after"}`)); r.Status != "ok" || r.ID != "after" {
			t.Fatalf("get: %+v", r)
		}
		for _, m := range u.since(from) {
			if m.topic == "pi1/display/result" && strings.Contains(m.payload, `"stale"`) {
				t.Errorf("the retained request was served: %s", m.payload)
			}
		}
		if got := outputText(t, u); got != "" {
			t.Errorf("output after a restart %q, want blank (the retained request must be ignored)", got)
		}
		sweepDisplay(t, c)

		// SIGTERM: offline, and nothing else cleared.
		if r := displayRequest(u, "pi1/display/set/text", []byte("bye")); r.Status != "ok" {
			t.Fatalf("set: %+v", r)
		}
		from = u.mark()
		if err := p.signal(syscall.SIGTERM); err != nil {
			t.Errorf("display.py on SIGTERM: %v, want exit status 0", err)
		}
		awaitListing(t, u, a, from, false)
		if got := u.retained("pi1/display/status"); got != "offline" {
			t.Errorf("retained status %q after SIGTERM, want offline", got)
		}
		if got := outputText(t, u); got != "bye" {
			t.Errorf("retained output %q after SIGTERM, want it kept", got)
		}
		if got := u.retained("pi1/display/description"); !strings.Contains(got, `"function":"display"`) {
			t.Errorf("retained description %q after SIGTERM, want it kept", got)
		}
	})
}

// TestExternalPythonReconnect: a broker restarted with nothing retained
// gets the script's description, status and output again, and its
// requests are served again, once the script has reconnected by itself.
// (The agent reconnects on its own schedule, seconds later under -race;
// its listing of the display is TestExternalPythonService's.)
func TestExternalPythonReconnect(t *testing.T) {
	requirePythonPaho(t)
	b := embeddedBroker(t)
	addr := b.Addr().String()
	c := newTestCluster(t, b.URL())
	a := c.start(c.config("pi1"))
	u := newMQTTUser(t, b.URL(), "pi1")
	p := startDisplay(t, "--host", "pi1", "--broker", b.URL(), "--state", "")
	awaitListing(t, u, a, 0, true)
	if r := displayRequest(u, "pi1/display/set/text", []byte("before")); r.Status != "ok" {
		t.Fatalf("set: %+v", r)
	}

	b.Close()
	b2, err := broker.Start(addr, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every client goes before the broker: see stopAll.
	t.Cleanup(func() { p.kill(); c.stopAll(); b2.Close() })
	start := time.Now()
	u = newMQTTUser(t, b2.URL(), "pi1")
	u.await(0, "the display's status back", func(m userMsg) bool {
		return m.topic == "pi1/display/status" && m.payload == "online"
	})
	t.Logf("display.py back online %v after the broker restarted", time.Since(start).Round(time.Millisecond))
	if got := u.retained("pi1/display/description"); !strings.Contains(got, `"function":"display"`) {
		t.Errorf("retained description after the broker restarted: %q", got)
	}
	if got := outputText(t, u); got != "before" {
		t.Errorf("retained output after the broker restarted: %q, want before", got)
	}
	if r := displayRequest(u, "pi1/display/get", []byte(`{"id":1}`)); r.Status != "ok" {
		t.Errorf("get after the broker restarted: %+v", r)
	}
}

// TestExternalPythonUnderPrefix: the example program under the agent's
// mqtt.topic_prefix (--topic-prefix) lives under the prefix like the
// built-in services: the host lists it, a sweep under the prefix lists it
// with its prefixed topics, and it answers on its prefixed result topic.
func TestExternalPythonUnderPrefix(t *testing.T) {
	requirePythonPaho(t)
	b := embeddedBroker(t)
	c := newTestCluster(t, b.URL())
	cfg := c.config("pi1")
	cfg.MQTT.TopicPrefix = "site1"
	a := c.start(cfg)
	startDisplay(t, "--host", "pi1", "--broker", b.URL(), "--topic-prefix", "site1", "--delay", "0.2",
		"--state", filepath.Join(t.TempDir(), "display.json"), "--keepalive", "5")
	waitFor(t, 10*time.Second, "pi1 to list display", func() bool {
		return slices.ContainsFunc(a.Describe().Services, func(d services.Description) bool { return d.Function == "display" })
	})

	sc := c.config("sweeper")
	sc.MQTT.TopicPrefix = "site1"
	inv, err := cluster.Sweep(context.Background(), sc.Client(), cluster.SweepOptions{Expect: 1, Timeout: 5 * time.Second}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Sweep.Complete || len(inv.Hosts) != 1 {
		t.Fatalf("sweep under the prefix: complete %v, hosts %+v", inv.Sweep.Complete, inv.Hosts)
	}
	i := slices.IndexFunc(inv.Hosts[0].Services, func(s discovery.ServiceInfo) bool { return s.Function == "display" })
	if i < 0 || inv.Hosts[0].Services[i].Setup != "site1/pi1/display/setup" {
		t.Fatalf("sweep under the prefix: services %+v, want display with site1/pi1/display/setup", inv.Hosts[0].Services)
	}

	u := newMQTTUser(t, b.URL(), "site1/pi1")
	from := u.mark()
	u.publish("site1/pi1/display/set/text", []byte(`{"id":"p1","value":"hello"}`))
	m, _ := u.await(from, "the display's result under the prefix", func(m userMsg) bool { return m.topic == "site1/pi1/display/result" })
	var r displayResult
	if err := json.Unmarshal([]byte(m.payload), &r); err != nil || r.Status != "ok" {
		t.Errorf("result %q: %v", m.payload, err)
	}
}
