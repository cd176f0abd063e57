package main_test

// Faults on a namespace cluster (agent/clustertest; root needed, skipped
// otherwise): the broker killed and restarted, one host's link pulled,
// frames lost on every link. TestCluster covers an agent killed, hung and
// restarted. Sizes fit CI; each failure names its cause, and the times
// measured are logged, never asserted against the benchmark's targets.
//
//	go test ./cmd/rollcall -run 'TestCluster' -v

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rollcall/rollcall/agent/clustertest"
)

// brokerClient connects a plain paho client to url from inside h, retrying
// until the broker accepts it (on a lossy link a SYN can take a second).
func brokerClient(t testing.TB, h *clustertest.Host, url, id string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).
		SetAutoReconnect(false).SetConnectTimeout(3 * time.Second).
		SetCustomOpenConnectionFn(func(u *neturl.URL, _ paho.ClientOptions) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			return h.DialContext(ctx, "tcp", u.Host)
		})
	var cl paho.Client
	clustertest.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
		cl = paho.NewClient(o)
		tk := cl.Connect()
		if !tk.WaitTimeout(5 * time.Second) {
			return fmt.Errorf("%s: connect to %s timed out", h.Name, url)
		}
		return tk.Error()
	})
	t.Cleanup(func() { cl.Disconnect(0) })
	return cl
}

// retainedWatch holds the last message of every topic under the hosts'
// names that a client has received, and when.
type retainedWatch struct {
	mu   sync.Mutex
	last map[string]arrival
	more chan struct{}
	mark string
	sync chan struct{}
	once sync.Once
}

type arrival struct {
	payload  string
	at       time.Time
	retained bool
}

// watchRetained subscribes from h to every topic under hosts' names, and
// to a marker topic of its own that tells when the broker has delivered
// what it retains.
func watchRetained(t testing.TB, h *clustertest.Host, url string, hosts []string) *retainedWatch {
	t.Helper()
	var filters []string
	for _, host := range hosts {
		filters = append(filters, host+"/#")
	}
	return watchTopics(t, h, url, filters)
}

// watchTopics is watchRetained for the given filters, at QoS 1: a stock
// mosquitto drops QoS 0 messages to a client whose queue is long, as a
// watcher's on a lossy link gets, and a dropped message would read as a
// host that never came back.
func watchTopics(t testing.TB, h *clustertest.Host, url string, topics []string) *retainedWatch {
	t.Helper()
	w := &retainedWatch{last: map[string]arrival{}, more: make(chan struct{}), sync: make(chan struct{})}
	w.mark = fmt.Sprintf("rollcall-test/mark/%d", time.Now().UnixNano())
	cl := brokerClient(t, h, url, fmt.Sprintf("watch-%d", time.Now().UnixNano()))
	filters := map[string]byte{w.mark: 1}
	for _, f := range topics {
		filters[f] = 1
	}
	tk := cl.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) {
		if m.Topic() == w.mark {
			w.once.Do(func() { close(w.sync) })
			return
		}
		w.mu.Lock()
		w.last[m.Topic()] = arrival{string(m.Payload()), time.Now(), m.Retained()}
		close(w.more)
		w.more = make(chan struct{})
		w.mu.Unlock()
	})
	if !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("watch %v: subscribe: %v", topics, tk.Error())
	}
	// mosquitto delivers the retained messages before this, which was
	// published after the subscription.
	cl.Publish(w.mark, 1, false, "")
	return w
}

// retained returns the retained state: every topic's retained payload as
// delivered on subscribing.
func (w *retainedWatch) retained(t testing.TB) map[string]string {
	t.Helper()
	select {
	case <-w.sync:
	case <-time.After(10 * time.Second):
		t.Fatal("the broker never delivered the marker after the retained messages")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]string{}
	for topic, a := range w.last {
		if a.retained {
			out[topic] = a.payload
		}
	}
	return out
}

// await waits until every topic of want has arrived with its payload
// (normalised), and returns when the last of them arrived.
func (w *retainedWatch) await(t testing.TB, timeout time.Duration, want map[string]string) time.Time {
	t.Helper()
	last, ok := w.tryAwait(timeout, want)
	if ok {
		return last
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var diff []string
	for _, topic := range slices.Sorted(maps.Keys(want)) {
		if a, ok := w.last[topic]; !ok || normalised(topic, a.payload) != normalised(topic, want[topic]) {
			diff = append(diff, fmt.Sprintf("%s: %.300s\n  now %.300s", topic, want[topic], a.payload))
		}
	}
	t.Fatalf("after %v, %d of %d retained topics not back as they were:\n%s", timeout, len(diff), len(want), strings.Join(diff, "\n"))
	return time.Time{}
}

// diff describes up to n of want's topics not back as they were, and how
// many are not.
func (w *retainedWatch) diff(want map[string]string, n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var diff []string
	for _, topic := range slices.Sorted(maps.Keys(want)) {
		if a, ok := w.last[topic]; !ok || normalised(topic, a.payload) != normalised(topic, want[topic]) {
			diff = append(diff, fmt.Sprintf("%s: %.300s\n  now %.300s (arrived %v)", topic, want[topic], a.payload, a.at.Format("15:04:05.000")))
		}
	}
	return fmt.Sprintf("%d of %d retained topics not back as they were:\n%s\n", len(diff), len(want), strings.Join(diff[:min(n, len(diff))], "\n"))
}

// missing reports whether a topic of host in want is not back as it was.
func (w *retainedWatch) missing(want map[string]string, host string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for topic, p := range want {
		if a, ok := w.last[topic]; strings.HasPrefix(topic, host+"/") && (!ok || normalised(topic, a.payload) != normalised(topic, p)) {
			return true
		}
	}
	return false
}

// lastOf is when the last message of host's topics arrived.
func (w *retainedWatch) lastOf(host string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var last time.Time
	for topic, a := range w.last {
		if strings.HasPrefix(topic, host+"/") && a.at.After(last) {
			last = a.at
		}
	}
	return last
}

// tryAwait is await without failing: whether and when every topic of want
// came back.
func (w *retainedWatch) tryAwait(timeout time.Duration, want map[string]string) (time.Time, bool) {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		var last time.Time
		done := true
		for topic, p := range want {
			a, ok := w.last[topic]
			if !ok || normalised(topic, a.payload) != normalised(topic, p) {
				done = false
				break
			}
			if a.at.After(last) {
				last = a.at
			}
		}
		more := w.more
		w.mu.Unlock()
		if done {
			return last, true
		}
		select {
		case <-more:
		case <-deadline:
			return time.Time{}, false
		}
	}
}

// retainedState reads the broker's retained state under hosts' names from
// h, with a client of its own.
func retainedState(t testing.TB, h *clustertest.Host, url string, hosts []string) map[string]string {
	t.Helper()
	return watchRetained(t, h, url, hosts).retained(t)
}

// normalised is what must be equal across a broker restart: the payload,
// except in a description or summary its updated time (when it was
// published) and the pins' values. Those are a snapshot from its last
// publication: a set changes output/<name> but does not republish the
// description, so the one a reconnect publishes is newer. The values
// themselves are compared on their own topics.
func normalised(topic, payload string) string {
	if !strings.HasSuffix(topic, "/description") && !strings.HasSuffix(topic, "/services") {
		return payload
	}
	var d map[string]any
	if json.Unmarshal([]byte(payload), &d) != nil {
		return payload
	}
	delete(d, "updated")
	b, _ := json.Marshal(withoutValues(d))
	return string(b)
}

func withoutValues(v any) any {
	switch v := v.(type) {
	case map[string]any:
		delete(v, "value")
		for k, x := range v {
			v[k] = withoutValues(x)
		}
	case []any:
		for i, x := range v {
			v[i] = withoutValues(x)
		}
	}
	return v
}

// diffRetained lists what differs between two retained states.
func diffRetained(before, after map[string]string) []string {
	var diff []string
	for _, topic := range slices.Sorted(maps.Keys(before)) {
		a, ok := after[topic]
		switch {
		case !ok:
			diff = append(diff, "lost "+topic)
		case normalised(topic, a) != normalised(topic, before[topic]):
			diff = append(diff, fmt.Sprintf("changed %s: %.200s -> %.200s", topic, before[topic], a))
		}
	}
	for _, topic := range slices.Sorted(maps.Keys(after)) {
		if _, ok := before[topic]; !ok {
			diff = append(diff, fmt.Sprintf("new %s: %.200s", topic, after[topic]))
		}
	}
	return diff
}

// wantHostState checks that a retained state holds what every agent
// publishes, so that comparing it is not comparing nothing.
func wantHostState(t testing.TB, state map[string]string, hosts []string) {
	t.Helper()
	for _, h := range hosts {
		for _, topic := range []string{"/status", "/description", "/services", "/gpio/output/pump_drive", "/gpio/input/float_switch"} {
			if _, ok := state[h+topic]; !ok {
				t.Fatalf("no retained %s%s: the agents did not publish their state", h, topic)
			}
		}
		if state[h+"/status"] != "online" {
			t.Fatalf("%s/status %q, want online", h, state[h+"/status"])
		}
	}
}

func TestClusterFaults(t *testing.T) {
	clustertest.Skip(t)
	bin := buildRollcall(t)

	t.Run("broker restart", func(t *testing.T) {
		const n = 5
		rc := newRollcallOn(t, bin, n, clustertest.Options{})
		for _, h := range rc.c.Hosts {
			rc.startAgent(t, h)
		}
		names := hostNames(rc.c.Hosts)
		rc.waitStatus(t, rc.c.Hosts[0], "online", names...)
		// Values other than the defaults: a setup on one host, a set on
		// another.
		h1, h2 := rc.c.Hosts[1], rc.c.Hosts[2]
		if out, stderr, code := rc.runIn(t, h1, killSetup, append([]string{"setup", h1.Name, "gpio", "-"}, rc.common()...)...); code != 0 {
			t.Fatalf("setup: exit %d\n%s%s", code, out, stderr)
		}
		if out, stderr, code := rc.run(t, h2, append([]string{"set", h2.Name, "gpio", "lamp", "1"}, rc.common()...)...); code != 0 {
			t.Fatalf("set: exit %d\n%s%s", code, out, stderr)
		}
		watcher := rc.c.Hosts[n-1]
		var before map[string]string
		clustertest.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
			before = retainedState(t, watcher, rc.broker, names)
			if before[h2.Name+"/gpio/output/lamp"] != "1" || before[h1.Name+"/gpio/output/valve"] != "1" {
				return fmt.Errorf("the set and the setup are not retained yet: lamp %q, valve %q",
					before[h2.Name+"/gpio/output/lamp"], before[h1.Name+"/gpio/output/valve"])
			}
			return nil
		})
		wantHostState(t, before, names)
		t.Logf("%d retained topics under %d hosts before the restart", len(before), n)

		for _, tt := range []struct {
			name   string
			outage time.Duration
		}{
			{name: "restarted at once"},
			// Longer than a doubling backoff's first steps (0, 1, 3 s).
			{name: "down for 3.5 s", outage: 3500 * time.Millisecond},
		} {
			t.Run(tt.name, func(t *testing.T) {
				rc.mq.Kill()
				killed := time.Now()
				time.Sleep(tt.outage) // the outage itself: nothing to wait for
				rc.mq.Start(t)
				back := time.Now()
				// Without persistence the broker returns empty: all of it
				// must come from the agents.
				w := watchRetained(t, watcher, rc.broker, names)
				last := w.await(t, 20*time.Second, before)
				t.Logf("broker down %v; every agent's status, description, summary and values back %v after it returned",
					back.Sub(killed).Round(time.Millisecond), last.Sub(back).Round(time.Millisecond))
				if d := diffRetained(before, retainedState(t, watcher, rc.broker, names)); len(d) > 0 {
					t.Errorf("retained state after the broker restart differs from before:\n%s", strings.Join(d, "\n"))
				}
			})
		}
		// And the cluster works: a sweep finds everyone.
		doc, stderr, code := rc.sweep(t, rc.c.Hosts[0], "--expect", fmt.Sprint(n))
		if code != 0 || !doc.Sweep.Complete || answered(doc) != n {
			t.Errorf("sweep after the broker restart: exit %d, complete %v, %d hosts, missing %v\n%s", code, doc.Sweep.Complete, answered(doc), doc.Missing, stderr)
		}
	})

	t.Run("link down", func(t *testing.T) {
		const n = 5
		rc := newRollcallOn(t, bin, n, clustertest.Options{})
		for _, h := range rc.c.Hosts {
			rc.startAgent(t, h)
		}
		names := hostNames(rc.c.Hosts)
		rc.waitStatus(t, rc.c.Hosts[0], "online", names...)
		sweeper, cut := rc.c.Hosts[0], rc.c.Hosts[3]

		cut.SetLink(t, false)
		pulled := time.Now()
		// Nothing reaches the broker from the host: only its keepalive
		// (1 s here, the broker waits 1.5 times that) marks it offline.
		rc.waitStatus(t, sweeper, "offline", cut.Name)
		t.Logf("%s offline %v after its link went down", cut.Name, time.Since(pulled).Round(time.Millisecond))
		// A sweep expects it (the last sweep said online, so it is named
		// once), so it is named missing; the others answer.
		if doc, _, code := rc.sweep(t, sweeper, "--hosts", cut.Name, "--timeout", "1s"); code != 2 || !slices.Equal(doc.Missing, []string{cut.Name}) || answered(doc) != n-1 {
			t.Errorf("sweep with %s's link down: exit %d, missing %v, %d answered; want exit 2, [%s] missing, %d answered",
				cut.Name, code, doc.Missing, answered(doc), cut.Name, n-1)
		}

		cut.SetLink(t, true)
		plugged := time.Now()
		rc.waitStatus(t, sweeper, "online", cut.Name)
		t.Logf("%s online %v after its link came back", cut.Name, time.Since(plugged).Round(time.Millisecond))
		clustertest.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
			doc, stderr, code := rc.sweep(t, sweeper, "--expect", fmt.Sprint(n), "--timeout", "1s")
			if code != 0 || !doc.Sweep.Complete || answered(doc) != n {
				return fmt.Errorf("sweep after the link came back: exit %d, %d hosts, missing %v: %s", code, answered(doc), doc.Missing, strings.TrimSpace(stderr))
			}
			return nil
		})
		t.Logf("sweep complete again %v after the link came back", time.Since(plugged).Round(time.Millisecond))
	})

	t.Run("loss on every link", func(t *testing.T) {
		const (
			n      = 8
			loss   = 20
			sweeps = 10
		)
		// The loss is there before anything starts: the agents connect,
		// subscribe and publish through it.
		rc := newRollcallOn(t, bin, n, clustertest.Options{Loss: loss})
		for _, h := range rc.c.Hosts {
			rc.startAgent(t, h)
		}
		rc.waitStatus(t, rc.c.Hosts[0], "online", hostNames(rc.c.Hosts)...)
		var ms []float64
		for i := range sweeps {
			doc, stderr, code := rc.sweep(t, rc.c.Hosts[0], "--expect", fmt.Sprint(n))
			if code != 0 || !doc.Sweep.Complete || answered(doc) != n {
				t.Errorf("sweep %d of %d at %d%% loss: exit %d, complete %v, %d of %d hosts, missing %v: %s",
					i+1, sweeps, loss, code, doc.Sweep.Complete, answered(doc), n, doc.Missing, strings.TrimSpace(stderr))
				continue
			}
			ms = append(ms, doc.Sweep.CompleteMS)
		}
		dropped := rc.c.Dropped(t)
		if dropped == 0 {
			t.Fatal("the switch dropped no frame: the loss was not applied")
		}
		t.Logf("%d sweeps of %d hosts at %d%% loss (%d frames dropped): complete_ms p50 %.1f max %.1f",
			len(ms), n, loss, dropped, percentile(ms, 50), percentile(ms, 100))
	})
}
