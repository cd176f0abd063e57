package main

import (
	"context"
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/agent/dashboard"
)

// The dashboard's flags are configuration keys like the others: the file,
// ROLLCALL_DASHBOARD_* and these flags, in that order.
func newDashboardCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve a live web page of the cluster: hosts, services, values; outputs, setups and estop when allowed",
		Long: `Serve a small web page of the cluster, live, from any host that reaches the broker.

It shows every host and service the retained descriptions list, their
inputs and outputs as they change, and an event log. With --allow-control
(dashboard.allow_control) the page also switches outputs, sends setups
from forms built from each service's JSON Schema, and estops or recovers
services, through the same requests as rollcall set, setup, estop and
recover; without it the page and its API are read-only.

--dashboard-password-file (dashboard.password_file) names a file whose
first line is the password the page asks for. Listening beyond loopback
without one is warned about.`,
		Args: cobra.NoArgs,
		RunE: withConfig(func(ctx context.Context, cmd *cobra.Command, cfg agent.Config) error {
			srv, err := dashboard.New(dashboard.Options{Config: cfg.Dashboard, Cluster: cfg.Client(), Log: newLogger(cfg.LogLevel)})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.Dashboard.Listen)
			if err != nil {
				return fmt.Errorf("dashboard: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rollcall dashboard on http://%s/\n", ln.Addr())
			return srv.Run(ctx, ln)
		}),
	}
	f := cmd.Flags()
	f.String("listen", "", "address to serve the page on (default "+dashboard.DefaultListen+")")
	f.Bool("allow-control", false, "let the page drive outputs, send setups, estop and recover (default: read-only)")
	f.String("dashboard-password-file", "", "file whose first line is the page's password (HTTP basic auth, any user name)")
	return cmd
}
