package clustertest

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// DropUDP makes every host drop, on arrival, the given percentage of UDP
// datagrams to port: the packet loss the discovery benchmarks need, since
// the kernel may lack netem. Each datagram is dropped independently at
// random (nftables numgen). A later call for the same port replaces the
// rule; percent 0 removes it. Rules are removed at cleanup.
func (c *Cluster) DropUDP(t testing.TB, port, percent int) {
	t.Helper()
	if port < 1 || port > 65535 || percent < 0 || percent > 100 {
		t.Fatalf("clustertest: DropUDP(%d, %d%%): bad port or percentage", port, percent)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		unavailable(t, "nftables (nft)", err)
	}
	table := fmt.Sprintf("inet clustertest_udp%d", port)
	// Adding then deleting the table makes the script work whether or not a
	// rule is already there, and nft applies the whole script atomically.
	script := fmt.Sprintf("add table %s\ndelete table %s\n", table, table)
	if percent > 0 {
		match := fmt.Sprintf("numgen random mod 100 < %d ", percent)
		if percent == 100 {
			match = ""
		}
		script += fmt.Sprintf("table %s {\n\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n"+
			"\t\tudp dport %d %sdrop\n\t}\n}\n", table, port, match)
	}
	for _, h := range c.Hosts {
		if err := h.nft(script); err != nil {
			t.Fatalf("clustertest: %s: DropUDP: %v", h.Name, err)
		}
	}
	if percent > 0 {
		t.Cleanup(func() {
			for _, h := range c.Hosts {
				// After Close the namespaces and their rules are gone.
				_ = h.nft(fmt.Sprintf("add table %s\ndelete table %s\n", table, table))
			}
		})
	}
}

func (h *Host) nft(script string) error {
	cmd := exec.Command("ip", "netns", "exec", h.NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
