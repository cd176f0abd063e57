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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
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
	bin := buildRollcall(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "rollcall.yaml")
	if err := os.WriteFile(config, []byte(killConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	brokerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	args := []string{"agent", "--sim", "--host", "k1", "--state-dir", state,
		"--embedded-broker", brokerAddr, "--port", fmt.Sprint(freePort(t, "udp")), "--config", config}

	a := startProc(t, bin, args...)
	w := watchHost(t, "tcp://"+brokerAddr, "k1")
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
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.wait(t)
	w.close()
	published := w.lastVersion()

	a = startProc(t, bin, args...)
	w = watchHost(t, "tcp://"+brokerAddr, "k1")
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

// freePort returns a port that was free on loopback a moment ago.
func freePort(t testing.TB, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// proc is the agent process, its output kept for a failure report.
type proc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

func startProc(t testing.TB, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: new(bytes.Buffer), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			p.dump(t)
		}
	})
	return p
}

func (p *proc) wait(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not exit")
	}
}

func (p *proc) dump(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		t.Logf("agent output:\n%s", p.out.String())
	default: // still running: its buffer is being written
	}
}

// hostWatch is a plain MQTT client subscribed to <host>/#.
type hostWatch struct {
	url, host string
	cl        paho.Client
	mu        sync.Mutex
	msgs      []killMsg
	more      chan struct{}
}

type killMsg struct{ topic, payload string }

var watchSeq int

func connectPaho(t testing.TB, url, id string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetAutoReconnect(false).SetConnectTimeout(time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for {
		cl := paho.NewClient(o)
		tk := cl.Connect()
		if tk.WaitTimeout(2*time.Second) && tk.Error() == nil {
			return cl
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect to %s: %v", url, tk.Error())
		}
		time.Sleep(50 * time.Millisecond) // the agent is still starting its broker
	}
}

func watchHost(t testing.TB, url, host string) *hostWatch {
	t.Helper()
	watchSeq++
	w := &hostWatch{url: url, host: host, more: make(chan struct{})}
	w.cl = connectPaho(t, url, fmt.Sprintf("kill-test-%d", watchSeq))
	t.Cleanup(w.close)
	tk := w.cl.Subscribe(host+"/#", 1, func(_ paho.Client, m paho.Message) {
		w.mu.Lock()
		w.msgs = append(w.msgs, killMsg{m.Topic(), string(m.Payload())})
		close(w.more)
		w.more = make(chan struct{})
		w.mu.Unlock()
	})
	if !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("subscribe: %v", tk.Error())
	}
	return w
}

func (w *hostWatch) close() { w.cl.Disconnect(0) }

func (w *hostWatch) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.msgs)
}

func (w *hostWatch) await(t testing.TB, from int, what string, match func(killMsg) bool) killMsg {
	t.Helper()
	m, ok := w.tryAwait(from, 15*time.Second, match)
	if !ok {
		t.Fatalf("timed out waiting for %s", what)
	}
	return m
}

func (w *hostWatch) tryAwait(from int, d time.Duration, match func(killMsg) bool) (killMsg, bool) {
	timeout := time.After(d)
	for i := from; ; {
		w.mu.Lock()
		for ; i < len(w.msgs); i++ {
			if match(w.msgs[i]) {
				m := w.msgs[i]
				w.mu.Unlock()
				return m, true
			}
		}
		more := w.more
		w.mu.Unlock()
		select {
		case <-more:
		case <-timeout:
			return killMsg{}, false
		}
	}
}

// awaitGPIO waits until the gpio service answers a get: the agent
// connects before its services subscribe, and a request published before
// then is lost. gpio subscribes to get/# last.
func (w *hostWatch) awaitGPIO(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		id := fmt.Sprintf(`"ready-%d"`, i)
		from := w.mark()
		w.cl.Publish(w.host+"/gpio/get", 1, false, `{"id":`+id+`}`)
		if _, ok := w.tryAwait(from, 200*time.Millisecond, func(m killMsg) bool {
			return m.topic == w.host+"/gpio/result" && strings.Contains(m.payload, `"id":`+id)
		}); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gpio service of %s never answered", w.host)
		}
	}
}

func (w *hostWatch) awaitValue(t testing.TB, from int, topic, want string) {
	t.Helper()
	w.await(t, from, topic+" = "+want, func(m killMsg) bool { return m.topic == topic && m.payload == want })
}

type killResult struct {
	ID     json.RawMessage `json:"id"`
	Status string          `json:"status"`
	Data   json.RawMessage `json:"data"`
	Error  json.RawMessage `json:"error"`
}

func (r killResult) String() string {
	return fmt.Sprintf("id %s status %s data %s error %s", r.ID, r.Status, r.Data, r.Error)
}

func (w *hostWatch) request(t testing.TB, topic string, payload []byte) killResult {
	t.Helper()
	from := w.mark()
	if tk := w.cl.Publish(topic, 1, false, payload); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tk.Error())
	}
	m := w.await(t, from, "a result for "+topic, func(m killMsg) bool { return m.topic == w.host+"/gpio/result" })
	var r killResult
	if err := json.Unmarshal([]byte(m.payload), &r); err != nil {
		t.Fatalf("result %q: %v", m.payload, err)
	}
	return r
}

// retained is topic's retained value, as a new subscriber gets it.
func (w *hostWatch) retained(t testing.TB, topic string) string {
	t.Helper()
	watchSeq++
	cl := connectPaho(t, w.url, fmt.Sprintf("kill-test-late-%d", watchSeq))
	defer cl.Disconnect(0)
	got := make(chan string, 1)
	cl.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		if m.Retained() {
			select {
			case got <- string(m.Payload()):
			default:
			}
		}
	})
	select {
	case v := <-got:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no retained message on %s", topic)
		return ""
	}
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
