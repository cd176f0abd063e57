package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Ports of a NATS node started in a host with Cluster.StartNATS: the
// defaults of nats-server and of MQTT, as a real installation would use.
// Loopback nodes (StartNATS) take free ports instead.
const (
	natsClientPort  = 4222
	natsClusterPort = 6222
	natsMonitorPort = 8222
	natsMQTTPort    = 1883
)

// natsMinVersion is the first nats-server with MQTT.
var natsMinVersion = [3]int{2, 2, 0}

// A NATS is a cluster of nats-server nodes with JetStream and MQTT
// enabled: a clustered MQTT broker. Its retained messages, sessions and
// QoS 1 messages live in JetStream streams replicated on Replicas nodes,
// so they survive the loss of a node as long as a majority of the
// replicas is up.
type NATS struct {
	Nodes []*NATSNode
	// Replicas is the nodes' mqtt.stream_replicas: min(len(Nodes), 3).
	Replicas int
	// Version is nats-server's, as it prints it ("v2.9.10").
	Version string

	bin string
}

// A NATSNode is one nats-server of a NATS cluster.
type NATSNode struct {
	Name string // server_name: nats1, nats2, ...
	// Host is the namespace the node runs in; nil for a node on loopback.
	Host *Host
	Addr netip.Addr // the address it listens on
	// Ports it listens on: MQTT clients, NATS clients, routes from the
	// other nodes and HTTP monitoring.
	MQTTPort, ClientPort, ClusterPort, MonitorPort int
	// Config is its configuration file, StoreDir its JetStream directory;
	// both outlive a Kill, so Restart brings back the same node.
	Config, StoreDir string

	cluster *NATS
	http    *http.Client

	mu   sync.Mutex
	proc *Proc
}

// StartNATS starts a cluster of n nats-server nodes on loopback, each on
// free ports, and waits until it is ready (see WaitReady). Every node is
// killed at cleanup. It skips the test when nats-server is not installed,
// or fails it where Required.
func StartNATS(t testing.TB, n int) *NATS {
	t.Helper()
	ns := newNATS(t, n)
	lo := netip.MustParseAddr("127.0.0.1")
	ports := freeTCPPorts(t, 4*n)
	for i := range n {
		p := ports[4*i:]
		ns.Nodes = append(ns.Nodes, &NATSNode{
			Name:        fmt.Sprintf("nats%d", i+1),
			Addr:        lo,
			MQTTPort:    p[0],
			ClientPort:  p[1],
			ClusterPort: p[2],
			MonitorPort: p[3],
		})
	}
	ns.start(t)
	return ns
}

// StartNATS starts one nats-server node in each of hosts, listening on the
// host's address on the default ports (MQTT on 1883, so not on a host that
// also runs StartMosquitto), and waits until the cluster is ready (see
// WaitReady). The nodes are killed at cleanup.
func (c *Cluster) StartNATS(t testing.TB, hosts ...*Host) *NATS {
	t.Helper()
	ns := newNATS(t, len(hosts))
	for i, h := range hosts {
		if h.c != c {
			t.Fatalf("clustertest: StartNATS: %s is not a host of this cluster", h.Name)
		}
		ns.Nodes = append(ns.Nodes, &NATSNode{
			Name:        fmt.Sprintf("nats%d", i+1),
			Host:        h,
			Addr:        h.Addr,
			MQTTPort:    natsMQTTPort,
			ClientPort:  natsClientPort,
			ClusterPort: natsClusterPort,
			MonitorPort: natsMonitorPort,
		})
	}
	ns.start(t)
	return ns
}

func newNATS(t testing.TB, n int) *NATS {
	t.Helper()
	if n < 1 {
		t.Fatalf("clustertest: StartNATS: %d nodes: want at least 1", n)
	}
	bin, version, err := findNATS()
	if err != nil {
		unavailable(t, "nats-server with MQTT", err)
	}
	return &NATS{Replicas: min(n, 3), Version: version, bin: bin}
}

// findNATS finds nats-server and checks that it is recent enough to speak
// MQTT.
func findNATS() (bin, version string, err error) {
	bin, err = exec.LookPath("nats-server")
	if err != nil {
		return "", "", fmt.Errorf("%w (Debian: apt-get install nats-server)", err)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", "", fmt.Errorf("%s --version: %w", bin, err)
	}
	version, ok := parseNATSVersion(string(out))
	if !ok {
		return "", "", fmt.Errorf("%s --version: cannot read a version in %q", bin, strings.TrimSpace(string(out)))
	}
	if v := versionParts(version); slices.Compare(v[:], natsMinVersion[:]) < 0 {
		return "", "", fmt.Errorf("%s is %s; MQTT needs v%d.%d.%d or later", bin, version, natsMinVersion[0], natsMinVersion[1], natsMinVersion[2])
	}
	return bin, version, nil
}

var natsVersionRE = regexp.MustCompile(`v(\d+)\.(\d+)\.(\d+)\S*`)

// parseNATSVersion finds the version in `nats-server --version`'s output,
// "nats-server: v2.9.10".
func parseNATSVersion(out string) (string, bool) {
	v := natsVersionRE.FindString(out)
	return v, v != ""
}

func versionParts(v string) [3]int {
	var p [3]int
	m := natsVersionRE.FindStringSubmatch(v)
	for i := range p {
		if m != nil {
			p[i], _ = strconv.Atoi(m[i+1])
		}
	}
	return p
}

// start writes every node's configuration, starts the nodes and waits for
// the cluster.
func (ns *NATS) start(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	for _, n := range ns.Nodes {
		n.cluster = ns
		n.Config = filepath.Join(dir, n.Name+".conf")
		n.StoreDir = filepath.Join(dir, n.Name)
		n.http = &http.Client{
			Timeout:   2 * time.Second,
			Transport: &http.Transport{DialContext: n.dial, DisableKeepAlives: true},
		}
		if err := os.WriteFile(n.Config, []byte(ns.config(n)), 0o644); err != nil {
			t.Fatalf("clustertest: write %s: %v", n.Config, err)
		}
	}
	for _, n := range ns.Nodes {
		n.run(t)
	}
	ns.WaitReady(t)
}

// config is node n's configuration file. Every node lists every node as a
// route, itself included (nats-server skips the route to itself), so the
// files differ only in the node's name and addresses.
func (ns *NATS) config(n *NATSNode) string {
	var routes strings.Builder
	for _, o := range ns.Nodes {
		fmt.Fprintf(&routes, "    %q\n", "nats-route://"+netip.AddrPortFrom(o.Addr, uint16(o.ClusterPort)).String())
	}
	addr := func(port int) string { return strconv.Quote(netip.AddrPortFrom(n.Addr, uint16(port)).String()) }
	return fmt.Sprintf(`# %[1]s: node %[2]d of %[3]d of a clustered MQTT broker for rollcall.
server_name: %[1]s
listen: %[4]s
http: %[5]s

# MQTT keeps its sessions, retained messages and QoS 1 messages in
# JetStream; the limits keep a test's footprint small.
jetstream {
  store_dir: %[6]q
  max_memory_store: 64MB
  max_file_store: 256MB
}

cluster {
  name: rollcall
  listen: %[7]s
  routes: [
%[8]s  ]
}

mqtt {
  listen: %[9]s
  # Set it: left out, nats-server counts the routes above (at most 3),
  # and a node that lists only the others would make 2 replicas.
  stream_replicas: %[10]d
  # rollcall subscribes at QoS 0, which needs no JetStream consumer.
  # A QoS 1 subscriber's consumer that nobody reads any more (its node
  # died before it could delete it) is removed after this. Leave
  # consumer_replicas alone: a consumer with fewer replicas dies with its
  # node, and its subscriber, connected elsewhere, never hears of it.
  consumer_inactive_threshold: "5m"
}
`, n.Name, slices.Index(ns.Nodes, n)+1, len(ns.Nodes), addr(n.ClientPort), addr(n.MonitorPort),
		n.StoreDir, addr(n.ClusterPort), routes.String(), addr(n.MQTTPort), ns.Replicas)
}

// run starts the node's nats-server with its configuration.
func (n *NATSNode) run(t testing.TB) {
	t.Helper()
	var p *Proc
	if n.Host != nil {
		p = n.Host.Start(t, n.cluster.bin, "-c", n.Config)
	} else {
		p = startLocal(t, n.Name, n.cluster.bin, "-c", n.Config)
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
}

// startLocal starts a program in the test's own namespace, as Host.Start
// does in a host's: output to a log file shown when the test fails, killed
// at cleanup, and with the test binary.
func startLocal(t testing.TB, label, name string, args ...string) *Proc {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), label+"-*.log")
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = f, f
	p := &Proc{Cmd: cmd, Log: f.Name(), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("clustertest: start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s: %s %s (%v):\n%s", label, name, strings.Join(args, " "), p.err, p.Output())
		}
	})
	return p
}

// MQTTURL is the node's MQTT listener, tcp://addr:port.
func (n *NATSNode) MQTTURL() string {
	return "tcp://" + netip.AddrPortFrom(n.Addr, uint16(n.MQTTPort)).String()
}

// Brokers lists the MQTT URLs of every node, comma-separated, node first's
// own first and then the others in order: the mqtt.broker of a client
// that should use node first and fall back to the others.
func (ns *NATS) Brokers(first int) string {
	urls := []string{ns.Nodes[first].MQTTURL()}
	for i, n := range ns.Nodes {
		if i != first {
			urls = append(urls, n.MQTTURL())
		}
	}
	return strings.Join(urls, ",")
}

// Dial connects to the node's MQTT listener from where the node can be
// reached: its host's namespace, or loopback. An MQTT client outside the
// hosts (paho's SetCustomOpenConnectionFn) uses it to reach a node.
func (n *NATSNode) Dial(ctx context.Context) (net.Conn, error) {
	return n.dial(ctx, "tcp", netip.AddrPortFrom(n.Addr, uint16(n.MQTTPort)).String())
}

func (n *NATSNode) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if n.Host != nil {
		return n.Host.DialContext(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Proc is the node's current nats-server process (a new one after
// Restart).
func (n *NATSNode) Proc() *Proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// Running reports whether the node's nats-server runs.
func (n *NATSNode) Running() bool { return !n.Proc().Exited() }

// Kill kills the node's nats-server with SIGKILL, as a power cut would,
// and waits for it to exit. Its configuration and JetStream store stay for
// Restart.
func (n *NATSNode) Kill() { n.Proc().Kill() }

// Restart starts a killed node again with its configuration and store, and
// waits until the cluster is ready with it.
func (n *NATSNode) Restart(t testing.TB) {
	t.Helper()
	if n.Running() {
		t.Fatalf("clustertest: restart %s: still running", n.Name)
	}
	n.run(t)
	n.cluster.WaitReady(t)
}

// MQTTClients lists the client ids of the MQTT clients connected to the
// node, from its monitoring endpoint.
func (n *NATSNode) MQTTClients(ctx context.Context) ([]string, error) {
	var connz struct {
		Conns []struct {
			MQTTClient string `json:"mqtt_client"`
		} `json:"connections"`
	}
	if err := n.getJSON(ctx, "/connz?limit=4096", &connz); err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range connz.Conns {
		if c.MQTTClient != "" {
			ids = append(ids, c.MQTTClient)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// getJSON decodes the node's monitoring endpoint path into v.
func (n *NATSNode) getJSON(ctx context.Context, path string, v any) error {
	u := "http://" + netip.AddrPortFrom(n.Addr, uint16(n.MonitorPort)).String() + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: GET %s: %s", n.Name, path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s: GET %s: %w", n.Name, path, err)
	}
	return nil
}

// natsReadyTimeout bounds WaitReady: a cold start elects a JetStream
// meta leader and creates the MQTT streams; the loss of a leader takes a
// Raft election (seconds) before the others take over.
const natsReadyTimeout = 45 * time.Second

// WaitReady waits until every running node is routed to every other
// running one, agrees on a JetStream meta leader among them, says it is
// healthy, and takes a retained QoS 1 message that another node then
// delivers: MQTT and its streams work. It fails the test when a node that
// should run has exited, or after natsReadyTimeout.
func (ns *NATS) WaitReady(t testing.TB) {
	t.Helper()
	Eventually(t, natsReadyTimeout, 100*time.Millisecond, func() error {
		var up []*NATSNode
		for _, n := range ns.Nodes {
			if n.Running() {
				up = append(up, n)
			}
		}
		if len(up) == 0 {
			t.Fatalf("clustertest: no NATS node is running")
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		for _, n := range up {
			if err := n.healthy(ctx, up); err != nil {
				if !n.Running() {
					t.Fatalf("clustertest: %s exited: %v\n%s", n.Name, n.Proc().err, n.Proc().Output())
				}
				return err
			}
		}
		for i, n := range up {
			if err := mqttRoundTrip(ctx, n, up[(i+1)%len(up)]); err != nil {
				return err
			}
		}
		return nil
	})
}

// healthy checks one node's view of the cluster: routes to the other
// running nodes, a meta leader that runs, and /healthz.
func (n *NATSNode) healthy(ctx context.Context, up []*NATSNode) error {
	var routez struct {
		NumRoutes int `json:"num_routes"`
	}
	if err := n.getJSON(ctx, "/routez", &routez); err != nil {
		return err
	}
	if routez.NumRoutes != len(up)-1 {
		return fmt.Errorf("%s: %d routes, want %d", n.Name, routez.NumRoutes, len(up)-1)
	}
	var jsz struct {
		Meta *struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if err := n.getJSON(ctx, "/jsz", &jsz); err != nil {
		return err
	}
	if jsz.Meta == nil || !slices.ContainsFunc(up, func(o *NATSNode) bool { return o.Name == jsz.Meta.Leader }) {
		return fmt.Errorf("%s: no JetStream meta leader among the running nodes yet (%+v)", n.Name, jsz.Meta)
	}
	var health struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	// /healthz answers 503 with its reason while JetStream catches up;
	// read the body either way.
	u := "http://" + netip.AddrPortFrom(n.Addr, uint16(n.MonitorPort)).String() + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil || health.Status != "ok" {
		return fmt.Errorf("%s: /healthz: %s %q %v", n.Name, resp.Status, health.Error, err)
	}
	return nil
}

// mqttRoundTrip publishes a retained QoS 1 message through from, reads it
// back through to, and deletes it.
func mqttRoundTrip(ctx context.Context, from, to *NATSNode) error {
	var b [6]byte
	_, _ = rand.Read(b[:])
	topic, payload := "clustertest/ready/"+from.Name, hex.EncodeToString(b[:])

	pub, err := connectMQTT(ctx, from, "clustertest-ready-pub-"+payload)
	if err != nil {
		return err
	}
	defer pub.Disconnect(0)
	if err := wait(ctx, pub.Publish(topic, 1, true, payload)); err != nil {
		return fmt.Errorf("%s: publish retained %s: %w", from.Name, topic, err)
	}
	defer func() { _ = wait(ctx, pub.Publish(topic, 1, true, []byte{})) }()

	sub, err := connectMQTT(ctx, to, "clustertest-ready-sub-"+payload)
	if err != nil {
		return err
	}
	defer sub.Disconnect(0)
	got := make(chan struct{})
	var once sync.Once
	// QoS 0: a QoS 1 subscription costs a JetStream consumer, which is
	// not what is being checked.
	if err := wait(ctx, sub.Subscribe(topic, 0, func(_ paho.Client, m paho.Message) {
		if m.Retained() && string(m.Payload()) == payload {
			once.Do(func() { close(got) })
		}
	})); err != nil {
		return fmt.Errorf("%s: subscribe %s: %w", to.Name, topic, err)
	}
	select {
	case <-got:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: retained message published through %s never came: %w", to.Name, from.Name, ctx.Err())
	}
}

// connectMQTT connects a plain MQTT client to node n, once.
func connectMQTT(ctx context.Context, n *NATSNode, id string) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(n.MQTTURL()).SetClientID(id).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) { return n.Dial(ctx) })
	c := paho.NewClient(o)
	if err := wait(ctx, c.Connect()); err != nil {
		return nil, fmt.Errorf("%s: mqtt connect: %w", n.Name, err)
	}
	return c, nil
}

// wait waits for a paho token until ctx ends.
func wait(ctx context.Context, tk paho.Token) error {
	select {
	case <-tk.Done():
		return tk.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// freeTCPPorts returns n distinct loopback TCP ports that were free a
// moment ago: all are held open until all are chosen.
func freeTCPPorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("clustertest: free port: %v", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
