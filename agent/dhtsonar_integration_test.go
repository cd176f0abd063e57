package agent

// The dht22 and sonar services through a real broker, on simulated
// sensors, from a plain paho client: readings arriving (the sonar
// compensated by the dht22's temperature), a setup applied, the sonar's
// deadband, and pins held by another service refused naming both. Each
// scenario runs against the embedded broker and against mosquitto.

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/sensors/dht22"
	"github.com/rollcall/rollcall/sensors/sonar"
	"github.com/rollcall/rollcall/services"
)

// sensorTarget is the topic the test moves the sim sonar's target with:
// 0 puts it at 0.5 m, 1 at 1.5 m.
const sensorTarget = "lab/sonar_target"

// sensorHost starts agent pi1 (the sim board, i2c1 enabled) running gpio,
// dht22 and sonar, and a user watching its topics: a DHT22 "air" on
// GPIO 4 and an HC-SR04 "front" on GPIO 5 and 6, compensated by "air",
// its target on sensorTarget, read ten times a second.
func sensorHost(t *testing.T, broker string) *mqttUser {
	t.Helper()
	c := newTestCluster(t, broker)
	cfg := c.config("pi1")
	cfg.Buses = []string{"i2c1"}
	cfg.Services = []string{"gpio", dht22.Name, sonar.Name}
	cfg.Blocks[dht22.Name] = &dht22.Config{Sensors: []dht22.SensorConfig{{Name: "air", Pin: 4}}}
	cfg.Blocks[sonar.Name] = &sonar.Config{Rangers: []sonar.RangerConfig{{
		Name: "front", Trigger: 5, Echo: 6, Samples: 1, Interval: services.Duration(100 * time.Millisecond),
		Deadband: 0.05, Temperature: "air",
		SimTarget: sonar.SimTarget{Topic: sensorTarget, Low: 0, High: 1, Near: 0.5, Far: 1.5},
	}}}
	c.start(cfg)
	u := newMQTTUser(t, broker, "pi1")
	u.awaitService(dht22.Name)
	u.awaitService(sonar.Name)
	return u
}

// awaitService waits until service answers a get: the agent is ready
// before its services have subscribed, and a request published before
// then is lost. The runtime subscribes to get/# last.
func (u *mqttUser) awaitService(service string) {
	u.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		id := fmt.Sprintf(`"ready-%d"`, i)
		from := u.mark()
		u.publish(u.host+"/"+service+"/get", []byte(`{"id":`+id+`}`))
		if _, _, ok := u.tryAwait(from, 200*time.Millisecond, func(m userMsg) bool {
			return m.topic == u.host+"/"+service+"/result" && strings.Contains(m.payload, `"id":`+id)
		}); ok {
			return
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("the %s service of %s never answered", service, u.host)
		}
	}
}

// reading waits for a reading on topic from index from on that satisfies
// ok, and returns it.
func (u *mqttUser) reading(from int, topic string, ok func(map[string]any) bool) (map[string]any, int) {
	u.t.Helper()
	var v map[string]any
	_, i := u.await(from, "a reading on "+topic, func(m userMsg) bool {
		return m.topic == topic && json.Unmarshal([]byte(m.payload), &v) == nil && ok(v)
	})
	return v, i
}

// sensorState decodes service's state from a fresh host description
// into v. It asks with <host>/get, which republishes the description and
// none of the services' values.
func (u *mqttUser) sensorState(service string, v any) {
	u.t.Helper()
	from := u.mark()
	u.publish(u.host+"/get", nil)
	var d services.HostDescription
	u.await(from, "a description", func(m userMsg) bool {
		return m.topic == u.host+"/description" && json.Unmarshal([]byte(m.payload), &d) == nil
	})
	for _, s := range d.Services {
		if s.Function == service {
			b, _ := json.Marshal(s.State)
			if err := json.Unmarshal(b, v); err != nil {
				u.t.Fatalf("%s state %s: %v", service, b, err)
			}
			return
		}
	}
	u.t.Fatalf("no %s in the description", service)
}

// TestSensorsReadingsAndSetup: the configured sensors publish readings,
// retained, as JSON and as a bare number; the sonar's carries the
// temperature the dht22 published; a setup over MQTT adds a sensor whose
// readings follow, and the host's description lists every input with its
// unit, range and interval.
func TestSensorsReadingsAndSetup(t *testing.T) {
	forEachBroker(t, func(t *testing.T, broker string) {
		u := sensorHost(t, broker)
		temp, _ := u.reading(0, "pi1/dht22/input/air_temperature", func(v map[string]any) bool { return v["unit"] == "°C" })
		c, ok := temp["value"].(float64)
		if !ok || c < -40 || c > 80 || temp["raw"] != math.Round(c*1000) || temp["ts"] == "" {
			t.Errorf("temperature %v", temp)
		}
		if bare, err := strconv.ParseFloat(u.retained("pi1/dht22/input/air_temperature/value"), 64); err != nil || bare < -40 || bare > 80 {
			t.Errorf("bare temperature %v: %v", bare, err)
		}
		if got := u.retained("pi1/dht22/input/air_humidity"); !strings.Contains(got, `"unit":"%RH"`) {
			t.Errorf("retained humidity %q", got)
		}
		// The sonar's reading carries a temperature the dht22 published.
		// Its target is moved until a reading comes (the temperature may
		// reach the sonar after the user).
		var front map[string]any
		for i := 0; front == nil; i++ {
			if i == 20 {
				t.Fatal("no sonar reading carries a temperature")
			}
			// Far first: the target starts near, and a move within the
			// deadband publishes nothing.
			far := (i + 1) % 2
			want := 0.5 + float64(far)
			from := u.mark()
			u.publish(sensorTarget, []byte(strconv.Itoa(far)))
			v, _ := u.reading(from, "pi1/sonar/input/front", func(v map[string]any) bool {
				m, ok := v["value"].(float64)
				return ok && math.Abs(m-want) < 0.03
			})
			if v["celsius"] != nil {
				front = v
			}
		}
		var temps []float64
		for _, m := range u.since(0) {
			if m.topic == "pi1/dht22/input/air_temperature/value" {
				f, _ := strconv.ParseFloat(m.payload, 64)
				temps = append(temps, f)
			}
		}
		if !containsFloat(temps, front["celsius"].(float64)) || front["unit"] != "m" {
			t.Errorf("sonar reading %v; temperatures published %v", front, temps)
		}

		from := u.mark()
		r := u.ask(dht22.Name, "setup", `{"id":"s1","merge":true,"sensors":[{"name":"shed","pin":27,"device":"dht11@1","interval":"2s"}]}`)
		u.ok(r, services.OpSetup)
		if string(r.ID) != `"s1"` {
			t.Errorf("setup id %s", r.ID)
		}
		u.reading(from, "pi1/dht22/input/shed_humidity", func(v map[string]any) bool { return v["unit"] == "%RH" })
		d := u.awaitDescription(from, "the shed's inputs", func(d gpioDescription) bool {
			for _, s := range d.Services {
				if s.Function == dht22.Name && len(s.Inputs) == 4 {
					return true
				}
			}
			return false
		})
		for _, s := range d.Services {
			for _, in := range s.Inputs {
				switch in.Name {
				case "shed_temperature":
					if in.Unit != "°C" || *in.Min != -40 || *in.Max != 80 || in.Interval.D() != 2*time.Second || in.Topic != "pi1/dht22/input/shed_temperature" {
						t.Errorf("shed_temperature %+v", in)
					}
				case "front":
					if in.Unit != "m" || *in.Max != 4 || in.Interval.D() != 100*time.Millisecond {
						t.Errorf("front %+v", in)
					}
				}
			}
		}
	})
}

func containsFloat(s []float64, v float64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestSensorsDeadband: a sonar reading is published only once it moves
// past the deadband: the target held still (wandering 2 cm) publishes
// nothing over ten readings, and moved a metre it publishes at once.
func TestSensorsDeadband(t *testing.T) {
	forEachBroker(t, func(t *testing.T, broker string) {
		u := sensorHost(t, broker)
		near := func(want float64) func(map[string]any) bool {
			return func(v map[string]any) bool {
				m, ok := v["value"].(float64)
				return ok && math.Abs(m-want) < 0.03
			}
		}
		// Far, then near: the target starts near, and a reading within the
		// deadband of the last one published (perhaps before this test
		// looked) is not published again.
		from := u.mark()
		u.publish(sensorTarget, []byte("1"))
		u.reading(from, "pi1/sonar/input/front", near(1.5))
		from = u.mark()
		u.publish(sensorTarget, []byte("0"))
		u.reading(from, "pi1/sonar/input/front", near(0.5))
		// Let it settle (a reading of the walking target may have matched),
		// then watch ten readings.
		var st struct {
			Rangers []sonar.RangerState `json:"rangers"`
		}
		reads := func(n int) {
			u.sensorState(sonar.Name, &st)
			want := st.Rangers[0].Reads + n
			// A tenth of a second each, but a loaded CI machine can
			// hold the scan back: the bound is generous.
			deadline := time.Now().Add(30 * time.Second)
			for st.Rangers[0].Reads < want {
				if time.Now().After(deadline) {
					t.Fatalf("the ranger did not read %d times in 30 s", n)
				}
				u.sensorState(sonar.Name, &st)
			}
		}
		reads(3)
		i := u.mark()
		reads(10)
		for _, m := range u.since(i) {
			if m.topic == "pi1/sonar/input/front" {
				t.Errorf("published within the deadband: %s", m.payload)
			}
		}
		from = u.mark()
		u.publish(sensorTarget, []byte(`{"value":1}`))
		u.reading(from, "pi1/sonar/input/front", near(1.5))
		bare, _ := u.await(from, "the bare distance", func(m userMsg) bool { return m.topic == "pi1/sonar/input/front/value" })
		if got, err := strconv.ParseFloat(bare.payload, 64); err != nil || math.Abs(got-1.5) > 0.03 {
			t.Errorf("bare distance %q, want about 1.5", bare.payload)
		}
		if got := u.retained("pi1/sonar/input/front/value"); got != bare.payload {
			t.Errorf("retained bare distance %q, want %q", got, bare.payload)
		}
	})
}

// TestSensorsConflicts: a pin gpio holds, a pin of the enabled i2c1, and
// a pin the other sensor service holds, are refused naming both holders,
// and the setup stays as it was.
func TestSensorsConflicts(t *testing.T) {
	cases := []struct {
		name, service, payload, field, message string
	}{
		{name: "trigger held by gpio", service: sonar.Name, payload: `{"rangers":[{"name":"front","trigger":25,"echo":6}]}`,
			field: "rangers[0].trigger", message: "sonar cannot take GPIO 25: gpio (output[0].pin) holds it"},
		{name: "data pin of i2c1", service: dht22.Name, payload: `{"sensors":[{"name":"air","pin":3}]}`,
			field: "sensors[0].pin", message: "dht22 cannot take GPIO 3: buses (i2c1 pins, buses[0]) holds it"},
		{name: "data pin of the sonar", service: dht22.Name, payload: `{"sensors":[{"name":"air","pin":6}]}`,
			field: "sensors[0].pin", message: "dht22 cannot take GPIO 6: sonar (rangers[0].echo) holds it"},
		{name: "gpio onto the dht22's pin", service: "gpio", payload: `{"output":[{"name":"pump_drive","pin":4}]}`,
			field: "output[0].pin", message: "gpio cannot take GPIO 4: dht22 (sensors[0].pin) holds it"},
	}
	forEachBroker(t, func(t *testing.T, broker string) {
		u := sensorHost(t, broker)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				u.t = t
				before := u.ask(tc.service, "setup", "")
				r := u.ask(tc.service, "setup", tc.payload)
				if r.Status != "error" || r.Error == nil || r.Error.Code != services.CodeConflict || r.Error.Field != tc.field || !strings.Contains(r.Error.Message, tc.message) {
					t.Errorf("result %+v, want a conflict at %s saying %q", r, tc.field, tc.message)
				}
				if after := u.ask(tc.service, "setup", ""); string(after.Data) != string(before.Data) {
					t.Errorf("setup changed:\n%s\nwas\n%s", after.Data, before.Data)
				}
			})
		}
		u.t = t
	})
}
