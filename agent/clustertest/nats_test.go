package clustertest_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rollcall/rollcall/agent/clustertest"
	"github.com/rollcall/rollcall/agent/session"
	"github.com/rollcall/rollcall/services"
)

// mqttClient is a plain MQTT client of one NATS node that records what it
// receives.
type mqttClient struct {
	c    paho.Client
	lost chan struct{} // closed when the connection drops

	mu   sync.Mutex
	conn net.Conn
	msgs []services.Message
	more chan struct{}
}

type clientOpts struct {
	will       string // retained "offline" will on this topic
	cleanStart bool   // false: a persistent session
}

// connect connects a client to node n; it is disconnected at cleanup.
func connect(t *testing.T, n *clustertest.NATSNode, id string, o clientOpts) *mqttClient {
	t.Helper()
	c, err := tryConnect(t, n, id, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tryConnect connects a client to node n, or says why it could not: while
// the nodes elect new leaders after losing one, nats-server cannot store
// the session and closes the connection.
func tryConnect(t *testing.T, n *clustertest.NATSNode, id string, o clientOpts) (*mqttClient, error) {
	c := &mqttClient{lost: make(chan struct{}), more: make(chan struct{})}
	var once sync.Once
	opts := paho.NewClientOptions().AddBroker(n.MQTTURL()).SetClientID(id).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetKeepAlive(30 * time.Second).
		SetOrderMatters(true).
		SetCustomOpenConnectionFn(func(*url.URL, paho.ClientOptions) (net.Conn, error) {
			conn, err := n.Dial(t.Context())
			c.mu.Lock()
			c.conn = conn
			c.mu.Unlock()
			return conn, err
		}).
		SetConnectionLostHandler(func(paho.Client, error) { once.Do(func() { close(c.lost) }) })
	if o.will != "" {
		opts.SetWill(o.will, "offline", 1, true)
	}
	c.c = paho.NewClient(opts)
	if tk := c.c.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		return nil, fmt.Errorf("%s: connect %s: %v", n.Name, id, tk.Error())
	}
	t.Cleanup(func() { c.c.Disconnect(0) })
	return c, nil
}

// subscribe subscribes to filter at qos, recording every message.
func (c *mqttClient) subscribe(t *testing.T, qos byte, filters ...string) {
	t.Helper()
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = qos
	}
	tk := c.c.SubscribeMultiple(m, func(_ paho.Client, msg paho.Message) {
		c.mu.Lock()
		c.msgs = append(c.msgs, services.Message{Topic: msg.Topic(), Payload: msg.Payload(), Retained: msg.Retained()})
		close(c.more)
		c.more = make(chan struct{})
		c.mu.Unlock()
	})
	if !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("subscribe %v: %v", filters, tk.Error())
	}
}

func (c *mqttClient) publish(t *testing.T, topic string, qos byte, retained bool, payload string) {
	t.Helper()
	if tk := c.c.Publish(topic, qos, retained, payload); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tk.Error())
	}
}

// await waits for the first message from index from on that matches.
func (c *mqttClient) await(t *testing.T, from int, what string, match func(services.Message) bool) services.Message {
	t.Helper()
	m, ok := c.tryAwait(from, 10*time.Second, match)
	if !ok {
		t.Fatalf("timed out waiting for %s; have %v", what, c.received())
	}
	return m
}

func (c *mqttClient) tryAwait(from int, d time.Duration, match func(services.Message) bool) (services.Message, bool) {
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
			return services.Message{}, false
		}
	}
}

func (c *mqttClient) received() []services.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

func (c *mqttClient) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// cut closes the client's TCP connection without a DISCONNECT, as a
// crash or a power cut would.
func (c *mqttClient) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn.Close()
}

// retained reads topic's retained value through node n with a new client,
// and fails when there is none.
func retained(t *testing.T, n *clustertest.NATSNode, topic string) string {
	t.Helper()
	v, err := tryRetained(t, n, topic)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var readers int

// tryRetained reads topic's retained value through node n with a new
// client, or says why it could not.
func tryRetained(t *testing.T, n *clustertest.NATSNode, topic string) (string, error) {
	readers++
	c, err := tryConnect(t, n, fmt.Sprintf("retained-%s-%d", n.Name, readers), clientOpts{})
	if err != nil {
		return "", err
	}
	defer c.c.Disconnect(0)
	tk := c.c.Subscribe(topic, subQoS, func(_ paho.Client, m paho.Message) {
		c.mu.Lock()
		c.msgs = append(c.msgs, services.Message{Topic: m.Topic(), Payload: m.Payload(), Retained: m.Retained()})
		close(c.more)
		c.more = make(chan struct{})
		c.mu.Unlock()
	})
	if !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		return "", fmt.Errorf("%s: subscribe %s: %v", n.Name, topic, tk.Error())
	}
	// A live message published as it subscribed comes unflagged and
	// is not the retained copy.
	m, ok := c.tryAwait(0, 5*time.Second, func(m services.Message) bool { return m.Topic == topic && m.Retained })
	if !ok {
		return "", fmt.Errorf("%s: no retained message on %s; got %v", n.Name, topic, c.received())
	}
	return string(m.Payload), nil
}

// subQoS is the QoS rollcall's sessions subscribe at (agent/session).
const subQoS = 0

var natsVersion = regexp.MustCompile(`^v(\d+)\.(\d+)\.\d+`)

// supportsDots reports whether this nats-server takes '.' in MQTT topics:
// from v2.10 it maps them to "//"; before, it closes the connection.
func supportsDots(version string) bool {
	m := natsVersion.FindStringSubmatch(version)
	if m == nil {
		return false
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return major > 2 || major == 2 && minor >= 10
}

// TestNATS starts a 3-node NATS cluster on loopback and checks what
// rollcall relies on from an MQTT broker, then the loss and return of a
// node.
//
//	go test ./agent/clustertest -run TestNATS -v
func TestNATS(t *testing.T) {
	start := time.Now()
	ns := clustertest.StartNATS(t, 3)
	t.Logf("%s: 3 nodes ready in %v", ns.Version, time.Since(start).Round(time.Millisecond))
	n1, n2, n3 := ns.Nodes[0], ns.Nodes[1], ns.Nodes[2]

	if ns.Replicas != 3 {
		t.Errorf("Replicas %d, want 3", ns.Replicas)
	}
	for _, n := range ns.Nodes {
		conf, err := os.ReadFile(n.Config)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"server_name: " + n.Name, "stream_replicas: 3", fmt.Sprintf("nats-route://127.0.0.1:%d", n3.ClusterPort)} {
			if !strings.Contains(string(conf), want) {
				t.Errorf("%s: %s does not say %q:\n%s", n.Name, n.Config, want, conf)
			}
		}
	}
	if got, want := ns.Brokers(1), n2.MQTTURL()+","+n1.MQTTURL()+","+n3.MQTTURL(); got != want {
		t.Errorf("Brokers(1) = %q, want %q", got, want)
	}

	behaviours := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"retained flag only on stored copies", func(t *testing.T) {
			live := connect(t, n2, "flag-live", clientOpts{})
			live.subscribe(t, subQoS, "flag/status")
			pub := connect(t, n1, "flag-pub", clientOpts{})
			pub.publish(t, "flag/status", 1, true, "online")
			if m := live.await(t, 0, "live flag/status", func(services.Message) bool { return true }); m.Retained {
				t.Errorf("a live publish reached a subscriber flagged retained: %+v", m)
			}
			if v := retained(t, n3, "flag/status"); v != "online" {
				t.Errorf("retained flag/status through %s = %q, want online", n3.Name, v)
			}
		}},
		{"a second SUBSCRIBE sends the retained copy again", func(t *testing.T) {
			// session.Resubscribe: how an agent asks whether a foreign
			// description is really kept.
			connect(t, n1, "resub-pub", clientOpts{}).publish(t, "resub/description", 1, true, "kept")
			c := connect(t, n2, "resub", clientOpts{})
			c.subscribe(t, subQoS, "resub/description")
			c.await(t, 0, "first retained copy", func(m services.Message) bool { return m.Retained })
			from := c.mark()
			c.subscribe(t, subQoS, "resub/description")
			if m := c.await(t, from, "second retained copy", func(services.Message) bool { return true }); !m.Retained || string(m.Payload) != "kept" {
				t.Errorf("after a second SUBSCRIBE got %+v, want the retained copy", m)
			}
		}},
		{"will sent retained when a client dies", func(t *testing.T) {
			w := connect(t, n1, "will-dies", clientOpts{will: "will1/status"})
			w.publish(t, "will1/status", 1, true, "online")
			w.cut()
			clustertest.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
				if v := retained(t, n3, "will1/status"); v != "offline" {
					return fmt.Errorf("will1/status = %q through %s, want the will's offline", v, n3.Name)
				}
				return nil
			})
		}},
		{"no will after a clean disconnect", func(t *testing.T) {
			w := connect(t, n1, "will-clean", clientOpts{will: "will2/status"})
			w.publish(t, "will2/status", 1, true, "online")
			w.c.Disconnect(100)
			// A marker published after the disconnect, through the same
			// node, comes after a will would have.
			watch := connect(t, n1, "will-clean-watch", clientOpts{})
			watch.subscribe(t, subQoS, "will2/#")
			watch.publish(t, "will2/marker", 1, false, "end")
			watch.await(t, 0, "marker", func(m services.Message) bool { return m.Topic == "will2/marker" })
			if v := retained(t, n2, "will2/status"); v != "online" {
				t.Errorf("will2/status = %q after a clean disconnect, want online", v)
			}
		}},
		{"topics with a leading slash and wildcards", func(t *testing.T) {
			sub := connect(t, n2, "wild-sub", clientOpts{})
			sub.subscribe(t, subQoS, "/stat/data", "/udp/#", "+/status", "h1/#")
			pub := connect(t, n1, "wild-pub", clientOpts{})
			for _, topic := range []string{"h2/gpio/status", "/stat/other", "/stat/data", "/udp/report", "h1/status", "h2/status", "h1/gpio/output/lamp", "h1", "/status"} {
				pub.publish(t, topic, 1, false, topic)
			}
			// Wait for each: the checks are about matching, not order.
			want := []string{"/stat/data", "/udp/report", "h1/status", "h2/status", "h1/gpio/output/lamp", "h1", "/status"}
			for _, topic := range want {
				sub.await(t, 0, topic, func(m services.Message) bool { return m.Topic == topic })
			}
			var got []string
			for _, m := range sub.received() {
				if m.Retained {
					continue // other checks' statuses, kept by the broker
				}
				if string(m.Payload) != m.Topic {
					t.Errorf("%s carried %q", m.Topic, m.Payload)
				}
				got = append(got, m.Topic)
			}
			// h1/status matches two filters of one client: MQTT 3.1.1
			// lets a broker deliver it once or twice.
			slices.Sort(got)
			slices.Sort(want)
			if got = slices.Compact(got); !slices.Equal(got, want) {
				t.Errorf("received %q, want %q", got, want)
			}
		}},
		{"messages of one publisher stay in order across filters", func(t *testing.T) {
			// session.SubscribeAll promises one handler the broker's
			// order, whichever filter matched; the services' outbox
			// publishes without waiting for acks.
			sub := connect(t, n3, "order-sub", clientOpts{})
			sub.subscribe(t, subQoS, "order/a/+", "order/b/+")
			pub := connect(t, n1, "order-pub", clientOpts{})
			const n = 100
			for i := range n {
				topic := fmt.Sprintf("order/%c/%d", "ab"[i%2], i%3)
				pub.c.Publish(topic, byte(i/7%2), i%5 == 0, strconv.Itoa(i))
			}
			sub.await(t, 0, "the last message", func(m services.Message) bool { return string(m.Payload) == strconv.Itoa(n-1) })
			var got []int
			for _, m := range sub.received() {
				i, _ := strconv.Atoi(string(m.Payload))
				got = append(got, i)
			}
			if len(got) != n || !slices.IsSorted(got) {
				t.Errorf("received %d messages in the order %v", len(got), got)
			}
		}},
		{"a publish after SUBSCRIBE comes after its retained messages", func(t *testing.T) {
			// agent/cluster.subscribeRetained: the sync marker.
			log := slog.New(slog.DiscardHandler)
			pub := newSession(t, n1, "marker-pub", log)
			const hosts = 40
			for i := range hosts {
				if err := pub.PublishWait(fmt.Sprintf("m%02d/status", i), 1, true, []byte("online"), 5*time.Second); err != nil {
					t.Fatal(err)
				}
			}
			for round := range 3 {
				s := newSession(t, ns.Nodes[round%3], fmt.Sprintf("marker-read-%d", round), log)
				var (
					mu     sync.Mutex
					before = map[string]bool{}
					seen   = make(chan struct{})
					mark   = fmt.Sprintf("rollcall/sync/test%d", round)
				)
				err := s.SubscribeAll([]string{"+/status", mark}, func(m services.Message) {
					mu.Lock()
					defer mu.Unlock()
					switch {
					case m.Topic == mark:
						close(seen)
					case strings.HasPrefix(m.Topic, "m") && m.Retained:
						// A session that subscribes as it connects may
						// get them twice: count each once.
						before[m.Topic] = true
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Publish(mark, 1, false, nil); err != nil {
					t.Fatal(err)
				}
				select {
				case <-seen:
				case <-time.After(10 * time.Second):
					t.Fatalf("through %s: the marker never came", ns.Nodes[round%3].Name)
				}
				mu.Lock()
				if len(before) != hosts {
					t.Errorf("through %s: %d of %d retained statuses before the marker", ns.Nodes[round%3].Name, len(before), hosts)
				}
				mu.Unlock()
			}
		}},
		{"a client id connecting to another node takes the session over", func(t *testing.T) {
			first := connect(t, n1, "same-id", clientOpts{})
			second := connect(t, n2, "same-id", clientOpts{})
			select {
			case <-first.lost:
			case <-time.After(10 * time.Second):
				t.Fatal("the first connection with the client id is still up")
			}
			second.subscribe(t, subQoS, "same/topic")
			second.publish(t, "same/topic", 1, false, "x")
			second.await(t, 0, "its own message", func(m services.Message) bool { return m.Topic == "same/topic" })
		}},
		{"a topic with a space ends the connection", func(t *testing.T) {
			c := connect(t, n1, "space", clientOpts{})
			c.c.Publish("a b/status", 1, false, "x")
			select {
			case <-c.lost:
			case <-time.After(10 * time.Second):
				t.Fatal("the connection survived a topic with a space")
			}
		}},
		{"a topic with a dot", func(t *testing.T) {
			sub := connect(t, n2, "dot-sub", clientOpts{})
			if supportsDots(ns.Version) {
				sub.subscribe(t, subQoS, "+/status")
			}
			c := connect(t, n1, "dot", clientOpts{})
			c.c.Publish("pi.local/status", 1, false, "online")
			if !supportsDots(ns.Version) {
				select {
				case <-c.lost:
				case <-time.After(10 * time.Second):
					t.Fatalf("%s kept the connection after a topic with a dot; the docs say it closes it before v2.10", ns.Version)
				}
				return
			}
			sub.await(t, 0, "pi.local/status", func(m services.Message) bool { return m.Topic == "pi.local/status" })
		}},
	}
	for _, b := range behaviours {
		t.Run(b.name, b.check)
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Run("node loss", func(t *testing.T) {
		connect(t, n1, "keep-pub", clientOpts{}).publish(t, "keep/a", 1, true, "before")
		// Subscribers on a surviving node: rollcall's at QoS 0, and one
		// at QoS 1, whose JetStream consumer must survive too.
		subs := map[byte]*mqttClient{}
		for _, qos := range []byte{0, 1} {
			subs[qos] = connect(t, n2, fmt.Sprintf("keep-sub-%d", qos), clientOpts{})
			subs[qos].subscribe(t, qos, "live/#")
		}
		ids, err := n2.MQTTClients(t.Context())
		if err != nil || !slices.Contains(ids, "keep-sub-0") {
			t.Errorf("%s MQTTClients = %q, %v; want keep-sub-0 among them", n2.Name, ids, err)
		}

		reader := connect(t, n3, "keep-reader", clientOpts{})
		reader.subscribe(t, subQoS, "keep/#")
		reader.await(t, 0, "retained keep/a", func(m services.Message) bool { return m.Topic == "keep/a" && m.Retained })
		qos0 := connect(t, n2, "keep-qos0", clientOpts{})

		n1.Kill()
		killed := time.Now()
		if n1.Running() {
			t.Fatal("node 1 runs after Kill")
		}
		// A client already on a survivor keeps receiving at once what it
		// subscribed to, QoS 0 messages need no JetStream, and asking
		// again for a filter it holds (as session.Resubscribe does)
		// stores nothing either: it gets the retained copy again. A new
		// filter would wait for JetStream, which stores the session's
		// subscriptions.
		from := reader.mark()
		qos0.publish(t, "keep/live", 0, false, "during")
		reader.await(t, from, "keep/live", func(m services.Message) bool { return m.Topic == "keep/live" })
		reader.subscribe(t, subQoS, "keep/#")
		reader.await(t, from, "retained keep/a again", func(m services.Message) bool {
			return m.Topic == "keep/a" && m.Retained && string(m.Payload) == "before"
		})
		t.Logf("%s killed: a client already on %s got a live message and the retained keep/a again %v later", n1.Name, n3.Name, time.Since(killed).Round(time.Millisecond))
		// A new client may be turned away while the survivors elect new
		// leaders for what node 1 led.
		for _, n := range []*clustertest.NATSNode{n2, n3} {
			clustertest.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
				v, err := tryRetained(t, n, "keep/a")
				if err == nil && v != "before" {
					t.Fatalf("keep/a through %s = %q after %s died, want before", n.Name, v, n1.Name)
				}
				return err
			})
		}
		t.Logf("%s killed: keep/a read through both others by new clients %v later", n1.Name, time.Since(killed).Round(time.Millisecond))
		ns.WaitReady(t)
		t.Logf("%s killed: the others ready again (a retained QoS 1 publish goes through) in %v", n1.Name, time.Since(killed).Round(time.Millisecond))
		// Messages published on one survivor reach subscribers on the other.
		pub := connect(t, n3, "live-pub", clientOpts{})
		for _, qos := range []byte{0, 1} {
			sub := subs[qos]
			clustertest.Eventually(t, 20*time.Second, 500*time.Millisecond, func() error {
				from := sub.mark()
				payload := strconv.FormatInt(time.Now().UnixNano(), 10)
				pub.publish(t, "live/x", 1, false, payload)
				ctx, cancel := context.WithTimeout(t.Context(), 400*time.Millisecond)
				defer cancel()
				for {
					for _, m := range sub.received()[from:] {
						if string(m.Payload) == payload {
							return nil
						}
					}
					select {
					case <-ctx.Done():
						return fmt.Errorf("a message published through %s never reached the QoS %d subscriber on %s", n3.Name, qos, n2.Name)
					case <-time.After(20 * time.Millisecond):
					}
				}
			})
			t.Logf("QoS %d subscription between survivors delivering %v after the kill", qos, time.Since(killed).Round(time.Millisecond))
		}
		connect(t, n2, "keep-pub2", clientOpts{}).publish(t, "keep/b", 1, true, "while down")

		n1.Restart(t)
		for topic, want := range map[string]string{"keep/a": "before", "keep/b": "while down"} {
			if v := retained(t, n1, topic); v != want {
				t.Errorf("%s through the restarted %s = %q, want %q", topic, n1.Name, v, want)
			}
		}
	})
}

// newSession connects a rollcall session to node n.
func newSession(t *testing.T, n *clustertest.NATSNode, id string, log *slog.Logger) *session.Session {
	t.Helper()
	s, err := session.New(session.Options{Config: session.Config{Broker: n.MQTTURL(), Keepalive: 30 * time.Second}, ClientID: id}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(t.Context(), 10*time.Second); err != nil {
		t.Fatalf("%s: %v", n.Name, err)
	}
	t.Cleanup(func() { s.Close("", nil) })
	return s
}

// TestStartNATSUnavailable checks that StartNATS skips, saying why, when
// nats-server is missing or cannot speak MQTT.
func TestStartNATSUnavailable(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv("ROLLCALL_REQUIRE_NETNS", "")
	tests := []struct {
		name    string
		version string // what a fake nats-server --version prints; "" for none installed
		want    string // in the skip message
	}{
		{name: "not installed", want: "apt-get install nats-server"},
		{name: "before MQTT", version: "nats-server: v2.1.9", want: "MQTT needs v2.2.0 or later"},
		{name: "no version", version: "nats-server: unknown", want: "cannot read a version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.version != "" {
				script := "#!/bin/sh\necho '" + tt.version + "'\n"
				if err := os.WriteFile(dir+"/nats-server", []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("PATH", dir)
			var skipped bool
			var msg string
			t.Run("start", func(t *testing.T) {
				defer func() { skipped = t.Skipped() }()
				clustertest.StartNATS(&skipRecorder{T: t, msg: &msg}, 3)
				t.Error("StartNATS returned")
			})
			if !skipped || !strings.Contains(msg, tt.want) {
				t.Errorf("skipped %v with %q, want a skip saying %q", skipped, msg, tt.want)
			}
		})
	}
}

// skipRecorder keeps the message a test skipped with.
type skipRecorder struct {
	*testing.T
	msg *string
}

func (r *skipRecorder) Skipf(format string, args ...any) {
	*r.msg = fmt.Sprintf(format, args...)
	r.T.Skipf(format, args...)
}
