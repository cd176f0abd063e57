package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/agent/broker"
	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/agent/clustertest"
	"github.com/rollcall/rollcall/agent/dashboard"
	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/sensors/ain"
	"github.com/rollcall/rollcall/sensors/dac"
	"github.com/rollcall/rollcall/sensors/dht22"
	"github.com/rollcall/rollcall/sensors/sonar"
	"github.com/rollcall/rollcall/services"
)

// The tests listen on loopback ports of their own: TCP 27500–27599, UDP
// 27600–27699, so that they run beside other suites on a shared machine.
var (
	portMu          sync.Mutex
	nextTCP, nextUD = 27500, 27600
)

// listenTCP binds the next free TCP port of the range.
func listenTCP(t testing.TB) net.Listener {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 100 {
		p := nextTCP
		if nextTCP++; nextTCP == 27600 {
			nextTCP = 27500
		}
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			return l
		}
	}
	t.Fatal("no free TCP port in 27500–27599")
	return nil
}

// udpPort finds a free UDP port of the range for the hosts' monitors.
func udpPort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 100 {
		p := nextUD
		if nextUD++; nextUD == 27700 {
			nextUD = 27600
		}
		if c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			c.Close()
			return p
		}
	}
	t.Fatal("no free UDP port in 27600–27699")
	return 0
}

func testLogger() *slog.Logger {
	if testing.Verbose() && os.Getenv("ROLLCALL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// embeddedBroker starts rollcall's own broker (mochi-mqtt).
func embeddedBroker(t testing.TB) string {
	t.Helper()
	l := listenTCP(t)
	addr := l.Addr().String()
	l.Close()
	b, err := broker.Start(addr, testLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b.URL()
}

// mosquitto starts a stock mosquitto on a free loopback port.
func mosquitto(t testing.TB) string {
	t.Helper()
	return clustertest.LocalMosquitto(t, "")
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// simCluster is simulated hosts in this process sharing one broker, as
// `rollcall demo` runs them. Every host has gpio: outputs lamp and
// pump_drive, a PWM output dimmer, inputs float_switch (wired to
// pump_drive) and button. The first host also has a DHT22 and a sonar.
type simCluster struct {
	t      testing.TB
	broker string
	port   int
	dir    string
	mu     sync.Mutex
	agents map[string]*running
}

type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func newSimCluster(t testing.TB, brokerURL string, hosts ...string) *simCluster {
	t.Helper()
	c := &simCluster{t: t, broker: brokerURL, port: udpPort(t), dir: t.TempDir(), agents: map[string]*running{}}
	t.Cleanup(c.stopAll)
	for i, h := range hosts {
		c.start(h, i == 0)
	}
	return c
}

func (c *simCluster) config(host string, sensors bool) agent.Config {
	cfg := agent.DefaultConfig()
	cfg.Host = host
	cfg.StateDir = filepath.Join(c.dir, host)
	cfg.Sim = true
	cfg.LogLevel = "error"
	cfg.MQTT.Broker, cfg.MQTT.Keepalive = c.broker, 5*time.Second
	cfg.Discovery.Port = c.port
	cfg.Discovery.Interfaces = []string{"lo"}
	cfg.Services = []string{gpio.Name}
	cfg.Blocks[gpio.Name] = &gpio.Config{
		Driver: "sim",
		Output: []gpio.OutputPin{{Name: "lamp", Pin: 23}, {Name: "pump_drive", Pin: 25, Pull: "down"}},
		PWM:    []gpio.PWMPin{{Name: "dimmer", Pin: 18, Period: 1000}},
		Input:  []gpio.InputPin{{Name: "float_switch", Pin: 17, Pull: "down"}, {Name: "button", Pin: 22, Pull: "down"}},
		Wiring: []gpio.Wire{{From: 25, To: 17}},
	}
	if sensors {
		cfg.Services = append(cfg.Services, ain.Name, dac.Name, dht22.Name, sonar.Name)
		cfg.Blocks[ain.Name] = &ain.Config{
			Chips:    []ain.ChipConfig{{Name: "adc", Chip: "sim"}},
			Channels: []ain.ChannelConfig{{Name: "light", Chip: "adc", Channel: 0, Interval: services.Duration(time.Second), Deadband: 0.01}},
		}
		cfg.Blocks[dac.Name] = &dac.Config{
			Chips:   []dac.ChipConfig{{Name: "dac0", Chip: "sim"}},
			Outputs: []dac.OutputConfig{{Name: "level", Chip: "dac0"}},
		}
		cfg.Blocks[dht22.Name] = &dht22.Config{Sensors: []dht22.SensorConfig{
			{Name: "air", Driver: "sim", Pin: 4, Interval: services.Duration(5 * time.Second)}}}
		cfg.Blocks[sonar.Name] = &sonar.Config{Rangers: []sonar.RangerConfig{
			{Name: "front", Driver: "sim", Trigger: 5, Echo: 6, Interval: services.Duration(2 * time.Second), Deadband: 0.01,
				SimTarget: sonar.SimTarget{Topic: host + "/gpio/output/lamp", High: 1, Near: 0.5, Far: 2.5}}}}
	}
	return cfg
}

// start runs a host until the test ends or stop is called, and waits
// until it is online.
func (c *simCluster) start(host string, sensors bool) {
	c.t.Helper()
	cfg := c.config(host, sensors)
	if errs := cfg.Validate(); len(errs) > 0 {
		c.t.Fatalf("host %s: %v", host, errs)
	}
	a, err := agent.New(cfg, testLogger().With("host", host))
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := a.Run(ctx); err != nil {
			c.t.Errorf("agent %s: %v", host, err)
		}
	}()
	c.mu.Lock()
	c.agents[host] = r
	c.mu.Unlock()
	select {
	case <-a.Ready():
	case <-time.After(10 * time.Second):
		c.t.Fatalf("agent %s not ready", host)
	}
	eventually(c.t, 10*time.Second, "agent "+host+" connected", a.Connected)
}

// stop stops a host cleanly: it says offline.
func (c *simCluster) stop(host string) {
	c.mu.Lock()
	r := c.agents[host]
	delete(c.agents, host)
	c.mu.Unlock()
	if r != nil {
		r.cancel()
		<-r.done
	}
}

func (c *simCluster) stopAll() {
	c.mu.Lock()
	var hosts []string
	for h := range c.agents {
		hosts = append(hosts, h)
	}
	c.mu.Unlock()
	for _, h := range hosts {
		c.stop(h)
	}
}

// client is a cluster client such as a CLI verb uses.
func (c *simCluster) client(t testing.TB, role string) *cluster.Client {
	t.Helper()
	cl, err := cluster.Dial(context.Background(), c.clientConfig(), role, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (c *simCluster) clientConfig() cluster.Config {
	return c.config("tester", false).Client()
}

// retained reads one retained topic on a fresh session (a session
// subscribes a filter once).
func (c *simCluster) retained(t testing.TB, topic string) string {
	t.Helper()
	cl, err := cluster.Dial(context.Background(), c.clientConfig(), "check", testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got, err := cl.Retained(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return string(got[topic])
}

// dashboardServer runs a dashboard over the cluster until the test ends,
// served by httptest on a port of the range, and waits until it has read
// the cluster.
func dashboardServer(t testing.TB, c *simCluster, cfg dashboard.Config) (*dashboard.Server, *httptest.Server) {
	t.Helper()
	srv, err := dashboard.New(dashboard.Options{Config: cfg, Cluster: c.clientConfig(), Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Follow(ctx) }()
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = listenTCP(t)
	hs.Start()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dashboard: %v", err)
		}
		hs.Close()
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("dashboard stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("dashboard not ready after 10s")
	}
	return srv, hs
}

// event is one server-sent event.
type event struct {
	name string
	data json.RawMessage
}

// events opens the event stream and delivers its events until the test
// ends.
func events(t testing.TB, url string, header http.Header) <-chan event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/events", nil)
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		t.Fatalf("GET /api/events: %s, %s", res.Status, res.Header.Get("Content-Type"))
	}
	ch := make(chan event, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = json.RawMessage(strings.TrimPrefix(line, "data: "))
			case line == "" && ev.name != "":
				select {
				case ch <- ev:
				case <-ctx.Done():
					return
				}
				ev = event{}
			}
		}
	}()
	t.Cleanup(func() { cancel(); res.Body.Close(); <-done })
	return ch
}

// waitEvent returns the first event for which match holds.
func waitEvent(t testing.TB, ch <-chan event, d time.Duration, what string, match func(event) bool) event {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event stream ended waiting for %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no event %s after %v", what, d)
		}
	}
}
