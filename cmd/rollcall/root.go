package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/agent/demo"
	"github.com/rollcall/rollcall/agent/metrics"
	"github.com/rollcall/rollcall/discovery"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "rollcall",
		Short:         "A Raspberry Pi cluster whose hosts describe themselves",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addConfigFlags(root, 0)
	root.AddCommand(newAgentCmd(), newSweepCmd(), newInventoryCmd(), newDemoCmd(), newVersionCmd(),
		newSetupCmd(), newSetCmd(), newGetCmd(),
		newControlCmd("estop", "Emergency-stop every service of a host (or all): outputs to failsafe, requests refused until recover"),
		newControlCmd("recover", "Lift an emergency stop from every service of a host (or all)"),
		newWatchCmd(), newForgetCmd(), newDashboardCmd())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError(fmt.Errorf("%w (see %s --help)", err, c.CommandPath()))
	})
	for _, c := range root.Commands() {
		if c.Args != nil {
			c.Args = usageArgs(c.Args)
		}
		switch c.Name() {
		case "agent":
			addConfigFlags(c, flagsAgent|flagsBroker)
		case "sweep":
			addConfigFlags(c, flagsBroker|flagsSweep)
		case "demo", "version", "completion", "help":
		default:
			addConfigFlags(c, flagsBroker)
		}
	}
	return root
}

// usageArgs marks the errors of an argument check as usage errors.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			return usageError(fmt.Errorf("%w (see %s --help)", err, c.CommandPath()))
		}
		return nil
	}
}

// withConfig makes a RunE that loads the configuration and calls fn with a
// context that ends on SIGINT or SIGTERM.
func withConfig(fn func(ctx context.Context, cmd *cobra.Command, cfg agent.Config) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		cfg, err := loadConfig(cmd)
		if err != nil {
			return err
		}
		ctx, cancel := signalContext()
		defer cancel()
		return fn(ctx, cmd, cfg)
	}
}

// signalContext ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			gotSignal.Store(true)
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// gotSignal is set once SIGINT or SIGTERM ended a command.
var gotSignal atomic.Bool

func interrupted() bool { return gotSignal.Load() }

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func newAgentCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "agent",
		Short: "Run this host's agent: MQTT session, discovery monitor and services",
		Long: `Run this host's agent: its MQTT session, discovery monitor and services.

Under systemd (Type=notify) it says READY=1 once subscribed and online, and
feeds the watchdog while its MQTT session and monitor are healthy. SIGHUP
reads the configuration again: the log level changes at once, and the
agent logs which other changes need a restart.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			level := new(slog.LevelVar)
			_ = level.UnmarshalText([]byte(cfg.LogLevel))
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			a, err := agent.New(cfg, log)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						reload(cmd, a, level, log)
					}
				}
			}()
			interval, _ := daemon.SdWatchdogEnabled(false)
			go agent.Supervise(ctx, a, sdNotifier{}, interval)
			return a.Run(ctx)
		},
	}
}

// reload reads the configuration again on SIGHUP. A configuration with
// problems is refused whole: the agent keeps running on the one it has.
func reload(cmd *cobra.Command, a *agent.Agent, level *slog.LevelVar, log *slog.Logger) {
	next, err := loadConfig(cmd)
	if err != nil {
		log.Error("reload refused; running on as before", "err", err)
		return
	}
	live, restart, elsewhere := a.Reload(next)
	if len(live) > 0 {
		_ = level.UnmarshalText([]byte(next.LogLevel))
		log.Info("reloaded", "applied", strings.Join(live, ", "))
	}
	if len(restart) > 0 {
		log.Warn("reloaded; these changes need a restart (systemctl restart rollcall)", "keys", strings.Join(restart, "; "))
	}
	if len(elsewhere) > 0 {
		log.Info("reloaded; these keys are read by rollcall dashboard when it starts, not by the agent", "keys", strings.Join(elsewhere, ", "))
	}
	if len(live)+len(restart)+len(elsewhere) == 0 {
		log.Info("reloaded; nothing changed")
	}
}

// sdNotifier speaks systemd's notify protocol; outside systemd it does
// nothing.
type sdNotifier struct{}

func (sdNotifier) Notify(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}

func newSweepCmd() *cobra.Command {
	var (
		opts     cluster.SweepOptions
		asJSON   bool
		textfile string
	)
	cmd := &cobra.Command{
		Use:   "sweep",
		Short: "Find every host and service of the cluster",
		Long: `Broadcast a "who are you" probe and gather the answers into the cluster inventory.

The sweep ends as soon as every host the retained topics list as online,
plus those named with --hosts, and at least --expect hosts in all, have
answered with every service they list; at --timeout otherwise. Hosts answer
twice: their monitor acknowledges the probe over UDP at once, and each
service replies over MQTT; the acknowledgement and the host's retained
summary are enough for its built-in services. It exits 2 when an expected
host is missing or fewer than --expect hosts answered.

With --textfile, the sweep's figures (hosts answered and missing, whether
and how fast it completed, probes sent) are also written, atomically, to
that file in the format of node_exporter's textfile collector: run it from
a timer and Prometheus gets the cluster's view through node_exporter.`,
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if textfile != "" {
				if err := metrics.CheckTextfile(textfile); err != nil {
					return usageError(err)
				}
			}
			return nil
		},
		RunE: withConfig(func(ctx context.Context, cmd *cobra.Command, cfg agent.Config) error {
			var printErr error
			opts.OnResult = func(inv cluster.Inventory) {
				if asJSON {
					printErr = writeJSON(cmd.OutOrStdout(), inv)
				} else {
					inv.Table(cmd.OutOrStdout())
				}
			}
			inv, err := cluster.Sweep(ctx, cfg.Client(), opts, newLogger(quiet(cfg.LogLevel)))
			if textfile != "" && !interrupted() {
				if werr := metrics.WriteSweep(textfile, inv, err, time.Now()); werr != nil {
					return errors.Join(err, werr)
				}
			}
			if err != nil {
				return err
			}
			if printErr != nil {
				return printErr
			}
			if len(inv.Missing) > 0 {
				return statusError{exitIncomplete, fmt.Errorf("sweep: %d expected host(s) missing: %s", len(inv.Missing), strings.Join(inv.Missing, ", "))}
			}
			if n := answered(inv); n < opts.Expect {
				return statusError{exitIncomplete, fmt.Errorf("sweep: expected at least %d hosts, %d answered", opts.Expect, n)}
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.IntVar(&opts.Expect, "expect", 0, "wait for at least this many hosts")
	f.StringSliceVar(&opts.Hosts, "hosts", nil, "hosts that must answer (comma-separated)")
	f.DurationVar(&opts.Timeout, "timeout", 3*time.Second, "give up waiting after this long")
	f.DurationVar(&opts.Quiet, "quiet", 0, "wait this long after the last expected answer for others")
	f.BoolVar(&opts.NoAck, "no-ack", false, "count only MQTT replies, not the monitors' UDP acknowledgements")
	f.IntVar(&opts.MaxProbes, "max-probes", discovery.DefaultMaxProbes, "most probes sent (retransmissions under one id)")
	f.IntVar(&opts.JitterMS, "jitter", 0, "ask hosts to spread their MQTT answers over this many ms (0: 50 with acknowledgements, none without; -1: none)")
	f.BoolVar(&opts.NoRetained, "no-retained", false, "do not expect the hosts the retained inventory lists as online")
	f.BoolVar(&asJSON, "json", false, "print the inventory document as JSON")
	f.StringVar(&textfile, "textfile", "", "also write the sweep's figures to this *.prom file, for node_exporter's textfile collector")
	return cmd
}

// answered counts the machines that answered a sweep.
func answered(inv cluster.Inventory) int {
	n := 0
	for _, h := range inv.Hosts {
		if h.Status == cluster.StatusOnline {
			n++
		}
	}
	return n
}

// quiet keeps a command's own log to errors unless debug was asked for:
// a command says what went wrong once, in its error.
func quiet(level string) string {
	if level == "debug" {
		return level
	}
	return "error"
}

func newInventoryCmd() *cobra.Command {
	var asJSON, watch bool
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Print the cluster as its retained status and descriptions tell it",
		Args:  cobra.NoArgs,
		RunE: withConfig(func(ctx context.Context, cmd *cobra.Command, cfg agent.Config) error {
			out := cmd.OutOrStdout()
			var last string
			print := func(inv cluster.Inventory) {
				var b strings.Builder
				if asJSON {
					_ = writeJSON(&b, inv)
				} else {
					inv.Table(&b)
				}
				if b.String() == last {
					return // a republished description that changes nothing shown
				}
				last = b.String()
				if watch && !asJSON {
					fmt.Fprintf(out, "--- %s\n", time.Now().Format(time.TimeOnly))
				}
				io.WriteString(out, last)
			}
			var w func(cluster.Inventory)
			if watch {
				w = print
			}
			inv, err := cluster.ReadInventory(ctx, cfg.Client(), newLogger(quiet(cfg.LogLevel)), w)
			if err != nil {
				return err
			}
			if !watch {
				print(inv)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&watch, "watch", false, "keep printing the inventory as it changes")
	return cmd
}

func newDemoCmd() *cobra.Command {
	var opts demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a simulated cluster on this machine: broker, hosts, a sweep and the inventory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			level, _ := cmd.Flags().GetString("log-level")
			if level == "" {
				level = "warn"
			}
			return demo.Run(ctx, opts, cmd.OutOrStdout(), newLogger(level))
		},
	}
	cmd.Flags().IntVar(&opts.Hosts, "hosts", 4, "number of simulated hosts")
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "state directory for the hosts (default: a temporary one, removed after)")
	cmd.Flags().StringVar(&opts.Broker, "broker", "", "MQTT broker to use, e.g. tcp://127.0.0.1:1883 (default: an embedded one on a free loopback port)")
	cmd.Flags().IntVar(&opts.Port, "port", 0, "discovery UDP port (default: a free one)")
	cmd.Flags().BoolVar(&opts.Stay, "stay", false, "keep the cluster running after the tour, until Ctrl-C, to drive it with the other commands")
	return cmd
}

// writeJSON writes v as one line of JSON: --json output is a stream of
// objects a line each, for jq and for scripts reading line by line.
func writeJSON(w io.Writer, v any) error { return writeLine(w, v) }
