package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rollcall/rollcall/agent/broker"
	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/agent/clustertest"
	"github.com/rollcall/rollcall/agent/session"
	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/services"
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testCluster is a few in-process agents on loopback sharing one broker and
// one UDP port, as the demo runs them.
type testCluster struct {
	t      testing.TB
	broker string
	port   int
	dir    string
	agents map[string]*running
}

type running struct {
	agent  *Agent
	cancel context.CancelFunc
	done   chan struct{}
}

func newTestCluster(t testing.TB, broker string) *testCluster {
	t.Helper()
	port, err := freeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, broker: broker, port: port, dir: t.TempDir(), agents: map[string]*running{}}
	t.Cleanup(c.stopAll)
	return c
}

// stopAll stops every agent still running. A test that closes a broker in
// its own cleanup calls it first: mochi-mqtt v2.7.9 can deadlock in Close
// (a recursive RLock in Clients.GetByListener) when a client reconnects
// while it runs.
func (c *testCluster) stopAll() {
	for name := range c.agents {
		c.stop(name)
	}
}

func (c *testCluster) config(host string) Config {
	cfg := DefaultConfig()
	cfg.Host = host
	cfg.StateDir = filepath.Join(c.dir, host)
	cfg.Sim = true
	cfg.Services = []string{"gpio"}
	cfg.MQTT.Broker, cfg.MQTT.Keepalive = c.broker, 2*time.Second
	cfg.Discovery.Port = c.port
	cfg.Discovery.Interfaces = []string{"lo"}
	cfg.Blocks[gpio.Name] = &gpio.Config{
		Output: []gpio.OutputPin{{Name: "pump_drive", Pin: 25}, {Name: "lamp", Pin: 23}},
		Input:  []gpio.InputPin{{Name: "float_switch", Pin: 17, Pull: "down"}, {Name: "button", Pin: 22, Pull: "down"}},
	}
	return cfg
}

// start runs an agent until the test ends or stop is called, and waits
// until its retained status says online.
func (c *testCluster) start(cfg Config) *Agent {
	c.t.Helper()
	a, err := New(cfg, testLogger(c.t).With("host", cfg.Host))
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{agent: a, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := a.Run(ctx); err != nil {
			c.t.Errorf("agent %s: %v", cfg.Host, err)
		}
	}()
	c.agents[cfg.Host+"/"+a.Machine()] = r
	select {
	case <-a.Ready():
	case <-time.After(10 * time.Second):
		c.t.Fatalf("agent %s not ready", cfg.Host)
	}
	waitFor(c.t, 10*time.Second, "agent "+cfg.Host+" connected", a.Connected)
	return a
}

func (c *testCluster) stop(key string) {
	r := c.agents[key]
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
	delete(c.agents, key)
}

func (c *testCluster) sweepConfig() cluster.Config {
	return c.config("sweeper").Client()
}

func (c *testCluster) sweep(opts cluster.SweepOptions) cluster.Inventory {
	c.t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	inv, err := cluster.Sweep(context.Background(), c.sweepConfig(), opts, testLogger(c.t))
	if err != nil {
		c.t.Fatal(err)
	}
	return inv
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func embeddedBroker(t testing.TB) *broker.Broker {
	t.Helper()
	b, err := broker.Start("127.0.0.1:0", testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// mosquitto starts a stock mosquitto on a free loopback port.
func mosquitto(t testing.TB) string {
	t.Helper()
	return clustertest.LocalMosquitto(t, "")
}

func checkSweep(t *testing.T, inv cluster.Inventory, hosts ...string) {
	t.Helper()
	if !inv.Sweep.Complete || len(inv.Missing) > 0 {
		t.Errorf("sweep incomplete: complete=%v missing=%v", inv.Sweep.Complete, inv.Missing)
	}
	var got []string
	for _, h := range inv.Hosts {
		got = append(got, h.Host)
		if h.IPAddr != "127.0.0.1" {
			t.Errorf("host %s: ipaddr %q, want 127.0.0.1", h.Host, h.IPAddr)
		}
		var fns []string
		for _, s := range h.Services {
			fns = append(fns, s.Function)
			if s.Function == "gpio" && (len(s.Inputs) != 2 || len(s.Outputs) != 2 || s.Setup != h.Host+"/gpio/setup") {
				t.Errorf("host %s gpio: inputs %v outputs %v setup %q", h.Host, s.Inputs, s.Outputs, s.Setup)
			}
		}
		if !slices.Contains(fns, "gpio") {
			t.Errorf("host %s: services %v lack gpio", h.Host, fns)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, hosts) {
		t.Errorf("hosts %v, want %v", got, hosts)
	}
}

func TestSweepEmbeddedBroker(t *testing.T) {
	b := embeddedBroker(t)
	c := newTestCluster(t, b.URL())
	for _, h := range []string{"pi1", "pi2", "pi3"} {
		c.start(c.config(h))
	}
	inv := c.sweep(cluster.SweepOptions{Expect: 3})
	checkSweep(t, inv, "pi1", "pi2", "pi3")

	ci, err := cluster.ReadInventory(context.Background(), c.sweepConfig(), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ci.Hosts) != 3 {
		t.Fatalf("inventory has %d hosts, want 3: %+v", len(ci.Hosts), ci.Hosts)
	}
	for _, h := range ci.Hosts {
		if h.Status != "online" || h.Version == 0 || len(h.Services) != 1 || h.Machine == "" {
			t.Errorf("inventory host %+v", h)
		}
	}
	if ci.Sweep == nil || ci.Sweep.ID != inv.Sweep.ID {
		t.Errorf("inventory's last sweep %+v, want sweep %d", ci.Sweep, inv.Sweep.ID)
	}
}

func TestSweepMosquitto(t *testing.T) {
	c := newTestCluster(t, mosquitto(t))
	for _, h := range []string{"pi1", "pi2"} {
		c.start(c.config(h))
	}
	checkSweep(t, c.sweep(cluster.SweepOptions{Expect: 2}), "pi1", "pi2")
	// The retained inventory now lists both as online: a sweep with no
	// --expect still waits for both.
	checkSweep(t, c.sweep(cluster.SweepOptions{}), "pi1", "pi2")
}

// TestExternalClient answers reports the way the README tells any MQTT
// client to, with nothing of rollcall's code: it must appear in the sweep
// like a built-in service, on the shared report topic or on its own
// host's, and a client left on the shared topic of a cluster that reports
// per host hears nothing.
func TestExternalClient(t *testing.T) {
	tests := []struct {
		name      string
		perHost   bool
		subscribe string
		want      []string
	}{
		{"shared topic", false, "/udp/report", []string{"display_driver", "gpio"}},
		{"own host's topic", true, "/udp/report/pi1", []string{"display_driver", "gpio"}},
		{"shared topic, reports per host", true, "/udp/report", []string{"gpio"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := embeddedBroker(t)
			c := newTestCluster(t, b.URL())
			cfg := c.config("pi1")
			cfg.Discovery.ReportPerHost = tt.perHost
			c.start(cfg)

			o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("display-driver")
			cl := paho.NewClient(o)
			if tk := cl.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
				t.Fatal("external client connect:", tk.Error())
			}
			defer cl.Disconnect(0)
			tk := cl.Subscribe(tt.subscribe, 0, func(cl paho.Client, m paho.Message) {
				var report map[string]any
				if json.Unmarshal(m.Payload(), &report) != nil || report["hostname"] != "pi1" {
					return
				}
				report["function"] = "display_driver"
				report["inputs"] = []map[string]string{{"name": "text", "topic": "pi1/display/text", "type": "string"}}
				report["outputs"] = []any{}
				report["control"] = "pi1/display/control"
				report["setup"] = "pi1/display/setup"
				report["get"] = "pi1/display/get"
				b, _ := json.Marshal(report)
				cl.Publish(report["topic"].(string), 0, false, b)
			})
			if !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
				t.Fatal("external client subscribe:", tk.Error())
			}
			inv := c.sweep(cluster.SweepOptions{Expect: 1, Quiet: 300 * time.Millisecond})
			if len(inv.Hosts) != 1 {
				t.Fatalf("hosts: %+v", inv.Hosts)
			}
			var fns []string
			for _, s := range inv.Hosts[0].Services {
				fns = append(fns, s.Function)
				if s.Function == "display_driver" && (len(s.Inputs) != 1 || s.Inputs[0].Topic != "pi1/display/text" || s.Control != "pi1/display/control") {
					t.Errorf("display_driver answer: %+v", s)
				}
			}
			slices.Sort(fns)
			if !slices.Equal(fns, tt.want) {
				t.Errorf("services of pi1: %v, want %v", fns, tt.want)
			}
		})
	}
}

// A host name can complete the report topic, per host, into a topic
// rollcall keeps; the configuration says so before the monitor would.
func TestValidateReportPerHost(t *testing.T) {
	tests := []struct {
		name    string
		host    string
		topic   string
		perHost bool
		bad     bool
	}{
		{"default topic per host", "pi1", "/udp/report", true, false},
		{"shared, host named get", "get", "x", false, false},
		{"per host completes a request topic", "get", "x", true, true},
		{"per host completes a setup topic", "setup", "x/gpio", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Host = tt.host
			cfg.Discovery.ReportTopic = tt.topic
			cfg.Discovery.ReportPerHost = tt.perHost
			var fields []string
			for _, e := range cfg.Validate() {
				fields = append(fields, e.Field)
			}
			if got := slices.Contains(fields, "discovery.report_per_host"); got != tt.bad {
				t.Errorf("errors on %v; want one on discovery.report_per_host: %v", fields, tt.bad)
			}
		})
	}
}

// TestHostnameConflict: two machines both called raspberrypi are reported,
// never merged.
func TestHostnameConflict(t *testing.T) {
	b := embeddedBroker(t)
	c := newTestCluster(t, b.URL())
	a1 := c.start(c.config("raspberrypi"))
	cfg := c.config("raspberrypi")
	cfg.StateDir = filepath.Join(c.dir, "second-card")
	a2 := c.start(cfg)
	inv := c.sweep(cluster.SweepOptions{Expect: 1, Quiet: 300 * time.Millisecond})
	if len(inv.Conflicts) != 1 || inv.Conflicts[0].Host != "raspberrypi" {
		t.Fatalf("conflicts %+v, want raspberrypi", inv.Conflicts)
	}
	ms := inv.Conflicts[0].Machines
	slices.Sort(ms)
	want := []string{a1.Machine(), a2.Machine()}
	slices.Sort(want)
	if !slices.Equal(ms, want) {
		t.Errorf("conflict machines %v, want %v", ms, want)
	}
	if len(inv.Hosts) != 2 {
		t.Errorf("sweep lists %d hosts, want both machines", len(inv.Hosts))
	}
	waitFor(t, 5*time.Second, "inventory to show the conflict", func() bool {
		ci, err := cluster.ReadInventory(context.Background(), c.sweepConfig(), testLogger(t), nil)
		return err == nil && len(ci.Conflicts) == 1 && len(ci.Conflicts[0].Machines) == 2
	})
}

// TestStatusAndReconnect: a clean stop says offline; a broker that comes
// back empty gets the retained status and description again; the
// description version only goes up, across restarts too.
func TestStatusAndReconnect(t *testing.T) {
	b := embeddedBroker(t)
	addr := b.Addr().String()
	c := newTestCluster(t, b.URL())
	cfg := c.config("pi1")
	a := c.start(cfg)
	read := func() cluster.Host {
		ci, err := cluster.ReadInventory(context.Background(), c.sweepConfig(), testLogger(t), nil)
		if err != nil || len(ci.Hosts) != 1 {
			return cluster.Host{}
		}
		return ci.Hosts[0]
	}
	waitFor(t, 5*time.Second, "pi1 online with a description", func() bool {
		h := read()
		return h.Status == "online" && h.Version > 0
	})
	v1 := read().Version

	// The broker restarts with nothing retained.
	b.Close()
	b2, err := broker.Start(addr, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.stopAll(); b2.Close() })
	waitFor(t, 15*time.Second, "pi1 to republish after reconnect", func() bool {
		h := read()
		return h.Status == "online" && h.Machine == a.Machine()
	})

	// <host>/get makes it republish on demand.
	got := make(chan struct{}, 4)
	s, err := session.New(session.Options{Config: c.sweepConfig().MQTT, ClientID: "test-get"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	defer s.Close("", nil)
	s.Subscribe("pi1/description", func(services.Message) { got <- struct{}{} })
	<-got // the retained one
	s.Publish("pi1/get", 1, false, nil)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("pi1/get did not republish the description")
	}

	c.stop("pi1/" + a.Machine())
	waitFor(t, 5*time.Second, "pi1 offline after a clean stop", func() bool { return read().Status == "offline" })

	c.start(cfg)
	waitFor(t, 5*time.Second, "pi1 back online", func() bool { return read().Status == "online" })
	if h := read(); h.Version <= v1 || h.Machine != a.Machine() {
		t.Errorf("after restart: %+v, want version > %d and machine %s", h, v1, a.Machine())
	}
}

// TestSignedProbes: with a key, a signed sweep finds the host and an
// unsigned one does not.
func TestSignedProbes(t *testing.T) {
	b := embeddedBroker(t)
	c := newTestCluster(t, b.URL())
	cfg := c.config("pi1")
	cfg.Discovery.Key = "0123456789abcdef-shared"
	c.start(cfg)

	signed := c.sweepConfig()
	signed.Discovery.Key = cfg.Discovery.Key
	inv, err := cluster.Sweep(context.Background(), signed, cluster.SweepOptions{Hosts: []string{"pi1"}, Timeout: 3 * time.Second}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Hosts) != 1 || len(inv.Missing) != 0 {
		t.Fatalf("signed sweep: hosts %+v missing %v", inv.Hosts, inv.Missing)
	}
	inv = c.sweep(cluster.SweepOptions{Hosts: []string{"pi1"}, Timeout: 500 * time.Millisecond, NoRetained: true})
	if len(inv.Hosts) != 1 || inv.Hosts[0].Status != cluster.StatusMissing || !slices.Equal(inv.Missing, []string{"pi1"}) {
		t.Fatalf("unsigned sweep: hosts %+v missing %v, want pi1 missing", inv.Hosts, inv.Missing)
	}
}

func TestMissingHostNamed(t *testing.T) {
	b := embeddedBroker(t)
	c := newTestCluster(t, b.URL())
	c.start(c.config("pi1"))
	inv := c.sweep(cluster.SweepOptions{Hosts: []string{"pi1", "ghost"}, Timeout: 400 * time.Millisecond})
	if !slices.Equal(inv.Missing, []string{"ghost"}) {
		t.Errorf("missing %v, want [ghost]", inv.Missing)
	}
	if inv.Sweep.Probes < 2 {
		t.Errorf("probes %d: a missing host should cause retransmissions", inv.Sweep.Probes)
	}
	if !strings.Contains(fmt.Sprint(inv.Hosts), "pi1") {
		t.Errorf("pi1 not in %+v", inv.Hosts)
	}
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// slowConfig is the configuration of a test service whose hardware takes
// as long as the test wants to apply a setup: a sysfs PWM export that
// spins, say.
type slowConfig struct {
	Outputs []string `json:"outputs"`
}

func (slowConfig) Check(services.Checker) services.Errors { return nil }
func (slowConfig) Claims() []services.Claim               { return nil }

// slowHardware blocks every Apply after the first until the test sends on
// its channel.
type slowHardware struct {
	rt      *services.Runtime[slowConfig]
	release chan struct{}
	entered chan struct{}
	applies int
}

func (h *slowHardware) Apply(prev, next slowConfig, safe bool) error {
	if h.applies++; h.applies > 1 {
		close(h.entered)
		<-h.release
	}
	return nil
}
func (h *slowHardware) Failsafe() error { return nil }
func (h *slowHardware) Close() error    { return nil }
func (h *slowHardware) Interfaces(cfg slowConfig) services.Interfaces {
	var ifs services.Interfaces
	for _, o := range cfg.Outputs {
		ifs.Outputs = append(ifs.Outputs, services.Interface{Name: o, Topic: h.rt.Topics().Output(o), Type: "number"})
	}
	return ifs
}

// slowRelease is the channel the slow service of the running test waits
// on, slowEntered the one it closes once it is stuck; the test makes them
// before it starts the agent.
var slowRelease, slowEntered chan struct{}

func init() {
	services.Register(services.NewKind("slow", nil, func(env services.Env, cfg slowConfig) (services.Service, error) {
		h := &slowHardware{release: slowRelease, entered: slowEntered}
		rt, err := services.NewRuntime(services.RuntimeOptions[slowConfig]{Kind: "slow", Env: env, Config: cfg}, h)
		h.rt = rt
		return rt, err
	}))
}

// TestSlowHardwareDoesNotDelayDiscovery: while one service's hardware is
// stuck applying a setup, the host still answers sweeps for every service,
// from descriptions taken outside any hardware lock.
func TestSlowHardwareDoesNotDelayDiscovery(t *testing.T) {
	b := embeddedBroker(t)
	c := newTestCluster(t, b.URL())
	cfg := c.config("pi1")
	cfg.Services = []string{"gpio", "slow"}
	cfg.Blocks["slow"] = &slowConfig{Outputs: []string{"fan"}}
	slowRelease, slowEntered = make(chan struct{}), make(chan struct{})
	a := c.start(cfg)
	released := false
	defer func() {
		if !released {
			close(slowRelease)
		}
	}()

	u := newMQTTUser(t, b.URL(), "pi1")
	u.publish("pi1/slow/setup", []byte(`{"outputs":["fan","pump"]}`))
	select {
	case <-slowEntered:
	case <-time.After(5 * time.Second):
		t.Fatal("the setup never reached the hardware")
	}
	// The service's goroutine is stuck inside Apply: a get queued behind
	// it gets no answer until it ends.
	u.publish("pi1/slow/get", []byte(`{"id":"behind"}`))
	if _, _, answered := u.tryAwait(0, 300*time.Millisecond, func(m userMsg) bool {
		return m.topic == "pi1/slow/result" && strings.Contains(m.payload, "behind")
	}); answered {
		t.Fatal("the slow service answered while its hardware was stuck: the test does not test anything")
	}

	start := time.Now()
	inv := c.sweep(cluster.SweepOptions{Hosts: []string{"pi1"}, Timeout: 3 * time.Second, NoRetained: true})
	took := time.Since(start)
	if !inv.Sweep.Complete || len(inv.Hosts) != 1 || len(inv.Hosts[0].Services) != 2 {
		t.Fatalf("sweep during a stuck apply: complete %v, hosts %+v", inv.Sweep.Complete, inv.Hosts)
	}
	t.Logf("sweep complete in %.1f ms (whole call %v) while a setup was stuck in hardware", inv.Sweep.CompleteMS, took)
	d := a.Describe()
	if len(d.Services) != 2 || len(d.Services[1].Outputs) != 1 {
		t.Errorf("description during the stuck apply: %+v", d.Services)
	}
	close(slowRelease)
	released = true
	u.await(0, "the get answered once the apply ends", func(m userMsg) bool {
		return m.topic == "pi1/slow/result" && strings.Contains(m.payload, "behind")
	})
}

// TestRetainedTopicsDefended: a spoofed retained status is put back, a
// live message under the host's description topic is no conflict, a
// retained one from another machine is, and the host's own description
// is put back over it.
func TestRetainedTopicsDefended(t *testing.T) {
	b := embeddedBroker(t)
	c := newTestCluster(t, b.URL())
	a := c.start(c.config("pi1"))
	u := newMQTTUser(t, b.URL(), "pi1")
	spoof := connectUser(t, b.URL(), userID("spoof"))
	defer spoof.Disconnect(0)
	publish := func(topic, payload string, retained bool) {
		t.Helper()
		if tk := spoof.Publish(topic, 1, retained, payload); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tk.Error())
		}
	}

	from := u.mark()
	publish("pi1/status", "offline", true)
	u.awaitValue(from, "pi1/status", "online")
	if got := u.retained("pi1/status"); got != "online" {
		t.Errorf("retained status %q after a spoofed offline, want online", got)
	}

	// A one-off message (as a spoofed probe's reply would have been): the
	// agent asks the broker for the retained copy, which is its own.
	checked := a.checked.Load()
	publish("pi1/description", `{"host":"pi1","machine":"deadbeefdeadbeef","version":1}`, false)
	waitFor(t, 5*time.Second, "the retained description read back", func() bool { return a.checked.Load() > checked })
	if d := a.Describe(); len(d.Conflicts) != 0 {
		t.Fatalf("a live foreign description counted as a conflict: %v", d.Conflicts)
	}

	from = u.mark()
	publish("pi1/description", `{"host":"pi1","machine":"deadbeefdeadbeef","version":1}`, true)
	waitFor(t, 5*time.Second, "the conflict", func() bool { return len(a.Describe().Conflicts) == 1 })
	m, _ := u.await(from, "the host's own description back, naming the conflict", func(m userMsg) bool {
		return m.topic == "pi1/description" && strings.Contains(m.payload, a.Machine()) && strings.Contains(m.payload, `"conflicts":["deadbeefdeadbeef"]`)
	})
	if !m.retained && !strings.Contains(u.retained("pi1/description"), a.Machine()) {
		t.Error("the host's description was not put back")
	}
	if rd := parseDescription(t, u.retained("pi1/description")); rd.Machine != a.Machine() {
		t.Errorf("retained description is %s's, not the host's", rd.Machine)
	}
}

// TestVersionNeverGoesBack: a version file that is lost or corrupt does
// not make the description's version go backwards: the agent continues
// above the one the broker holds.
func TestVersionNeverGoesBack(t *testing.T) {
	b := embeddedBroker(t)
	c := newTestCluster(t, b.URL())
	cfg := c.config("pi1")
	a := c.start(cfg)
	u := newMQTTUser(t, b.URL(), "pi1")
	v0 := a.Describe().Version
	u.publish("pi1/gpio/setup", []byte(`{"output":[{"name":"lamp","pin":23}]}`))
	waitFor(t, 5*time.Second, "the setup to raise the version", func() bool { return a.Describe().Version > v0 })
	before := a.Describe().Version
	waitFor(t, 5*time.Second, "the new version published", func() bool {
		return parseDescription(t, u.retained("pi1/description")).Version >= before
	})
	c.stop("pi1/" + a.Machine())
	if err := os.WriteFile(filepath.Join(cfg.StateDir, "version"), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a = c.start(cfg)
	defer func() {
		if t.Failed() {
			t.Logf("before %d, agent %d, retained %d", before, a.Describe().Version, parseDescription(t, u.retained("pi1/description")).Version)
		}
	}()
	waitFor(t, 5*time.Second, "the retained version above the one before", func() bool {
		return a.Describe().Version > before && parseDescription(t, u.retained("pi1/description")).Version > before
	})
}

// TestExternalServiceListed: a program outside the agent that announces
// itself (a retained description, its status kept honest by its will) is
// listed in the host's description, and a default sweep waits for its
// reply even when it answers 200 ms after the report; once it dies, the
// host stops listing it.
func TestExternalServiceListed(t *testing.T) {
	b := embeddedBroker(t)
	c := newTestCluster(t, b.URL())
	a := c.start(c.config("pi1"))

	var conn net.Conn
	o := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("display-service").SetAutoReconnect(false).
		SetWill("pi1/display/status", "offline", 1, true).
		SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
			c, err := net.Dial("tcp", u.Host)
			conn = c
			return c, err
		})
	cl := paho.NewClient(o)
	if tk := cl.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatal("connect:", tk.Error())
	}
	desc := `{"function":"display","inputs":[],"outputs":[{"name":"text","topic":"pi1/display/output/text","type":"string","set":"pi1/display/set/text"}],` +
		`"control":"pi1/display/control","setup":"pi1/display/setup","get":"pi1/display/get","result":"pi1/display/result","health":"ok"}`
	cl.Publish("pi1/display/description", 1, true, desc).Wait()
	cl.Publish("pi1/display/status", 1, true, "online").Wait()
	tk := cl.Subscribe("/udp/report", 0, func(cl paho.Client, m paho.Message) {
		var report map[string]any
		if json.Unmarshal(m.Payload(), &report) != nil || report["hostname"] != "pi1" {
			return
		}
		time.AfterFunc(200*time.Millisecond, func() { // a Python script on a Pi Zero
			var reply map[string]any
			json.Unmarshal([]byte(desc), &reply)
			for k, v := range report {
				reply[k] = v
			}
			b, _ := json.Marshal(reply)
			cl.Publish(report["topic"].(string), 0, false, b)
		})
	})
	if !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatal("subscribe:", tk.Error())
	}
	waitFor(t, 5*time.Second, "the host to list display", func() bool {
		d := a.Describe()
		return len(d.Services) == 2 && d.Services[1].Function == "display" && d.Services[1].External
	})

	inv := c.sweep(cluster.SweepOptions{Expect: 1})
	if !inv.Sweep.Complete || len(inv.Hosts) != 1 {
		t.Fatalf("sweep %+v", inv)
	}
	var fns []string
	for _, s := range inv.Hosts[0].Services {
		fns = append(fns, s.Function)
	}
	if !slices.Equal(fns, []string{"display", "gpio"}) {
		t.Errorf("services %v, want display (slow, external) and gpio", fns)
	}
	if inv.Sweep.CompleteMS < 150 {
		t.Errorf("complete in %.1f ms: the sweep did not wait for the external service", inv.Sweep.CompleteMS)
	}

	// The program dies (its connection drops without a goodbye); the
	// broker publishes its will, which takes it off the host's list.
	conn.Close()
	waitFor(t, 10*time.Second, "display dropped from the host", func() bool { return len(a.Describe().Services) == 1 })
	inv = c.sweep(cluster.SweepOptions{Expect: 1, Timeout: 2 * time.Second})
	if !inv.Sweep.Complete || len(inv.Hosts[0].Services) != 1 {
		t.Errorf("sweep after the service died: %+v", inv.Hosts)
	}
}

// TestForeignDevicesIgnored: on a broker shared with other systems, their
// <name>/status and <name>/description are no rollcall hosts: a sweep does
// not wait for them and the inventory does not list them.
func TestForeignDevicesIgnored(t *testing.T) {
	b := embeddedBroker(t)
	c := newTestCluster(t, b.URL())
	c.start(c.config("pi1"))
	foreign := connectUser(t, b.URL(), userID("esphome"))
	defer foreign.Disconnect(0)
	for topic, payload := range map[string]string{
		"kitchen-esp/status":      "online",
		"mqtt-io/status":          "running",
		"zigbee2mqtt/status":      "online",
		"zigbee2mqtt/description": `{"name":"bridge","version":"1.40"}`,
	} {
		foreign.Publish(topic, 1, true, payload).Wait()
	}
	start := time.Now()
	inv := c.sweep(cluster.SweepOptions{})
	if !inv.Sweep.Complete || len(inv.Missing) != 0 || len(inv.Hosts) != 1 {
		t.Errorf("sweep waited for foreign devices: complete %v, missing %v, hosts %d", inv.Sweep.Complete, inv.Missing, len(inv.Hosts))
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("sweep took %v", took)
	}
	ci, err := cluster.ReadInventory(context.Background(), c.sweepConfig(), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range ci.Hosts {
		names = append(names, h.Host)
	}
	if !slices.Equal(names, []string{"pi1"}) {
		t.Errorf("inventory lists %v, want only pi1", names)
	}
}
