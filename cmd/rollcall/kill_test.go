package main_test

// The harness of the tests that kill the real binary: an agent run on
// loopback (no namespaces, no root) with its own embedded broker, a
// configuration file and a state directory, killed with SIGKILL and
// started again on the same state, and a plain MQTT client watching the
// host's topics.

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

// killAgent is how to run the agent of host: the binary, its arguments
// and the URL of the broker it embeds.
type killAgent struct {
	bin, host, url string
	args           []string
}

// newKillAgent builds the binary and prepares an agent of host under
// --sim with config as its configuration file.
func newKillAgent(t testing.TB, host, config string) *killAgent {
	t.Helper()
	k := &killAgent{bin: buildRollcall(t), host: host}
	dir := t.TempDir()
	file := filepath.Join(dir, "rollcall.yaml")
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	brokerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	k.url = "tcp://" + brokerAddr
	k.args = []string{"agent", "--sim", "--host", host, "--state-dir", filepath.Join(dir, "state"),
		"--embedded-broker", brokerAddr, "--port", fmt.Sprint(freePort(t, "udp")), "--config", file}
	return k
}

// start starts the agent, and a client watching its host.
func (k *killAgent) start(t testing.TB) (*proc, *hostWatch) {
	t.Helper()
	p := startProc(t, k.bin, k.args...)
	return p, watchHost(t, k.url, k.host)
}

// kill kills p with SIGKILL, no grace, waits until it is gone and closes
// w: what p answered ok before must be on disk.
func kill(t testing.TB, p *proc, w *hostWatch) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
	w.close()
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

// awaitService waits until service answers a get: the agent connects
// before its services subscribe, and a request published before then is
// lost. The runtime subscribes to get/# last.
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

// awaitGPIO is awaitService for gpio.
func (w *hostWatch) awaitGPIO(t testing.TB) {
	t.Helper()
	w.awaitService(t, "gpio")
}

func (w *hostWatch) awaitValue(t testing.TB, from int, topic, want string) {
	t.Helper()
	w.await(t, from, topic+" = "+want, func(m killMsg) bool { return m.topic == topic && m.payload == want })
}

type killResult struct {
	ID     json.RawMessage `json:"id"`
	Op     string          `json:"op"`
	Status string          `json:"status"`
	Data   json.RawMessage `json:"data"`
	Error  json.RawMessage `json:"error"`
}

func (r killResult) String() string {
	return fmt.Sprintf("id %s status %s data %s error %s", r.ID, r.Status, r.Data, r.Error)
}

// request publishes payload to topic, a request topic of one of the
// host's services (<host>/<service>/<op>[/...]), and returns the next
// result of that service with the request's op: a read error the service
// reports unasked meanwhile is not it.
func (w *hostWatch) request(t testing.TB, topic string, payload []byte) killResult {
	t.Helper()
	service, rest, _ := strings.Cut(strings.TrimPrefix(topic, w.host+"/"), "/")
	op, _, _ := strings.Cut(rest, "/")
	from := w.mark()
	if tk := w.cl.Publish(topic, 1, false, payload); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tk.Error())
	}
	var r killResult
	w.await(t, from, "a result for "+topic, func(m killMsg) bool {
		if m.topic != w.host+"/"+service+"/result" {
			return false
		}
		r = killResult{}
		if err := json.Unmarshal([]byte(m.payload), &r); err != nil {
			t.Errorf("result %q: %v", m.payload, err)
			return false
		}
		return r.Op == op
	})
	return r
}

// awaitTopic waits for a message with a payload on topic from index from
// on.
func (w *hostWatch) awaitTopic(t testing.TB, from int, topic string) killMsg {
	t.Helper()
	return w.await(t, from, "a message on "+topic, func(m killMsg) bool { return m.topic == topic && m.payload != "" })
}

// since returns the messages from index from on.
func (w *hostWatch) since(from int) []killMsg {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]killMsg(nil), w.msgs[from:]...)
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
