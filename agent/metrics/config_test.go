package metrics_test

import (
	"strings"
	"testing"

	"github.com/rollcall/rollcall/agent"
)

// TestConfig checks metrics.listen as the agent's configuration checks
// it: every problem named by its key.
func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		listen string
		bad    string // in the message; "" for a valid one
	}{
		{"off", "", ""},
		{"every address", ":9465", ""},
		{"loopback", "127.0.0.1:9465", ""},
		{"ipv6", "[::1]:9465", ""},
		{"any free port", "127.0.0.1:0", ""},
		{"no port", "127.0.0.1", "not host:port"},
		{"port out of range", ":70000", "not a number from 0 to 65535"},
		{"port a name", ":prometheus", "not a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := agent.DefaultConfig()
			cfg.Host = "h"
			cfg.Metrics.Listen = tc.listen
			var got []string
			for _, e := range cfg.Validate() {
				if strings.HasPrefix(e.Field, "metrics") {
					got = append(got, e.Field+": "+e.Message)
				}
			}
			switch {
			case tc.bad == "" && len(got) > 0:
				t.Errorf("refused: %v", got)
			case tc.bad != "" && (len(got) != 1 || !strings.HasPrefix(got[0], "metrics.listen: ") || !strings.Contains(got[0], tc.bad)):
				t.Errorf("got %v, want one metrics.listen problem saying %q", got, tc.bad)
			}
		})
	}
}
