package main_test

// TestSensorSetupsSurviveSIGKILL runs the real binary on loopback (no
// namespaces, no root), as TestGPIOSetupSurvivesSIGKILL does for gpio: a
// dht22 or sonar setup answered ok is on disk, so an agent killed with
// SIGKILL right after the answers comes back with both, reading.
//
//	go test ./cmd/rollcall -run TestSensorSetupsSurviveSIGKILL -v

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sensorKillConfig is the agent's configuration file: one sensor of each.
const sensorKillConfig = `discovery:
  interfaces: [lo]
dht22:
  sensors:
    - {name: greenhouse, pin: 4}
sonar:
  rangers:
    - {name: tank_level, trigger: 5, echo: 6, samples: 1, interval: 200ms}
`

// The setups move and rename everything: nothing of them is in the file.
const (
	dhtKillSetup   = `{"id":"dht-before-kill","sensors":[{"name":"attic","pin":17,"interval":"2s","deadband":{"temperature":0.5}},{"name":"cellar","pin":27,"device":"dht11@1"}]}`
	sonarKillSetup = `{"id":"sonar-before-kill","rangers":[{"name":"bin","driver":"gpio","trigger":20,"echo":21,"samples":3,"max":1.5,"temperature":"attic"}]}`
)

func TestSensorSetupsSurviveSIGKILL(t *testing.T) {
	bin := buildRollcall(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "rollcall.yaml")
	if err := os.WriteFile(config, []byte(sensorKillConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	brokerAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	args := []string{"agent", "--sim", "--host", "k2", "--state-dir", state,
		"--embedded-broker", brokerAddr, "--port", fmt.Sprint(freePort(t, "udp")), "--config", config}

	a := startProc(t, bin, args...)
	w := watchHost(t, "tcp://"+brokerAddr, "k2")
	w.awaitServing(t, "dht22")
	w.awaitServing(t, "sonar")
	w.awaitTopic(t, 0, "k2/dht22/input/greenhouse_temperature/value")
	for _, s := range []struct{ service, payload, id string }{
		{"dht22", dhtKillSetup, "dht-before-kill"},
		{"sonar", sonarKillSetup, "sonar-before-kill"},
	} {
		res := w.requestOf(t, s.service, "k2/"+s.service+"/setup", []byte(s.payload))
		if res.Status != "ok" || string(res.ID) != `"`+s.id+`"` {
			t.Fatalf("%s setup result: %s", s.service, res)
		}
	}
	// No grace: the oks are the promise that the setups are kept.
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.wait(t)
	w.close()

	startProc(t, bin, args...)
	w = watchHost(t, "tcp://"+brokerAddr, "k2")
	w.awaitServing(t, "dht22")
	w.awaitServing(t, "sonar")
	tests := []struct {
		name, service, want string
	}{
		{"dht22", "dht22", "attic@17 cellar@27"},
		{"sonar", "sonar", "bin@20/21"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := w.requestOf(t, tc.service, "k2/"+tc.service+"/setup", nil)
			var data struct {
				Config json.RawMessage `json:"config"`
			}
			if err := json.Unmarshal(q.Data, &data); err != nil || q.Status != "ok" {
				t.Fatalf("setup query after restart: %s", q)
			}
			if got := sensorNames(data.Config); got != tc.want {
				t.Errorf("after SIGKILL and restart %s's setup is %s, want %s", tc.service, got, tc.want)
			}
		})
	}
	// The restored setups are live: the new sensors read, the ranger is
	// compensated by the restored dht22 sensor, and what the file named is
	// gone from the retained topics.
	w.awaitTopic(t, 0, "k2/dht22/input/cellar_humidity")
	// attic may say its temperature after bin's first reading.
	w.await(t, 0, "a reading of bin compensated by attic", func(m killMsg) bool {
		return m.topic == "k2/sonar/input/bin" && strings.Contains(m.payload, `"celsius":`)
	})
	for _, m := range w.since(0) {
		if strings.Contains(m.topic, "greenhouse") || strings.Contains(m.topic, "tank_level") {
			t.Errorf("%s = %q after the restart: the file's setup came back", m.topic, m.payload)
		}
	}
}

// awaitServing waits until service answers a get: the agent connects
// before its services subscribe, and a request published before then is
// lost. The runtime subscribes to get/# last.
func (w *hostWatch) awaitServing(t testing.TB, service string) {
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

// requestOf publishes payload to topic, a request topic of service, and
// returns the next result of that service.
func (w *hostWatch) requestOf(t testing.TB, service, topic string, payload []byte) killResult {
	t.Helper()
	from := w.mark()
	if tk := w.cl.Publish(topic, 1, false, payload); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tk.Error())
	}
	m := w.await(t, from, "a result for "+topic, func(m killMsg) bool { return m.topic == w.host+"/"+service+"/result" })
	var r killResult
	if err := json.Unmarshal([]byte(m.payload), &r); err != nil {
		t.Fatalf("result %q: %v", m.payload, err)
	}
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

// sensorNames lists a dht22 config's sensors as "name@pin ..." or a sonar
// config's rangers as "name@trigger/echo ...".
func sensorNames(cfg json.RawMessage) string {
	var c struct {
		Sensors []struct {
			Name string `json:"name"`
			Pin  int    `json:"pin"`
		} `json:"sensors"`
		Rangers []struct {
			Name    string `json:"name"`
			Trigger int    `json:"trigger"`
			Echo    int    `json:"echo"`
		} `json:"rangers"`
	}
	json.Unmarshal(cfg, &c)
	var s []string
	for _, x := range c.Sensors {
		s = append(s, fmt.Sprintf("%s@%d", x.Name, x.Pin))
	}
	for _, x := range c.Rangers {
		s = append(s, fmt.Sprintf("%s@%d/%d", x.Name, x.Trigger, x.Echo))
	}
	return strings.Join(s, " ")
}
