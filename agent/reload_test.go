package agent

import (
	"slices"
	"strings"
	"testing"
)

// TestReload: each changed key lands in one bucket: live, needing a
// restart, or not the agent's.
func TestReload(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.Host = "pi1"
		c.Services = []string{"gpio"}
		return c
	}
	for _, tc := range []struct {
		name                     string
		change                   func(*Config)
		live, restart, elsewhere []string
	}{
		{name: "nothing", change: func(*Config) {}},
		{name: "log level", change: func(c *Config) { c.LogLevel = "debug" }, live: []string{"log_level"}},
		{name: "broker", change: func(c *Config) { c.MQTT.Broker = "tcp://10.0.0.2:1883" }, restart: []string{"mqtt.broker"}},
		{name: "dashboard listen", change: func(c *Config) { c.Dashboard.Listen = "127.0.0.1:9999" }, elsewhere: []string{"dashboard.listen"}},
		{name: "log level and dashboard", change: func(c *Config) { c.LogLevel = "warn"; c.Dashboard.Listen = "127.0.0.1:9999" },
			live: []string{"log_level"}, elsewhere: []string{"dashboard.listen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Agent{cfg: base()}
			next := base()
			tc.change(&next)
			live, restart, elsewhere := a.Reload(next)
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"live", live, tc.live}, {"restart", restart, tc.restart}, {"elsewhere", elsewhere, tc.elsewhere}} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s %s, want %s", c.what, strings.Join(c.got, ","), strings.Join(c.want, ","))
				}
			}
		})
	}
}
