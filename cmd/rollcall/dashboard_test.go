package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/agent/dashboard"
)

// loadDashboard loads the configuration as `rollcall dashboard` does, with
// args after the command's name.
func loadDashboard(t *testing.T, args ...string) (agent.Config, error) {
	t.Helper()
	var cfg agent.Config
	var err error
	root := newRootCmd()
	for _, c := range root.Commands() {
		if c.Name() == "dashboard" {
			c.RunE = func(cmd *cobra.Command, _ []string) error {
				cfg, err = loadConfig(cmd)
				return nil
			}
		}
	}
	root.SetArgs(append([]string{"dashboard"}, args...))
	if e := root.Execute(); e != nil {
		t.Fatal(e)
	}
	return cfg, err
}

func TestDashboardConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rollcall.yaml")
	os.WriteFile(file, []byte("dashboard:\n  listen: \":8080\"\n  allow_control: true\n  password_file: /etc/rollcall/dashboard.password\n"), 0o600)
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, nil, 0o600)
	misspelt := filepath.Join(dir, "misspelt.yaml")
	os.WriteFile(misspelt, []byte("dashboard: {lisen: \":8080\"}\n"), 0o600)

	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want dashboard.Config
		err  []string // in the error, when it fails
	}{
		{name: "defaults", args: []string{"--config", empty}, want: dashboard.DefaultConfig()},
		{name: "file", args: []string{"--config", file},
			want: dashboard.Config{Listen: ":8080", AllowControl: true, PasswordFile: "/etc/rollcall/dashboard.password"}},
		{name: "flags over the file", args: []string{"--config", file, "--listen", "127.0.0.1:9000", "--allow-control=false", "--dashboard-password-file", "/run/pw"},
			want: dashboard.Config{Listen: "127.0.0.1:9000", PasswordFile: "/run/pw"}},
		{name: "environment", args: []string{"--config", empty}, env: map[string]string{"ROLLCALL_DASHBOARD_LISTEN": "[::1]:4748", "ROLLCALL_DASHBOARD_ALLOW_CONTROL": "true"},
			want: dashboard.Config{Listen: "[::1]:4748", AllowControl: true}},
		{name: "bad listen flag", args: []string{"--config", empty, "--listen", "4748"}, err: []string{"dashboard.listen:", "not host:port"}},
		{name: "bad environment", args: []string{"--config", empty}, env: map[string]string{"ROLLCALL_DASHBOARD_ALLOW_CONTROL": "yes"},
			err: []string{"dashboard.allow_control:", "ROLLCALL_DASHBOARD_ALLOW_CONTROL"}},
		{name: "misspelt key", args: []string{"--config", misspelt}, err: []string{"dashboard.lisen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := loadDashboard(t, tc.args...)
			if len(tc.err) > 0 {
				if err == nil {
					t.Fatalf("accepted: %+v", cfg.Dashboard)
				}
				for _, s := range tc.err {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error does not say %q:\n%v", s, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Dashboard != tc.want {
				t.Errorf("dashboard block %+v, want %+v", cfg.Dashboard, tc.want)
			}
		})
	}
}
