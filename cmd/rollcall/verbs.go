package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/discovery"
)

// The verbs drive the cluster as any MQTT client could, and say what the
// service answered: each subscribes to the result before it publishes,
// sends a request id and waits for its own result. A refusal prints the
// service's errors, field by field, and exits 2.

// dial opens the client of a verb.
func dial(ctx context.Context, cfg agent.Config, role string) (*cluster.Client, error) {
	return cluster.Dial(ctx, cfg.Client(), role, newLogger(quiet(cfg.LogLevel)))
}

// answer prints a result and turns a refusal into exit status 2.
func answer(w io.Writer, asJSON bool, r cluster.Result, err error, ok func(io.Writer, cluster.Result)) error {
	var refused *cluster.RefusedError
	switch {
	case errors.As(err, &refused):
		if asJSON {
			_ = writeLine(w, r)
		}
		return statusError{exitIncomplete, refusal(refused)}
	case err != nil:
		return err
	}
	if asJSON {
		return writeLine(w, r)
	}
	ok(w, r)
	return nil
}

// refusal formats a service's errors, one a line, each with its field.
func refusal(e *cluster.RefusedError) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s refused the %s:", e.Result.Host, e.Result.Service, e.Result.Op)
	for _, p := range e.Result.Problems() {
		field := p.Field
		if field == "" {
			field = "(request)"
		}
		fmt.Fprintf(&b, "\n  %s: %s (%s)", field, cluster.Clean(p.Message), p.Code)
	}
	return errors.New(b.String())
}

func writeLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func newSetupCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "setup HOST SERVICE FILE|-",
		Short: "Configure a service from a JSON or YAML file (or stdin), and say what it answered",
		Long: `Send a setup to <host>/<service>/setup and wait for the service's answer.

The file holds the service's configuration, JSON or YAML, as in the
agent's configuration file. An empty file asks for the current setup.
A refused setup prints every problem with its field and exits 2; nothing
changed on the host.`,
		Args:              cobra.ExactArgs(3),
		ValidArgsFunction: completeHostService,
		RunE: withConfig(func(ctx context.Context, cmd *cobra.Command, cfg agent.Config) error {
			host, service, file := cmd.Flags().Arg(0), cmd.Flags().Arg(1), cmd.Flags().Arg(2)
			var doc []byte
			var err error
			if file == "-" {
				doc, err = io.ReadAll(cmd.InOrStdin())
			} else {
				doc, err = os.ReadFile(file)
			}
			if err != nil {
				return err
			}
			payload, err := cluster.SetupPayload(doc)
			if err != nil {
				return statusError{exitUsage, fmt.Errorf("%s: %w", file, err)}
			}
			c, err := dial(ctx, cfg, "setup")
			if err != nil {
				return err
			}
			defer c.Close()
			r, err := c.Do(ctx, host, service, "setup", payload)
			return answer(cmd.OutOrStdout(), asJSON, r, err, func(w io.Writer, r cluster.Result) {
				var d struct {
					Config json.RawMessage `json:"config"`
					Halted bool            `json:"halted"`
				}
				json.Unmarshal(r.Data, &d)
				what := "applied"
				if len(payload) == 0 {
					what = "is"
				}
				fmt.Fprintf(w, "%s/%s setup %s:\n%s\n", host, service, what, indent(d.Config))
				if d.Halted {
					fmt.Fprintf(w, "%s/%s is halted: outputs stay at failsafe until `rollcall recover %s`\n", host, service, host)
				}
			})
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON, one line")
	return cmd
}

func indent(b json.RawMessage) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	out, _ := json.MarshalIndent(v, "  ", "  ")
	return "  " + string(out)
}

func newSetCmd() *cobra.Command {
	var (
		asJSON bool
		pulse  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "set HOST SERVICE NAME VALUE",
		Short: "Drive one output (1, 0, on, off, a duty, volts...) and say what it answered",
		Long: `Send VALUE to <host>/<service>/set/<name> and wait for the service's answer.

VALUE is what the output takes: 1, 0, on, off, true or false for a gpio
output, a duty 0-100 for a PWM output, volts for a dac output. With --for,
the output returns to its previous value after that long.`,
		Args:              cobra.ExactArgs(4),
		ValidArgsFunction: completeHostServiceName,
		RunE: withConfig(func(ctx context.Context, cmd *cobra.Command, cfg agent.Config) error {
			a := cmd.Flags().Args()
			c, err := dial(ctx, cfg, "set")
			if err != nil {
				return err
			}
			defer c.Close()
			r, err := c.Do(ctx, a[0], a[1], "set/"+a[2], cluster.SetPayload(a[3], pulse))
			return answer(cmd.OutOrStdout(), asJSON, r, err, func(w io.Writer, r cluster.Result) {
				var d map[string]any
				json.Unmarshal(r.Data, &d)
				line := fmt.Sprintf("%s/%s/%s = %v", a[0], a[1], a[2], d["value"])
				if pulse > 0 {
					line += fmt.Sprintf(" for %s", pulse)
				}
				fmt.Fprintln(w, line)
			})
		}),
	}
	cmd.Flags().DurationVar(&pulse, "for", 0, "a pulse: return to the previous value after this long")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON, one line")
	return cmd
}

func newGetCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get HOST [SERVICE [NAME]]",
		Short: "Print a host's description, a service's values, or one value",
		Args:  cobra.RangeArgs(1, 3),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return completeHostServiceName(cmd, args, toComplete)
		},
		RunE: withConfig(func(ctx context.Context, cmd *cobra.Command, cfg agent.Config) error {
			a := cmd.Flags().Args()
			c, err := dial(ctx, cfg, "get")
			if err != nil {
				return err
			}
			defer c.Close()
			w := cmd.OutOrStdout()
			if len(a) == 1 {
				got, err := c.Descriptions(ctx, a[0])
				if err != nil {
					return err
				}
				b, ok := got[a[0]]
				if !ok {
					return statusError{exitIncomplete, fmt.Errorf("%s: no description retained: is it a rollcall host?", a[0])}
				}
				if asJSON {
					_, err := fmt.Fprintf(w, "%s\n", b)
					return err
				}
				fmt.Fprintln(w, indent(b))
				return nil
			}
			r, err := c.Do(ctx, a[0], a[1], "get", map[string]any{})
			return answer(w, asJSON, r, err, func(w io.Writer, r cluster.Result) {
				var d struct {
					Inputs  map[string]any `json:"inputs"`
					Outputs map[string]any `json:"outputs"`
					Halted  bool           `json:"halted"`
				}
				json.Unmarshal(r.Data, &d)
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tKIND\tVALUE")
				row := func(kind string, m map[string]any) {
					for _, n := range slices.Sorted(mapKeysAny(m)) {
						if len(a) == 3 && n != a[2] {
							continue
						}
						v, _ := json.Marshal(m[n])
						fmt.Fprintf(tw, "%s\t%s\t%s\n", cluster.Clean(n), kind, cluster.Clean(string(v)))
					}
				}
				row("input", d.Inputs)
				row("output", d.Outputs)
				tw.Flush()
				if d.Halted {
					fmt.Fprintf(w, "%s/%s is halted\n", a[0], a[1])
				}
			})
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON, one line")
	return cmd
}

func mapKeysAny(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// newControlCmd makes estop and recover: every service of a host, or of
// every host online.
func newControlCmd(verb, short string) *cobra.Command {
	var asJSON, all bool
	cmd := &cobra.Command{
		Use:               verb + " HOST|--all",
		Short:             short,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeHost,
		RunE: withConfig(func(ctx context.Context, cmd *cobra.Command, cfg agent.Config) error {
			a := cmd.Flags().Args()
			if all == (len(a) == 1) {
				return usageError(fmt.Errorf("%s takes a host or --all", verb))
			}
			c, err := dial(ctx, cfg, verb)
			if err != nil {
				return err
			}
			defer c.Close()
			hosts, err := c.Hosts(ctx)
			if err != nil {
				return err
			}
			if !all {
				i := slices.IndexFunc(hosts, func(s discovery.Summary) bool { return s.Host == a[0] })
				if i < 0 {
					return statusError{exitIncomplete, fmt.Errorf("%s: not an online rollcall host (see rollcall inventory)", a[0])}
				}
				hosts = hosts[i : i+1]
			}
			type outcome struct {
				r   cluster.Result
				err error
			}
			var (
				mu       sync.Mutex
				outcomes []outcome
				wg       sync.WaitGroup
			)
			for _, h := range hosts {
				for _, s := range h.Services {
					wg.Add(1)
					go func() {
						defer wg.Done()
						r, err := c.Do(ctx, h.Host, s.Function, "control", map[string]any{"cmd": verb})
						if r.Host == "" {
							r.Host, r.Service = h.Host, s.Function
						}
						mu.Lock()
						outcomes = append(outcomes, outcome{r, err})
						mu.Unlock()
					}()
				}
			}
			wg.Wait()
			slices.SortFunc(outcomes, func(x, y outcome) int {
				return strings.Compare(x.r.Host+"/"+x.r.Service, y.r.Host+"/"+y.r.Service)
			})
			w := cmd.OutOrStdout()
			failed := 0
			for _, o := range outcomes {
				if asJSON {
					_ = writeLine(w, o.r)
				}
				if o.err != nil {
					failed++
					if !asJSON {
						fmt.Fprintf(w, "%s/%s: FAILED: %v\n", o.r.Host, o.r.Service, o.err)
					}
					continue
				}
				if !asJSON {
					fmt.Fprintf(w, "%s/%s: %s\n", o.r.Host, o.r.Service, map[string]string{"estop": "halted, outputs at failsafe", "recover": "running"}[verb])
				}
			}
			if failed > 0 {
				return statusError{exitIncomplete, fmt.Errorf("%s: %d of %d services did not confirm", verb, failed, len(outcomes))}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&all, "all", false, "every service of every host online")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each result as JSON, one line each")
	return cmd
}

func newWatchCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "watch HOST[/SERVICE]",
		Short:             "Print a host's inputs, outputs and status as they change",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeHost,
		RunE: withConfig(func(ctx context.Context, cmd *cobra.Command, cfg agent.Config) error {
			host, service, _ := strings.Cut(cmd.Flags().Arg(0), "/")
			c, err := dial(ctx, cfg, "watch")
			if err != nil {
				return err
			}
			defer c.Close()
			w := cmd.OutOrStdout()
			return c.Watch(ctx, host, service, func(ch cluster.Change) {
				if asJSON {
					_ = writeLine(w, ch)
					return
				}
				where := ch.Host
				if ch.Service != "" {
					where += "/" + ch.Service + "/" + ch.Kind + "/" + ch.Name
				} else {
					where += "/" + ch.Kind
				}
				fmt.Fprintf(w, "%s %s = %s\n", ch.Time.Format("15:04:05.000"), cluster.Clean(where), cluster.Clean(ch.Value))
			})
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object a line")
	return cmd
}

func newForgetCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:               "forget HOST",
		Short:             "Clear the retained topics of a host that is gone",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeHost,
		RunE: withConfig(func(ctx context.Context, cmd *cobra.Command, cfg agent.Config) error {
			c, err := dial(ctx, cfg, "forget")
			if err != nil {
				return err
			}
			defer c.Close()
			cleared, err := c.Forget(ctx, cmd.Flags().Arg(0), force)
			if err != nil {
				return statusError{exitIncomplete, err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cleared %d retained topic(s) of %s\n", len(cleared), cmd.Flags().Arg(0))
			return nil
		}),
	}
	cmd.Flags().BoolVar(&force, "force", false, "even if the host says it is online")
	return cmd
}

// Shell completion of hosts, services and names, from the retained
// summaries; it gives nothing when the broker cannot be reached quickly.
func completeSummaries(cmd *cobra.Command) []discovery.Summary {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := cluster.Dial(ctx, cfg.Client(), "complete", newLogger("error"))
	if err != nil {
		return nil
	}
	defer c.Close()
	hosts, _ := c.Hosts(ctx)
	return hosts
}

func completeHost(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, h := range completeSummaries(cmd) {
		out = append(out, h.Host)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func completeHostService(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) >= 2 {
		return nil, cobra.ShellCompDirectiveDefault // the file
	}
	return completeHostServiceName(cmd, args, toComplete)
}

func completeHostServiceName(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, h := range completeSummaries(cmd) {
		switch len(args) {
		case 0:
			out = append(out, h.Host)
		case 1, 2:
			if h.Host != args[0] {
				continue
			}
			for _, s := range h.Services {
				if len(args) == 1 {
					out = append(out, s.Function)
					continue
				}
				if s.Function != args[1] {
					continue
				}
				for _, it := range append(slices.Clone(s.Outputs), s.Inputs...) {
					out = append(out, it.Name)
				}
			}
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
