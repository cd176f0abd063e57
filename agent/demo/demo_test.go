package demo

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/agent/broker"
)

// TestRun runs the demo as `rollcall demo` does, on its own embedded
// broker and on one given with --broker, and checks that the tour saw
// every service do its part.
func TestRun(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	other, err := broker.Start("127.0.0.1:0", log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, tc := range []struct {
		name string
		opts Options
		says string
	}{
		{"embedded broker", Options{Hosts: 3}, "embedded broker on 127.0.0.1:"},
		{"given broker", Options{Hosts: 2, Broker: other.URL()}, "broker " + other.URL()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var out bytes.Buffer
			if err := Run(ctx, tc.opts, &out, log); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			s := out.String()
			for _, want := range []string{
				tc.says,
				"input float_switch 1 (wired on the simulated board)",
				"the simulated target moves away: front 2.",
				"pi-demo-1/dht22/input/air_temperature",
				"pi-demo-1/dht22/input/air_humidity",
				"pi-demo-1/sonar/input/front",
				"dac    set level 1.25 -> output level 1.25 V",
				"pi-demo-1/ain/input/light",
				"pi-demo-1/ain/input/soil",
				"pi-demo-1/dac/output/led",
				"pi-demo-1/gpio/output/lamp             1",
				"complete: true",
			} {
				if !strings.Contains(s, want) {
					t.Errorf("output lacks %q:\n%s", want, s)
				}
			}
			if n := strings.Count(s, "ain[2 in, 0 out] dac[0 in, 2 out] dht22[2 in, 0 out] gpio[2 in, 2 out] sonar[1 in, 0 out]"); n != 2*tc.opts.Hosts {
				t.Errorf("%d hosts with every service in the sweep and the inventory, want %d:\n%s", n, 2*tc.opts.Hosts, s)
			}
		})
	}
}
