package agent

// BenchmarkAIN1kHz: one agent running every simulated service (gpio, ain,
// dac) scans one ain channel every millisecond for a few seconds, and the
// benchmark reports what that costs: the reads made per second, the
// readings that reached a subscriber per second, and the CPU the test
// process used, in percent of one core, with the deadband off (every
// reading published) and on (a change of 10 or 50 mV published; the
// simulated input drifts up to 70 mV/s with 3 mV of noise), beside an idle
// agent (the channel read once a second). The broker is mosquitto, so its
// work is not counted; the subscriber is in the process, and is.
//
//	go test ./agent -run '^$' -bench AIN1kHz -benchtime 1x

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/sensors/ain"
	"github.com/rollcall/rollcall/sensors/dac"
	"github.com/rollcall/rollcall/services"
)

// benchWindow is how long each case is measured.
const benchWindow = 3 * time.Second

func BenchmarkAIN1kHz(b *testing.B) {
	cases := []struct {
		name    string
		channel string
	}{
		{"idle", `{"name":"fast","channel":0,"interval":"1s"}`},
		{"deadband=off", `{"name":"fast","channel":0,"interval":"1ms"}`},
		{"deadband=10mV", `{"name":"fast","channel":0,"interval":"1ms","deadband":0.01}`},
		{"deadband=50mV", `{"name":"fast","channel":0,"interval":"1ms","deadband":0.05}`},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			broker := mosquitto(b)
			c := newTestCluster(b, broker)
			cfg := c.config("bench")
			cfg.Services = []string{gpio.Name, ain.Name, dac.Name}
			cfg.Blocks[ain.Name] = &ain.Config{}
			cfg.Blocks[dac.Name] = &dac.Config{Chips: []dac.ChipConfig{{Name: "sim", Chip: "sim"}}, Outputs: []dac.OutputConfig{{Name: "level", Init: 1}}}
			c.start(cfg)
			u := newMQTTUser(b, broker, "bench")
			u.awaitService(ain.Name)

			var msgs atomic.Int64
			cl := connectUser(b, broker, "bench-counter")
			if tk := cl.Subscribe("bench/ain/input/fast", 1, func(paho.Client, paho.Message) { msgs.Add(1) }); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
				b.Fatal("subscribe:", tk.Error())
			}
			u.ok(u.ask(ain.Name, "setup", `{"channels":[`+tc.channel+`]}`), services.OpSetup)
			waitFor(b, 5*time.Second, "the first reading", func() bool { return msgs.Load() > 0 })

			for b.Loop() {
				// The gets republish the reading once each: one message in
				// the count at most, against thousands.
				ch0 := u.ainChannels()["fast"]
				msgs0 := msgs.Load()
				cpu0 := cpuTime(b)
				start := time.Now()
				time.Sleep(benchWindow) // the measured interval itself, not a wait for an event
				wall := time.Since(start)
				cpu := cpuTime(b) - cpu0
				msgs1 := msgs.Load()
				ch1 := u.ainChannels()["fast"]
				b.ReportMetric(float64(ch1.Reads-ch0.Reads)/wall.Seconds(), "reads/s")
				b.ReportMetric(float64(ch1.Missed-ch0.Missed)/wall.Seconds(), "missed/s")
				b.ReportMetric(float64(msgs1-msgs0)/wall.Seconds(), "msgs/s")
				b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
			}
		})
	}
}

// cpuTime is the user and system time the process has used.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(fmt.Errorf("getrusage: %w", err))
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
