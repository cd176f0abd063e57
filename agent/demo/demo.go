// Package demo runs a whole rollcall cluster on one machine, without root
// or hardware: a broker, simulated hosts each running every service, a
// sweep over real UDP broadcast on the loopback interface, a tour that
// drives outputs over MQTT and reads the sensors that follow them, and the
// retained inventory. It is `rollcall demo`.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/agent/broker"
	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/sensors/ain"
	"github.com/rollcall/rollcall/sensors/dac"
	"github.com/rollcall/rollcall/sensors/dht22"
	"github.com/rollcall/rollcall/sensors/sonar"
	"github.com/rollcall/rollcall/services"
)

// Options shape the demo.
type Options struct {
	Hosts int
	// Dir holds the hosts' state; empty: a temporary directory, removed after.
	Dir string
	// Broker is the URL of a broker to use; empty: an embedded one on a
	// free loopback port.
	Broker string
	// Port is the discovery UDP port; 0: a free one.
	Port int
	// Stay keeps the cluster running after the tour, until ctx ends, so
	// that it can be driven with rollcall's other commands.
	Stay bool
}

// tourHost is the host the tour drives.
const tourHost = "pi-demo-1"

// Run runs a whole cluster on this machine without root: a broker,
// opts.Hosts simulated hosts (each with its own monitor on the loopback
// interface, its own state and machine identity, and every service), one
// sweep over real UDP broadcast and MQTT, a tour of one host's services,
// and the retained inventory. It fails when a host or a service is
// missing or does not do what the tour expects of it.
func Run(ctx context.Context, opts Options, out io.Writer, log *slog.Logger) error {
	if opts.Hosts < 1 {
		opts.Hosts = 4
	}
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "rollcall-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	url := opts.Broker
	if url == "" {
		b, err := broker.Start("127.0.0.1:0", log, nil)
		if err != nil {
			return err
		}
		defer b.Close()
		url = b.URL()
		fmt.Fprintf(out, "embedded broker on %s", b.Addr())
	} else {
		fmt.Fprintf(out, "broker %s", url)
	}
	port := opts.Port
	if port == 0 {
		p, err := freeUDPPort()
		if err != nil {
			return err
		}
		port = p
	}
	fmt.Fprintf(out, ", discovery on udp/%d (loopback)\n", port)

	base := func(host string) agent.Config {
		c := agent.DefaultConfig()
		c.Host = host
		c.StateDir = filepath.Join(dir, host)
		c.Sim = true
		c.LogLevel = "warn"
		c.MQTT.Broker, c.MQTT.Keepalive = url, 10*time.Second
		c.Discovery.Port = port
		c.Discovery.Interfaces = []string{"lo"}
		return c
	}

	actx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for i := 1; i <= opts.Hosts; i++ {
		cfg := base(fmt.Sprintf("pi-demo-%d", i))
		hostServices(&cfg)
		a, err := agent.New(cfg, log)
		if err != nil {
			return fmt.Errorf("demo host %s: %w", cfg.Host, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Run(actx); err != nil {
				log.Error("demo host stopped", "host", cfg.Host, "err", err)
			}
		}()
		select {
		case <-a.Ready():
		case <-time.After(10 * time.Second):
			return fmt.Errorf("demo host %s: not ready after 10s (is the broker %s reachable?)", cfg.Host, url)
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	sc := base("demo-sweeper").Client()
	inv, err := cluster.Sweep(ctx, sc, cluster.SweepOptions{Expect: opts.Hosts, Timeout: 5 * time.Second}, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nsweep %d: %d hosts in %.1f ms (%d probe(s))\n", inv.Sweep.ID, len(inv.Hosts), inv.Sweep.CompleteMS, inv.Sweep.Probes)
	inv.Table(out)
	if len(inv.Missing) > 0 {
		return fmt.Errorf("demo: hosts missing from the sweep: %s", strings.Join(inv.Missing, ", "))
	}
	if len(inv.Hosts) != opts.Hosts {
		return errors.New("demo: the sweep did not find every host")
	}
	for _, h := range inv.Hosts {
		if len(h.MissingServices) > 0 {
			return fmt.Errorf("demo: %s: services that did not answer: %s", h.Host, strings.Join(h.MissingServices, ", "))
		}
	}

	c, err := cluster.Dial(ctx, sc, "demo", log)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := tour(ctx, c, out); err != nil {
		return err
	}

	ci, err := cluster.ReadInventory(ctx, sc, log, nil)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\ninventory (retained, readable from any host):")
	ci.Table(out)

	if !opts.Stay {
		return nil
	}
	conn := "--broker " + url
	fmt.Fprintf(out, `
the cluster keeps running until Ctrl-C; from another shell:
  rollcall inventory %[1]s
  rollcall get %[2]s %[1]s
  rollcall set %[2]s gpio lamp 1 %[1]s
  rollcall watch %[2]s %[1]s
  rollcall sweep %[1]s --port %[3]d --interface lo
  rollcall dashboard %[1]s --allow-control     (then open http://127.0.0.1:4748/)
`, conn, tourHost, port)
	<-ctx.Done()
	return nil
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// hostServices gives a demo host every service, on the simulated board of
// configs/sim.yaml: the seed's pins (outputs on 25 and 23, pull-down
// inputs on 17 and 22) with the pump's output wired to the float switch;
// a DHT22 on GPIO 4; an HC-SR04 on 5 and 6, compensated by the DHT22,
// whose target follows the lamp: 0.5 m when it is off, 2.5 m when it is
// on; a PCF8591 on I2C whose inputs read light and soil and whose output
// drives an LED that follows the light reading; and a second converter
// with an output of its own.
func hostServices(cfg *agent.Config) {
	cfg.Services = []string{gpio.Name, ain.Name, dac.Name, dht22.Name, sonar.Name}
	cfg.Blocks[gpio.Name] = &gpio.Config{
		Driver: "sim",
		Output: []gpio.OutputPin{
			{Name: "pump_drive", Pin: 25, Pull: "down"},
			{Name: "lamp", Pin: 23},
		},
		Input: []gpio.InputPin{
			{Name: "float_switch", Pin: 17, Pull: "down", Edge: "both"},
			{Name: "button", Pin: 22, Pull: "down", Edge: "both"},
		},
		Wiring: []gpio.Wire{{From: 25, To: 17}},
	}
	cfg.Blocks[ain.Name] = &ain.Config{
		Chips: []ain.ChipConfig{{Name: "yl40", Chip: "pcf8591", Addr: 0x48, DAC: true}},
		Channels: []ain.ChannelConfig{
			{Name: "light", Chip: "yl40", Channel: 0, Interval: services.Duration(time.Second), Deadband: 0.01},
			{Name: "soil", Chip: "yl40", Channel: 1, Interval: services.Duration(5 * time.Second), Scale: 30.3, Unit: "%"},
		},
	}
	cfg.Blocks[dac.Name] = &dac.Config{
		Chips: []dac.ChipConfig{{Name: "yl40", Chip: "pcf8591", Addr: 0x48}, {Name: "sim0", Chip: "sim"}},
		Outputs: []dac.OutputConfig{
			{Name: "led", Chip: "yl40", Follow: cfg.Host + "/ain/input/light"},
			{Name: "level", Chip: "sim0", Channel: 0},
		},
	}
	cfg.Blocks[dht22.Name] = &dht22.Config{Sensors: []dht22.SensorConfig{{
		Name: "air", Pin: 4, Driver: dht22.DriverSim, Interval: services.Duration(dht22.MinInterval),
	}}}
	cfg.Blocks[sonar.Name] = &sonar.Config{Rangers: []sonar.RangerConfig{{
		Name: "front", Driver: sonar.DriverSim, Trigger: 5, Echo: 6, Samples: 3,
		Interval: services.Duration(200 * time.Millisecond), Deadband: 0.05, Temperature: "air",
		SimTarget: sonar.SimTarget{Topic: cfg.Host + "/gpio/output/lamp", Low: 0, High: 1, Near: 0.5, Far: 2.5},
	}}}
}

// tour drives the tour host's outputs as any MQTT client would, through
// rollcall's request protocol, and waits for what each one moves: the
// float switch wired to the pump, and the sonar's target that follows the
// lamp. Then it prints every reading of the host.
func tour(ctx context.Context, c *cluster.Client, out io.Writer) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changes := make(chan cluster.Change, 256)
	go c.Watch(wctx, tourHost, "", func(ch cluster.Change) {
		select {
		case changes <- ch:
		default:
		}
	})
	// await waits for a change that satisfies ok.
	await := func(what string, ok func(cluster.Change) bool) (cluster.Change, error) {
		timeout := time.After(5 * time.Second)
		for {
			select {
			case ch := <-changes:
				if ok(ch) {
					return ch, nil
				}
			case <-timeout:
				return cluster.Change{}, fmt.Errorf("demo: %s never came", what)
			case <-ctx.Done():
				return cluster.Change{}, ctx.Err()
			}
		}
	}
	set := func(service, name, value string) (time.Time, error) {
		start := time.Now()
		if _, err := c.Do(ctx, tourHost, service, "set/"+name, cluster.SetPayload(value, 0)); err != nil {
			return start, fmt.Errorf("demo: set %s %s %s: %w", service, name, value, err)
		}
		return start, nil
	}
	ms := func(since time.Time) float64 { return float64(time.Since(since).Microseconds()) / 1000 }

	// The watch is subscribed once the broker hands it the host's
	// retained status: a set sent before then could move an input before
	// anyone watched it.
	if _, err := await("the watch on "+tourHost, func(ch cluster.Change) bool { return ch.Kind == "status" }); err != nil {
		return err
	}
	fmt.Fprintf(out, "\ntour of %s, over MQTT:\n", tourHost)
	start, err := set(gpio.Name, "pump_drive", "1")
	if err != nil {
		return err
	}
	if _, err := await("the float switch wired to the pump", func(ch cluster.Change) bool {
		return ch.Service == gpio.Name && ch.Name == "float_switch" && ch.Value == "1" && !ch.Retained
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "  gpio   set pump_drive 1 -> input float_switch 1 (wired on the simulated board) after %.1f ms\n", ms(start))

	start, err = set(gpio.Name, "lamp", "1")
	if err != nil {
		return err
	}
	ch, err := await("a sonar reading of the target the lamp moved", func(ch cluster.Change) bool {
		return ch.Service == sonar.Name && ch.Name == "front" && !ch.Retained && reading(ch.Value) > 2
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  sonar  set lamp 1 -> the simulated target moves away: front %s after %.0f ms\n", fmtReading(ch.Value), ms(start))

	start, err = set(dac.Name, "level", "1.25")
	if err != nil {
		return err
	}
	ch, err = await("the dac output's new value", func(ch cluster.Change) bool {
		return ch.Service == dac.Name && ch.Name == "level" && !ch.Retained && math.Abs(reading(ch.Value)-1.25) < 0.01 // the nearest code
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  dac    set level 1.25 -> output level %s after %.1f ms\n", fmtReading(ch.Value), ms(start))

	fmt.Fprintf(out, "\nreadings of %s (retained, as any client reads them):\n", tourHost)
	return printReadings(ctx, c, out)
}

// printReadings prints every input and output of the tour host the broker
// holds.
func printReadings(ctx context.Context, c *cluster.Client, out io.Writer) error {
	// One filter of its own: the tour's watch holds the narrower ones.
	got, err := c.Retained(ctx, tourHost+"/#")
	if err != nil {
		return err
	}
	vals := map[string][]byte{}
	for k, v := range got {
		if parts := strings.Split(k, "/"); len(parts) == 4 && (parts[2] == "input" || parts[2] == "output") {
			vals[k] = v
		}
	}
	var want []string
	for _, svc := range []string{gpio.Name, ain.Name, dac.Name, dht22.Name, sonar.Name} {
		if !slices.ContainsFunc(slices.Collect(mapKeys(vals)), func(t string) bool { return strings.HasPrefix(t, tourHost+"/"+svc+"/") }) {
			want = append(want, svc)
		}
	}
	if len(want) > 0 {
		return fmt.Errorf("demo: no readings retained for %s", strings.Join(want, ", "))
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TOPIC\tVALUE")
	for _, t := range slices.Sorted(mapKeys(vals)) {
		fmt.Fprintf(tw, "  %s\t%s\n", cluster.Clean(t), fmtReading(string(vals[t])))
	}
	return tw.Flush()
}

func mapKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// reading is the number a value carries: a sensor's {"value":…} or a bare
// number; NaN when it has none.
func reading(v string) float64 {
	var r struct {
		Value *float64 `json:"value"`
	}
	if json.Unmarshal([]byte(v), &r) == nil && r.Value != nil {
		return *r.Value
	}
	var f float64
	if json.Unmarshal([]byte(v), &f) == nil {
		return f
	}
	return math.NaN()
}

// fmtReading shows a sensor's reading as its value and unit, anything
// else as it is.
func fmtReading(v string) string {
	var r struct {
		Value *float64 `json:"value"`
		Unit  string   `json:"unit"`
	}
	if json.Unmarshal([]byte(v), &r) == nil && r.Value != nil {
		// Four significant digits: what a converter's step allows.
		return strings.TrimSpace(fmt.Sprintf("%.4g %s", *r.Value, r.Unit))
	}
	return cluster.Clean(v)
}
