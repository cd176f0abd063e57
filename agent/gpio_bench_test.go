package agent

// BenchmarkSetToOutput: a set published by a plain client to the output
// state received back, through mosquitto on loopback, against a bare
// publish-to-receive round trip through the same broker in the same run.
// Targets: p50 and p99 ratio ≤ 2, set p99 ≤ 5 ms.
//
// The set path crosses the broker twice (client → agent → client), the
// bare round trip once, so 2 is the ratio's floor, not its slack. The
// benchmark also times a plain paho relay (a client that republishes what
// it receives) over the same two hops: set/relay is what the agent itself
// adds.
//
//	go test ./agent -run '^$' -bench SetToOutput -benchtime 1x

import (
	"fmt"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	pgpio "periph.io/x/conn/v3/gpio"

	"github.com/rollcall/rollcall/gpio"
)

// minSamples is the least number of round trips behind each percentile.
const minSamples = 500

func BenchmarkSetToOutput(b *testing.B) {
	broker := mosquitto(b)
	c := newTestCluster(b, broker)
	c.start(c.config("bench"))

	const (
		output   = "bench/gpio/output/pump_drive"
		set      = "bench/gpio/set/pump_drive"
		echo     = "bench/echo"
		relayIn  = "bench/relay/in"
		relayOut = "bench/relay/out"
	)
	type arrival struct {
		topic, payload string
		at             time.Time
	}
	got := make(chan arrival, 64)
	cl := connectUser(b, broker, "bench-user")
	// One SUBSCRIBE for both, as a user's tool would; both at QoS 1, the
	// QoS the agent uses.
	// relay is the least an MQTT service can do: a plain client that
	// republishes what it receives, so the set path's two broker hops
	// can be told apart from the agent's own work.
	relay := connectUser(b, broker, "bench-relay")
	if tk := relay.Subscribe(relayIn, 1, func(c paho.Client, m paho.Message) {
		c.Publish(relayOut, 1, false, m.Payload())
	}); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		b.Fatal("relay subscribe:", tk.Error())
	}
	tk := cl.SubscribeMultiple(map[string]byte{output: 1, echo: 1, relayOut: 1}, func(_ paho.Client, m paho.Message) {
		got <- arrival{m.Topic(), string(m.Payload()), time.Now()}
	})
	if !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		b.Fatal("subscribe:", tk.Error())
	}
	roundTrip := func(topic, payload, want, wantPayload string) time.Duration {
		start := time.Now()
		cl.Publish(topic, 1, false, payload)
		timeout := time.After(5 * time.Second)
		for {
			select {
			case a := <-got:
				if a.topic == want && a.payload == wantPayload {
					return a.at.Sub(start)
				}
			case <-timeout:
				b.Fatalf("no %s = %s within 5 s of publishing %s", want, wantPayload, topic)
			}
		}
	}
	// The retained level, then a warm-up of both paths.
	roundTrip(set, "0", output, "0")
	for i := range 50 {
		roundTrip(echo, fmt.Sprint(i), echo, fmt.Sprint(i))
		roundTrip(relayIn, fmt.Sprint(i), relayOut, fmt.Sprint(i))
		roundTrip(set, fmt.Sprint(i%2), output, fmt.Sprint(i%2))
	}

	n := max(minSamples, b.N)
	setLat := make([]time.Duration, 0, n)
	bareLat := make([]time.Duration, 0, n)
	relayLat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for i := range n {
		// Interleaved, so both see the same machine at the same moment.
		bareLat = append(bareLat, roundTrip(echo, fmt.Sprint(i), echo, fmt.Sprint(i)))
		relayLat = append(relayLat, roundTrip(relayIn, fmt.Sprint(i), relayOut, fmt.Sprint(i)))
		v := fmt.Sprint((i + 1) % 2) // the last warm-up left it at 1
		setLat = append(setLat, roundTrip(set, v, output, v))
	}
	b.StopTimer()

	sp50, sp99 := percentile(setLat, 50), percentile(setLat, 99)
	bp50, bp99 := percentile(bareLat, 50), percentile(bareLat, 99)
	rp50, rp99 := percentile(relayLat, 50), percentile(relayLat, 99)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(sp50), "set-p50-µs")
	b.ReportMetric(us(sp99), "set-p99-µs")
	b.ReportMetric(us(bp50), "bare-p50-µs")
	b.ReportMetric(us(bp99), "bare-p99-µs")
	b.ReportMetric(us(rp50), "relay-p50-µs")
	b.ReportMetric(us(rp99), "relay-p99-µs")
	b.ReportMetric(float64(sp50)/float64(bp50), "ratio-p50")
	b.ReportMetric(float64(sp99)/float64(bp99), "ratio-p99")
	b.ReportMetric(float64(sp50)/float64(rp50), "relay-ratio-p50")
	b.Logf("set→output over mosquitto, %d samples: p50 %v p99 %v; bare round trip p50 %v p99 %v; ratio p50 %.2f p99 %.2f (targets: ratio ≤ 2, p99 ≤ 5ms); plain relay p50 %v p99 %v, set/relay p50 %.2f",
		n, sp50, sp99, bp50, bp99, float64(sp50)/float64(bp50), float64(sp99)/float64(bp99), rp50, rp99, float64(sp50)/float64(rp50))
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

// BenchmarkEdgeToOnChange: an edge on a simulated input to its on_change
// message received by a plain client through mosquitto on loopback.
// Target: p99 ≤ 2 ms.
//
//	go test ./agent -run '^$' -bench EdgeToOnChange -benchtime 1x
func BenchmarkEdgeToOnChange(b *testing.B) {
	c := newTestCluster(b, mosquitto(b))
	a := c.start(c.config("bench"))
	sim, ok := a.Service("gpio").(*gpio.Service).Driver().(*gpio.Sim)
	if !ok {
		b.Fatal("the gpio service does not run on the sim driver")
	}
	const topic = "bench/gpio/input/button" // pin 22, pull-down, both edges
	got := make(chan arrivalAt, 64)
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(c.broker).SetClientID("bench-edges"))
	if tk := cl.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		b.Fatal("connect:", tk.Error())
	}
	defer cl.Disconnect(0)
	tk := cl.Subscribe(topic, 0, func(_ paho.Client, m paho.Message) {
		got <- arrivalAt{payload: string(m.Payload()), at: time.Now()}
	})
	if !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		b.Fatal("subscribe:", tk.Error())
	}
	edge := func(l pgpio.Level) time.Duration {
		want := "0"
		if l {
			want = "1"
		}
		start := time.Now()
		sim.Drive(22, l)
		timeout := time.After(5 * time.Second)
		for {
			select {
			case a := <-got:
				if a.payload == want && a.at.After(start) {
					return a.at.Sub(start)
				}
			case <-timeout:
				b.Fatalf("no %s on %s within 5 s of the edge", want, topic)
			}
		}
	}
	for range 50 {
		edge(pgpio.High)
		edge(pgpio.Low)
	}
	n := max(minSamples, b.N)
	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for i := range n {
		lat = append(lat, edge(i%2 == 0))
	}
	b.StopTimer()
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	b.ReportMetric(float64(p50)/float64(time.Microsecond), "p50-µs")
	b.ReportMetric(float64(p99)/float64(time.Microsecond), "p99-µs")
	b.Logf("edge→on_change over mosquitto, %d samples: p50 %v p99 %v (target p99 ≤ 2ms)", n, p50, p99)
}

type arrivalAt struct {
	payload string
	at      time.Time
}
