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
	"strings"
	"testing"
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
	k := newKillAgent(t, "k2", sensorKillConfig)
	a, w := k.start(t)
	w.awaitService(t, "dht22")
	w.awaitService(t, "sonar")
	w.awaitTopic(t, 0, "k2/dht22/input/greenhouse_temperature/value")
	for _, s := range []struct{ service, payload, id string }{
		{"dht22", dhtKillSetup, "dht-before-kill"},
		{"sonar", sonarKillSetup, "sonar-before-kill"},
	} {
		res := w.request(t, "k2/"+s.service+"/setup", []byte(s.payload))
		if res.Status != "ok" || string(res.ID) != `"`+s.id+`"` {
			t.Fatalf("%s setup result: %s", s.service, res)
		}
	}
	// No grace: the oks are the promise that the setups are kept.
	kill(t, a, w)

	_, w = k.start(t)
	w.awaitService(t, "dht22")
	w.awaitService(t, "sonar")
	tests := []struct {
		name, service, want string
	}{
		{"dht22", "dht22", "attic@17 cellar@27"},
		{"sonar", "sonar", "bin@20/21"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := w.request(t, "k2/"+tc.service+"/setup", nil)
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
