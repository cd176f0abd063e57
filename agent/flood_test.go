package agent

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rollcall/rollcall/services"
)

// floodResult is one run of the setup flood.
type floodResult struct {
	sent, answered    int
	ok, busy, halted  int
	estopActed        time.Duration // from the estop's publish to the service halted
	estopHeard        time.Duration // from the estop's publish to a bare subscriber's receipt: the broker's own queue
	estopAnswered     time.Duration // from the estop's publish to its result, through the flooded broker
	unansweredExample string
	// appliedAfterEstop counts setups answered ok after the estop's own
	// result: the service answers in the order it serves, so each is a
	// setup applied after the stop.
	appliedAfterEstop int
}

// flood sends n setups back to back to pi1 from one client (a script gone
// wrong), then an estop from another (the operator), and waits until
// every request has a result (or 20 s pass).
func flood(t testing.TB, broker string, a *Agent, n int) floodResult {
	t.Helper()
	var (
		mu       sync.Mutex
		results  = map[string]userResult{}
		order    []string // result ids as they arrived
		estopAt  time.Time
		estopGot time.Time
		all      = make(chan struct{})
	)
	res := connectUser(t, broker, userID("flood-results"))
	defer res.Disconnect(0)
	tk := res.Subscribe("pi1/gpio/result", 0, func(_ paho.Client, m paho.Message) {
		var r userResult
		if json.Unmarshal(m.Payload(), &r) != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		id := string(r.ID)
		if _, dup := results[id]; dup || id == "" {
			return
		}
		results[id] = r
		order = append(order, id)
		if id == `"estop"` {
			estopGot = time.Now()
		}
		if len(results) == n+1 {
			close(all)
		}
	})
	if !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	// A bare subscriber to the control topic on a connection of its own
	// with the same filters the agent holds for the flood: the baseline,
	// what the broker's queue costs any client.
	var heardAt time.Time
	heard := make(chan struct{})
	bare := connectUser(t, broker, userID("bare"))
	defer bare.Disconnect(0)
	tk = bare.SubscribeMultiple(map[string]byte{"pi1/gpio/setup": 0, "pi1/gpio/control": 0}, func(_ paho.Client, m paho.Message) {
		if m.Topic() == "pi1/gpio/control" {
			heardAt = time.Now()
			close(heard)
		}
	})
	if !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	pub := connectUser(t, broker, userID("flood"))
	defer pub.Disconnect(0)
	var toks []paho.Token
	for i := range n {
		payload := fmt.Sprintf(`{"id":%d,"output":[{"name":"pump_drive","pin":25,"init":%d},{"name":"lamp","pin":23}]}`, i, i%2)
		toks = append(toks, pub.Publish("pi1/gpio/setup", 1, false, payload))
	}
	op := connectUser(t, broker, userID("operator"))
	defer op.Disconnect(0)
	mu.Lock()
	estopAt = time.Now()
	mu.Unlock()
	toks = append(toks, op.Publish("pi1/gpio/control", 1, false, `{"cmd":"estop","id":"estop"}`))
	var acted time.Duration
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
		if st, ok := a.Service("gpio").Describe().State.(services.State); ok && st.Halted {
			acted = time.Since(estopAt)
			break
		}
	}
	for _, tk := range toks {
		tk.WaitTimeout(10 * time.Second)
	}
	select {
	case <-heard:
	case <-time.After(10 * time.Second):
	}
	select {
	case <-all:
	case <-time.After(20 * time.Second):
	}
	mu.Lock()
	defer mu.Unlock()
	fr := floodResult{sent: n + 1, answered: len(results), estopActed: acted}
	if !heardAt.IsZero() {
		fr.estopHeard = heardAt.Sub(estopAt)
	}
	for i := range n {
		r, ok := results[fmt.Sprint(i)]
		switch {
		case !ok:
			if fr.unansweredExample == "" {
				fr.unansweredExample = fmt.Sprint(i)
			}
		case r.Status == "ok":
			fr.ok++
		case r.Error != nil && r.Error.Code == "busy":
			fr.busy++
		case r.Error != nil && r.Error.Code == "halted":
			fr.halted++
		}
	}
	if !estopGot.IsZero() {
		fr.estopAnswered = estopGot.Sub(estopAt)
	}
	if i := slices.Index(order, `"estop"`); i >= 0 {
		for _, id := range order[i+1:] {
			if results[id].Status == "ok" {
				fr.appliedAfterEstop++
			}
		}
	}
	return fr
}

// TestSetupFloodEstop: under a flood of setups, every request gets a
// result (done, busy or halted: never silence), and an estop sent after
// them is acted on ahead of the setups still queued.
func TestSetupFloodEstop(t *testing.T) {
	forEachBroker(t, func(t *testing.T, broker string) {
		c := newTestCluster(t, broker)
		a := c.start(c.config("pi1"))
		fr := flood(t, broker, a, 3000)
		t.Logf("%d requests: %d answered (%d ok, %d busy, %d halted); estop acted on %v after it was sent (a bare subscriber had it after %v), answered after %v",
			fr.sent, fr.answered, fr.ok, fr.busy, fr.halted, fr.estopActed, fr.estopHeard, fr.estopAnswered)
		if fr.answered != fr.sent {
			t.Errorf("%d of %d requests got no result (e.g. id %s)", fr.sent-fr.answered, fr.sent, fr.unansweredExample)
		}
		if fr.estopActed == 0 || fr.estopAnswered == 0 {
			t.Fatal("the estop was not acted on or not answered")
		}
		// No setup is applied once the estop is served. Whether any were
		// still queued when it came depends on how fast this machine
		// reads the flood (services' TestRuntimeControlOvertakesSetups
		// shows the overtaking itself, deterministically).
		if fr.appliedAfterEstop > 0 {
			t.Errorf("%d setups applied after the estop", fr.appliedAfterEstop)
		}
		if fr.halted == 0 && fr.busy == 0 {
			t.Log("every setup was served before the estop arrived: nothing queued for it to overtake on this run")
		}
	})
}

// BenchmarkEstopUnderFlood reports the estop's latency under a 3,000-setup
// flood through mosquitto (target p99 ≤ 50 ms) and the requests left
// without a result (target 0), over several floods, beside the baseline:
// a bare subscriber to the same topics on a connection of its own, which
// the broker serves the same flood.
func BenchmarkEstopUnderFlood(b *testing.B) {
	broker := mosquitto(b)
	var acted, heard, answered []time.Duration
	unanswered := 0
	const floods = 20
	for range floods {
		c := newTestCluster(b, broker)
		a := c.start(c.config("pi1"))
		fr := flood(b, broker, a, 3000)
		acted = append(acted, fr.estopActed)
		heard = append(heard, fr.estopHeard)
		answered = append(answered, fr.estopAnswered)
		unanswered += fr.sent - fr.answered
		c.stopAll()
	}
	slices.Sort(acted)
	slices.Sort(heard)
	slices.Sort(answered)
	b.ReportMetric(float64(acted[len(acted)/2].Microseconds())/1000, "acted-p50-ms")
	b.ReportMetric(float64(acted[len(acted)*99/100].Microseconds())/1000, "acted-p99-ms")
	b.ReportMetric(float64(heard[len(heard)/2].Microseconds())/1000, "bare-p50-ms")
	b.ReportMetric(float64(heard[len(heard)*99/100].Microseconds())/1000, "bare-p99-ms")
	b.ReportMetric(float64(answered[len(answered)/2].Microseconds())/1000, "answered-p50-ms")
	b.ReportMetric(float64(answered[len(answered)*99/100].Microseconds())/1000, "answered-p99-ms")
	b.ReportMetric(float64(unanswered), "unanswered")
}
