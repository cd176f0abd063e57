// Package demo runs a whole rollcall cluster on one machine, without root
// or hardware: the embedded broker, simulated hosts, a sweep over real UDP
// broadcast on the loopback interface, a pin driven over MQTT, and the
// retained inventory. It is `rollcall demo`.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/agent/broker"
	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/agent/session"
	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/services"
)

// Options shape the demo.
type Options struct {
	Hosts int
	// Dir holds the hosts' state; empty: a temporary directory, removed after.
	Dir string
}

// Run runs a whole cluster on this machine without root: the embedded
// broker, opts.Hosts simulated hosts (each with its own monitor on the
// loopback interface, its own state and machine identity), one sweep over
// real UDP broadcast and MQTT, and the retained inventory. It fails when a
// host is missing.
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
	broker, err := broker.Start("127.0.0.1:0", log, nil)
	if err != nil {
		return err
	}
	defer broker.Close()
	port, err := freeUDPPort()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "embedded broker on %s, discovery on udp/%d (loopback)\n", broker.Addr(), port)

	base := func(host string) agent.Config {
		c := agent.DefaultConfig()
		c.Host = host
		c.StateDir = filepath.Join(dir, host)
		c.Sim = true
		c.LogLevel = "warn"
		c.MQTT.Broker, c.MQTT.Keepalive = broker.URL(), 10*time.Second
		c.Discovery.Port = port
		c.Discovery.Interfaces = []string{"lo"}
		return c
	}

	actx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for i := 1; i <= opts.Hosts; i++ {
		cfg := base(fmt.Sprintf("pi-demo-%d", i))
		cfg.Blocks[gpio.Name] = demoGPIO()
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
			return fmt.Errorf("demo host %s: not ready after 10s", cfg.Host)
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

	if err := demoDrive(ctx, sc, "pi-demo-1", out, log); err != nil {
		return err
	}

	ci, err := cluster.ReadInventory(ctx, sc, log, nil)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\ninventory (retained, readable from any host):")
	ci.Table(out)
	if len(inv.Missing) > 0 {
		return fmt.Errorf("demo: hosts missing from the sweep: %s", strings.Join(inv.Missing, ", "))
	}
	if len(inv.Hosts) != opts.Hosts {
		return errors.New("demo: the sweep did not find every host")
	}
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

// demoGPIO is the seed's example host: outputs on 25 and 23, pull-down
// inputs on 17 and 22, with the simulated board wiring the pump's output
// to the float switch so that driving one is seen on the other.
func demoGPIO() *gpio.Config {
	return &gpio.Config{
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
}

// demoDrive drives one host's pump output over MQTT, as any client would,
// and waits for the float switch wired to it on the simulated board.
func demoDrive(ctx context.Context, cfg cluster.Config, host string, out io.Writer, log *slog.Logger) error {
	s, err := session.New(session.Options{Config: cfg.MQTT, ClientID: "rollcall-demo-" + cfg.Name}, log)
	if err != nil {
		return err
	}
	if err := s.Connect(ctx, 5*time.Second); err != nil {
		return err
	}
	defer s.Close("", nil)
	levels := make(chan string, 8)
	input := host + "/gpio/input/float_switch"
	if err := s.Subscribe(input, func(m services.Message) {
		select {
		case levels <- string(m.Payload):
		default:
		}
	}); err != nil {
		return err
	}
	set := host + "/gpio/set/pump_drive"
	start := time.Now()
	if err := s.Publish(set, 1, false, []byte("1")); err != nil {
		return err
	}
	timeout := time.After(3 * time.Second)
	for {
		select {
		case v := <-levels:
			if v == "1" {
				fmt.Fprintf(out, "\n%s <- 1, then %s -> 1 (wired on the simulated board) after %.1f ms\n",
					set, input, float64(time.Since(start).Microseconds())/1000)
				return nil
			}
		case <-timeout:
			return fmt.Errorf("demo: %s did not follow %s", input, set)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
