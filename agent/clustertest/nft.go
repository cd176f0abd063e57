package clustertest

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
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

// lossTable is the switch's table of SetLoss.
const lossTable = "bridge clustertest_loss"

// SetLoss makes the switch drop percent of the frames it forwards, each
// independently at random (nftables numgen on the bridge's forward hook):
// every frame on every link, in both directions, ARP and TCP included, so
// MQTT sessions suffer the loss as well as the discovery datagrams. A
// later call replaces the rule; percent 0 removes it. NewWith's
// Options.Loss sets it before the hosts are up.
func (c *Cluster) SetLoss(t testing.TB, percent int) {
	t.Helper()
	if percent < 0 || percent > 100 {
		t.Fatalf("clustertest: SetLoss(%d%%): want 0 to 100", percent)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		unavailable(t, "nftables (nft)", err)
	}
	script := fmt.Sprintf("add table %s\ndelete table %s\n", lossTable, lossTable)
	if percent > 0 {
		match := fmt.Sprintf("numgen random mod 100 < %d ", percent)
		if percent == 100 {
			match = ""
		}
		script += fmt.Sprintf("table %s {\n\tchain forward {\n\t\ttype filter hook forward priority 0; policy accept;\n"+
			"\t\t%scounter drop\n\t}\n}\n", lossTable, match)
	}
	if err := nftIn(c.sw, script); err != nil {
		t.Fatalf("clustertest: SetLoss(%d%%): %v", percent, err)
	}
}

// Dropped is how many frames SetLoss's rule has dropped since it was set.
func (c *Cluster) Dropped(t testing.TB) int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", c.sw, "nft", "list", "table", lossTable).CombinedOutput()
	if err != nil {
		return 0 // no rule
	}
	m := dropCounter.FindSubmatch(out)
	if m == nil {
		t.Fatalf("clustertest: no counter in the loss rule:\n%s", out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

var dropCounter = regexp.MustCompile(`counter packets (\d+) bytes \d+ drop`)

// SetLink pulls (up false) or plugs back (up true) the host's cable: its
// port on the switch goes down, so the host's eth0 loses carrier and
// nothing passes either way, as when a Pi's Ethernet cable is unplugged
// or its Wi-Fi drops. The host keeps its address and its programs run
// on. Plugged back, SetLink returns once frames pass again. The link comes
// back up at cleanup.
func (h *Host) SetLink(t testing.TB, up bool) {
	t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	if err := ipBatch(h.c.sw, fmt.Sprintf("link set h%d %s\n", h.Index, state)); err != nil {
		t.Fatalf("clustertest: %s: link %s: %v", h.Name, state, err)
	}
	if !up {
		t.Cleanup(func() { _ = ipBatch(h.c.sw, fmt.Sprintf("link set h%d up\n", h.Index)) })
		return
	}
	h.c.waitLinks(t, h)
}

func (h *Host) nft(script string) error { return nftIn(h.NS, script) }

// nftIn runs an nft script inside namespace ns.
func nftIn(ns, script string) error {
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
