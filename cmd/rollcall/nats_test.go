package main_test

// TestNATSCluster runs the real binary against a clustered broker: three
// nats-server nodes with MQTT (agent/clustertest.StartNATS) on the hosts
// of a network-namespace cluster, an agent on every host, each given every
// node with its own first. It needs root and nats-server (Debian: apt-get
// install nats-server); it skips without them, and fails instead with
// CI=true or ROLLCALL_REQUIRE_NETNS=1.
//
//	go test ./cmd/rollcall -run TestNATSCluster -v
//
// BenchmarkSweepBroker times a sweep and an inventory read through one
// mosquitto and through the NATS cluster, on the same hosts:
//
//	go test ./cmd/rollcall -run '^$' -bench SweepBroker -benchtime 1x

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rollcall/rollcall/agent/clustertest"
)

// natsClient is a plain MQTT client of one NATS node, outside the hosts.
type natsClient struct {
	node *clustertest.NATSNode
	cl   paho.Client

	mu   sync.Mutex
	msgs []killMsg
	more chan struct{}
}

var natsClientSeq int

func connectNATS(t testing.TB, n *clustertest.NATSNode) *natsClient {
	t.Helper()
	natsClientSeq++
	c := &natsClient{node: n, more: make(chan struct{})}
	o := paho.NewClientOptions().AddBroker(n.MQTTURL()).
		SetClientID(fmt.Sprintf("nats-test-%d", natsClientSeq)).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetOrderMatters(true).
		SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) { return n.Dial(t.Context()) })
	c.cl = paho.NewClient(o)
	if tk := c.cl.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("connect to %s: %v", n.Name, tk.Error())
	}
	t.Cleanup(func() { c.cl.Disconnect(0) })
	return c
}

// subscribe subscribes to filters, keeping every message.
func (c *natsClient) subscribe(t testing.TB, filters ...string) {
	t.Helper()
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 0
	}
	tk := c.cl.SubscribeMultiple(m, func(_ paho.Client, msg paho.Message) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.msgs = append(c.msgs, killMsg{msg.Topic(), string(msg.Payload())})
		close(c.more)
		c.more = make(chan struct{})
	})
	if !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("%s: subscribe %v: %v", c.node.Name, filters, tk.Error())
	}
}

func (c *natsClient) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// await waits up to d for a message from index from on that matches.
func (c *natsClient) await(from int, d time.Duration, match func(killMsg) bool) (killMsg, bool) {
	timeout := time.After(d)
	for i := from; ; {
		c.mu.Lock()
		for ; i < len(c.msgs); i++ {
			if match(c.msgs[i]) {
				m := c.msgs[i]
				c.mu.Unlock()
				return m, true
			}
		}
		more := c.more
		c.mu.Unlock()
		select {
		case <-more:
		case <-timeout:
			return killMsg{}, false
		}
	}
}

// readRetained reads the retained messages of filters through node n with
// a client of its own, and returns the last payload of each topic. It
// subscribes a topic of its own along with them and publishes to it: that
// message comes after the retained ones (TestNATS in agent/clustertest
// checks it). It returns an error rather than fail, for callers that
// poll: while the nodes elect new leaders after losing one, nats-server
// turns new clients away.
func readRetained(ctx context.Context, n *clustertest.NATSNode, filters ...string) (map[string]string, error) {
	natsClientSeq++
	id := fmt.Sprintf("nats-test-read-%d", natsClientSeq)
	mark := "nats-test/sync/" + id
	o := paho.NewClientOptions().AddBroker(n.MQTTURL()).SetClientID(id).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetOrderMatters(true).
		SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) { return n.Dial(ctx) })
	cl := paho.NewClient(o)
	if tk := cl.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		return nil, fmt.Errorf("%s: connect: %v", n.Name, tk.Error())
	}
	defer cl.Disconnect(0)
	var (
		mu   sync.Mutex
		got  = map[string]string{}
		done = make(chan struct{})
	)
	m := map[string]byte{mark: 0}
	for _, f := range filters {
		m[f] = 0
	}
	tk := cl.SubscribeMultiple(m, func(_ paho.Client, msg paho.Message) {
		mu.Lock()
		defer mu.Unlock()
		if msg.Topic() == mark {
			close(done)
			return
		}
		got[msg.Topic()] = string(msg.Payload())
	})
	if !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		return nil, fmt.Errorf("%s: subscribe: %v", n.Name, tk.Error())
	}
	if tk := cl.Publish(mark, 0, false, "end"); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		return nil, fmt.Errorf("%s: publish %s: %v", n.Name, mark, tk.Error())
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("%s: %s never came back", n.Name, mark)
	}
	mu.Lock()
	defer mu.Unlock()
	return got, nil
}

// natsRollcall is the binary on a namespace cluster whose first three
// hosts run a NATS node each.
type natsRollcall struct {
	*rollcall
	nats *clustertest.NATS
}

func newNATSRollcall(t testing.TB, hosts int) *natsRollcall {
	t.Helper()
	clustertest.Skip(t)
	rc := &rollcall{bin: buildRollcall(t), state: map[string]string{}}
	rc.config = filepath.Join(t.TempDir(), "rollcall.yaml")
	if err := os.WriteFile(rc.config, []byte("# everything comes from flags\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rc.c = clustertest.New(t, hosts)
	start := time.Now()
	ns := rc.c.StartNATS(t, rc.c.Hosts[:3]...)
	t.Logf("nats-server %s: 3 nodes ready in %v", ns.Version, time.Since(start).Round(time.Millisecond))
	return &natsRollcall{rollcall: rc, nats: ns}
}

// via is the binary told to use broker, a node's URL or a list of them.
func (nr *natsRollcall) via(broker string) *rollcall {
	rc := *nr.rollcall
	rc.broker = broker
	return &rc
}

// startAgents starts an agent on every host, host i on node i%3 first.
// Their keepalive is 3s, not startAgent's 1s: nats-server allows a client
// 1.5 times its keepalive rounded down to whole seconds, so exactly 1s for
// 1s, and a ping a moment late drops the connection.
func (nr *natsRollcall) startAgents(t testing.TB) []*clustertest.Proc {
	t.Helper()
	var agents []*clustertest.Proc
	for i, h := range nr.c.Hosts {
		agents = append(agents, nr.via(nr.nats.Brokers(i%len(nr.nats.Nodes))).startAgent(t, h, "--keepalive", "3s"))
	}
	return agents
}

// sessionUp reports whether an agent's log says its session is up: its
// last "mqtt connected" (logged once every subscription is renewed) comes
// after its last "mqtt connection lost".
func sessionUp(agent *clustertest.Proc) bool {
	out := agent.Output()
	return strings.LastIndex(out, `msg="mqtt connected"`) > strings.LastIndex(out, `msg="mqtt connection lost"`)
}

// natsInventory is the part of `rollcall inventory --json` this test reads.
type natsInventory struct {
	Hosts []natsHost `json:"hosts"`
	Sweep *struct {
		ID int64 `json:"id"`
	} `json:"sweep"`
}

type natsHost struct {
	Host     string       `json:"host"`
	Status   string       `json:"status"`
	Services []serviceDoc `json:"services"`
}

// agentsOn says which of nodes each host's agent is connected to, by its
// MQTT client id (rollcall-<host>-<machine>); hosts whose agent is on none
// are left out.
func agentsOn(ctx context.Context, nodes []*clustertest.NATSNode, hosts []string) (map[string]string, error) {
	where := map[string]string{}
	for _, n := range nodes {
		ids, err := n.MQTTClients(ctx)
		if err != nil {
			return nil, err
		}
		for _, h := range hosts {
			if slices.ContainsFunc(ids, func(id string) bool { return strings.HasPrefix(id, "rollcall-"+h+"-") }) {
				where[h] = n.Name
			}
		}
	}
	return where, nil
}

// valveSetup adds an output that comes up at 1: its retained value is
// what the test reads back through another node.
const valveSetup = `{"id":"via-nats","output":[{"name":"valve","pin":5,"init":1,"failsafe":0}]}`

func TestNATSCluster(t *testing.T) {
	const n = 4
	nr := newNATSRollcall(t, n)
	nodes := nr.nats.Nodes
	names := hostNames(nr.c.Hosts)
	agents := nr.startAgents(t)
	// The commands each go through one node only, so that what they see
	// is that node's.
	node1, node3 := nr.via(nodes[0].MQTTURL()), nr.via(nodes[2].MQTTURL())
	node3.waitStatus(t, nr.c.Hosts[3], "online", names...)
	where, err := agentsOn(t.Context(), nodes, names)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range names {
		if want := nodes[i%3].Name; where[h] != want {
			t.Errorf("agent of %s on %q, want its own node %s", h, where[h], want)
		}
	}

	// A probe asking for answers on a topic with a space: nats-server
	// would close the connection of every agent that answered it. The
	// sweep below, probed after it on the same sockets, completes only
	// once every agent has handled it.
	sweeper := nr.c.Hosts[3]
	hostile, err := sweeper.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostile.Close()
	probe := []byte(`{"cmd":"status","replyto":"evil","topic":"/stat/a b","id":77}`)
	if _, err := hostile.WriteTo(probe, &net.UDPAddr{IP: net.IP(nr.c.Broadcast.AsSlice()), Port: probePort}); err != nil {
		t.Fatal(err)
	}

	// A sweep through node 1, run from the host without a node.
	start := time.Now()
	doc, stderr, code := node1.sweep(t, sweeper, "--expect", fmt.Sprint(n))
	if code != 0 || !doc.Sweep.Complete || answered(doc) != n {
		t.Fatalf("sweep through %s: exit %d, complete %v, %d hosts, missing %v\n%s", nodes[0].Name, code, doc.Sweep.Complete, answered(doc), doc.Missing, stderr)
	}
	t.Logf("sweep through %s: %d hosts complete in %.1f ms, the command took %v", nodes[0].Name, n, doc.Sweep.CompleteMS, time.Since(start).Round(time.Millisecond))
	for _, h := range doc.Hosts {
		if !slices.ContainsFunc(h.Services, func(s serviceDoc) bool { return s.Function == "gpio" && s.Setup != "" }) {
			t.Errorf("sweep: %s without its gpio service: %+v", h.Hostname, h.Services)
		}
	}
	for i, a := range agents {
		if out := a.Output(); strings.Contains(out, `msg="mqtt connection lost"`) {
			t.Errorf("%s lost its connection before any node died:\n%s", names[i], out)
		}
	}

	// The inventory through node 3 sees every host, and the sweep it
	// published through node 1.
	checkInventory := func(t *testing.T, via *rollcall, from *clustertest.Host, sweepID int64) {
		t.Helper()
		clustertest.Eventually(t, 15*time.Second, 200*time.Millisecond, func() error {
			out, stderr, code := via.run(t, from, append([]string{"inventory", "--json"}, via.common()...)...)
			if code != 0 {
				return fmt.Errorf("inventory through %s: exit %d: %s", via.broker, code, stderr)
			}
			var inv natsInventory
			if err := json.Unmarshal([]byte(out), &inv); err != nil {
				return fmt.Errorf("inventory: %v\n%s", err, out)
			}
			if inv.Sweep == nil || inv.Sweep.ID != sweepID {
				return fmt.Errorf("inventory through %s: last sweep %+v, want id %d", via.broker, inv.Sweep, sweepID)
			}
			var bad []string
			for _, h := range names {
				i := slices.IndexFunc(inv.Hosts, func(x natsHost) bool { return x.Host == h })
				switch {
				case i < 0:
					bad = append(bad, h+" missing")
				case inv.Hosts[i].Status != "online":
					bad = append(bad, h+" "+inv.Hosts[i].Status)
				case !slices.ContainsFunc(inv.Hosts[i].Services, func(s serviceDoc) bool { return s.Function == "gpio" }):
					bad = append(bad, h+" without gpio")
				}
			}
			if len(bad) > 0 {
				return fmt.Errorf("inventory through %s: %s", via.broker, strings.Join(bad, ", "))
			}
			return nil
		})
	}
	checkInventory(t, node3, nr.c.Hosts[1], doc.Sweep.ID)

	// A setup sent through node 1 is applied; its retained output is read
	// through node 3.
	target := names[1] // its agent is on node 2
	ctl := connectNATS(t, nodes[0])
	ctl.subscribe(t, target+"/gpio/result")
	from := ctl.mark()
	if tk := ctl.cl.Publish(target+"/gpio/setup", 1, false, valveSetup); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("publish setup: %v", tk.Error())
	}
	res, ok := ctl.await(from, 15*time.Second, func(m killMsg) bool { return strings.Contains(m.payload, `"via-nats"`) })
	if !ok {
		t.Fatalf("no result for the setup sent to %s through %s", target, nodes[0].Name)
	}
	if !strings.Contains(res.payload, `"status":"ok"`) {
		t.Fatalf("setup result: %s", res.payload)
	}
	valve := target + "/gpio/output/valve"
	clustertest.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
		got, err := readRetained(t.Context(), nodes[2], valve)
		if err != nil {
			return err
		}
		if got[valve] != "1" {
			return fmt.Errorf("retained %s through %s = %q, want 1", valve, nodes[2].Name, got[valve])
		}
		return nil
	})

	// Kill node 1: the agents that used it reconnect to another node on
	// their own, and everything retained is still there.
	victim, survivors := nodes[0], nodes[1:]
	victim.Kill()
	killed := time.Now()
	since := func() time.Duration { return time.Since(killed).Round(time.Millisecond) }

	// The survivors take writes again once they lead what node 1 led: a
	// retained QoS 1 publish goes through. Until then nats-server closes
	// a connection whose QoS 1 publish timed out, and turns away a new
	// one it cannot store the session of.
	nr.nats.WaitReady(t)
	writable := since()
	clustertest.Eventually(t, 40*time.Second, 100*time.Millisecond, func() error {
		where, err := agentsOn(t.Context(), survivors, names)
		if err != nil {
			return err
		}
		var down []string
		for i, h := range names {
			if where[h] == "" || !sessionUp(agents[i]) {
				down = append(down, h)
			}
		}
		if len(down) > 0 {
			return fmt.Errorf("agents not connected and subscribed on a surviving node: %v (connected: %v)", down, where)
		}
		return nil
	})
	reconnected := since()
	// An agent dropped while the leaders moved had its will say offline
	// until it said online again.
	filters := []string{"+/status", "+/description", "rollcall/inventory", valve}
	for _, s := range survivors {
		clustertest.Eventually(t, 40*time.Second, 100*time.Millisecond, func() error {
			got, err := readRetained(t.Context(), s, filters...)
			if err != nil {
				return err
			}
			var bad []string
			for _, h := range names {
				if got[h+"/status"] != "online" {
					bad = append(bad, fmt.Sprintf("%s/status=%q", h, got[h+"/status"]))
				}
				if !strings.Contains(got[h+"/description"], `"host":"`+h+`"`) {
					bad = append(bad, h+"/description missing")
				}
			}
			if !strings.Contains(got["rollcall/inventory"], fmt.Sprintf(`"id":%d`, doc.Sweep.ID)) {
				bad = append(bad, "rollcall/inventory missing")
			}
			if got[valve] != "1" {
				bad = append(bad, fmt.Sprintf("%s=%q", valve, got[valve]))
			}
			if len(bad) > 0 {
				return fmt.Errorf("retained through %s: %s", s.Name, strings.Join(bad, ", "))
			}
			return nil
		})
	}
	readable := since()

	// A sweep through the survivors completes, expecting every host (the
	// retained inventory and statuses say all are online).
	rest := nr.via(nr.nats.Brokers(1))
	clustertest.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		start = time.Now()
		doc, stderr, code = rest.sweep(t, sweeper, "--timeout", "2s")
		if code != 0 || !doc.Sweep.Complete || answered(doc) != n {
			return fmt.Errorf("sweep after %s died: exit %d, complete %v, %d hosts, missing %v\n%s", victim.Name, code, doc.Sweep.Complete, answered(doc), doc.Missing, stderr)
		}
		return nil
	})
	t.Logf("sweep through %s after the kill: %d hosts complete in %.1f ms, the command took %v", survivors[0].Name, n, doc.Sweep.CompleteMS, time.Since(start).Round(time.Millisecond))
	t.Logf("%s killed: the survivors take writes after %v, every agent connected and subscribed on them after %v, every retained state readable through both after %v, a sweep complete after %v",
		victim.Name, writable, reconnected, readable, since())
	checkInventory(t, nr.via(survivors[1].MQTTURL()), nr.c.Hosts[0], doc.Sweep.ID)
}

// BenchmarkSweepBroker compares one mosquitto with the 3-node NATS cluster
// on the same 4 hosts: the sweep's complete_ms, the wall time of the whole
// `rollcall sweep` command (start, connect, subscribe, sweep, publish) and
// of `rollcall inventory`.
func BenchmarkSweepBroker(b *testing.B) {
	const n, runs = 4, 10
	for _, broker := range []string{"mosquitto", "nats"} {
		b.Run("broker="+broker, func(b *testing.B) {
			var via *rollcall
			if broker == "nats" {
				nr := newNATSRollcall(b, n)
				nr.startAgents(b)
				via = nr.via(nr.nats.Nodes[0].MQTTURL())
			} else {
				via = newRollcall(b, n)
				for _, h := range via.c.Hosts {
					via.startAgent(b, h)
				}
			}
			sweeper := via.c.Hosts[n-1]
			via.waitStatus(b, sweeper, "online", hostNames(via.c.Hosts)...)
			var complete, sweepWall, invWall []float64
			b.ResetTimer()
			for range runs {
				start := time.Now()
				doc, stderr, code := via.sweep(b, sweeper, "--expect", fmt.Sprint(n))
				if code != 0 || !doc.Sweep.Complete {
					b.Fatalf("sweep: exit %d, complete %v: %s", code, doc.Sweep.Complete, stderr)
				}
				sweepWall = append(sweepWall, float64(time.Since(start).Microseconds())/1000)
				complete = append(complete, doc.Sweep.CompleteMS)
				start = time.Now()
				if _, err := via.inventory(b, sweeper); err != nil {
					b.Fatal(err)
				}
				invWall = append(invWall, float64(time.Since(start).Microseconds())/1000)
			}
			b.StopTimer()
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(percentile(complete, 50), "complete-p50-ms")
			b.ReportMetric(percentile(sweepWall, 50), "sweep-cmd-p50-ms")
			b.ReportMetric(percentile(invWall, 50), "inventory-cmd-p50-ms")
			b.Logf("%s, %d hosts, %d runs: complete_ms p50 %.1f max %.1f; sweep command p50 %.0f ms max %.0f; inventory command p50 %.0f ms max %.0f",
				broker, n, runs, percentile(complete, 50), percentile(complete, 100), percentile(sweepWall, 50), percentile(sweepWall, 100),
				percentile(invWall, 50), percentile(invWall, 100))
		})
	}
}
