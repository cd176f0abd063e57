package clustertest_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollcall/rollcall/agent/clustertest"
)

const (
	dataPort   = 4747 // the port rules are applied to
	markerPort = 4748 // never dropped: its arrival says earlier datagrams were handled
)

// receiver reads the datagrams one host receives on one port.
type receiver struct {
	conn *net.UDPConn
}

type datagram struct {
	from    netip.Addr
	payload string
}

func listen(t *testing.T, h *clustertest.Host, port int) *receiver {
	t.Helper()
	c, err := h.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		t.Fatalf("%s: listen :%d: %v", h.Name, port, err)
	}
	t.Cleanup(func() { c.Close() })
	return &receiver{conn: c.(*net.UDPConn)}
}

// expect waits for a datagram with payload, skipping others.
func (r *receiver) expect(t *testing.T, who, payload string) datagram {
	t.Helper()
	if err := r.conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("%s: waiting for %q: %v", who, payload, err)
		}
		if string(buf[:n]) == payload {
			return datagram{from.Addr().Unmap(), payload}
		}
	}
}

// count reads, without waiting, every datagram already queued on the socket
// and counts those whose payload starts with prefix.
func (r *receiver) count(t *testing.T, prefix string) int {
	t.Helper()
	raw, err := r.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	buf := make([]byte, 1500)
	var rerr error
	err = raw.Read(func(fd uintptr) bool {
		for {
			m, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
			if err == syscall.EAGAIN {
				return true
			}
			if err != nil {
				rerr = err
				return true
			}
			if strings.HasPrefix(string(buf[:m]), prefix) {
				n++
			}
		}
	})
	if err != nil || rerr != nil {
		t.Fatalf("drain socket: %v %v", err, rerr)
	}
	return n
}

func send(t *testing.T, c net.PacketConn, to netip.Addr, port int, payload string) {
	t.Helper()
	if _, err := c.WriteTo([]byte(payload), net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, uint16(port)))); err != nil {
		t.Fatalf("send %q to %v:%d: %v", payload, to, port, err)
	}
}

func rootLinks(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			names = append(names, strings.TrimSuffix(f[1], ":"))
		}
	}
	slices.Sort(names)
	return names
}

func TestCluster(t *testing.T) {
	clustertest.Skip(t)
	linksBefore := rootLinks(t)

	c := clustertest.New(t, 3)
	for i, h := range c.Hosts {
		want := netip.AddrFrom4([4]byte{10, 77, 0, byte(i + 1)})
		if h.Addr != want || h.Name != fmt.Sprintf("node%02d", i+1) {
			t.Fatalf("host %d: %s at %v, want node%02d at %v", i, h.Name, h.Addr, i+1, want)
		}
	}
	if out := c.Hosts[1].Run(t, "ip", "-4", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, "10.77.0.2/16 brd 10.77.255.255") {
		t.Fatalf("node02 eth0: %s", out)
	}

	data := make([]*receiver, len(c.Hosts))
	marker := make([]*receiver, len(c.Hosts))
	for i, h := range c.Hosts {
		data[i] = listen(t, h, dataPort)
		marker[i] = listen(t, h, markerPort)
	}

	t.Run("unicast", func(t *testing.T) {
		for _, from := range c.Hosts {
			for j, to := range c.Hosts {
				if to == from {
					continue
				}
				msg := fmt.Sprintf("%s->%s", from.Name, to.Name)
				send(t, data[from.Index].conn, to.Addr, dataPort, msg)
				if d := data[j].expect(t, to.Name, msg); d.from != from.Addr {
					t.Errorf("%s: from %v, want %v", msg, d.from, from.Addr)
				}
			}
		}
	})

	t.Run("broadcast", func(t *testing.T) {
		for _, dst := range []netip.Addr{c.Broadcast, netip.MustParseAddr("255.255.255.255")} {
			msg := "to " + dst.String()
			send(t, data[0].conn, dst, dataPort, msg)
			for _, h := range c.Hosts[1:] {
				if d := data[h.Index].expect(t, h.Name, msg); d.from != c.Hosts[0].Addr {
					t.Errorf("%s: %s from %v, want %v", h.Name, msg, d.from, c.Hosts[0].Addr)
				}
			}
		}
	})

	// sendBurst broadcasts n datagrams to dataPort then a marker, and
	// returns how many datagrams each host received once its marker came.
	sendBurst := func(t *testing.T, n int, tag string) []int {
		t.Helper()
		for i := range n {
			send(t, data[0].conn, c.Broadcast, dataPort, fmt.Sprintf("%s %d", tag, i))
		}
		send(t, data[0].conn, c.Broadcast, markerPort, "end "+tag)
		counts := make([]int, len(c.Hosts))
		for _, h := range c.Hosts[1:] {
			marker[h.Index].expect(t, h.Name, "end "+tag)
			counts[h.Index] = data[h.Index].count(t, tag+" ")
		}
		return counts[1:]
	}

	t.Run("drop all", func(t *testing.T) {
		c.DropUDP(t, dataPort, 100)
		for i, n := range sendBurst(t, 20, "all") {
			if n != 0 {
				t.Errorf("%s received %d of 20 datagrams, want 0", c.Hosts[i+1].Name, n)
			}
		}
	})

	t.Run("drop half", func(t *testing.T) {
		c.DropUDP(t, dataPort, 50) // replaces the 100% rule
		const n = 400
		for i, got := range sendBurst(t, n, "half") {
			// Binomial(400, 0.5): mean 200, sd 10.
			if got < 140 || got > 260 {
				t.Errorf("%s received %d of %d datagrams at 50%% loss", c.Hosts[i+1].Name, got, n)
			}
		}
	})

	t.Run("drop removed", func(t *testing.T) {
		c.DropUDP(t, dataPort, 0)
		for i, n := range sendBurst(t, 20, "none") {
			if n != 20 {
				t.Errorf("%s received %d of 20 datagrams with no rule", c.Hosts[i+1].Name, n)
			}
		}
		for _, h := range c.Hosts {
			if out := h.Run(t, "nft", "list", "tables"); strings.Contains(out, "clustertest") {
				t.Errorf("%s: rule left after DropUDP(0): %s", h.Name, out)
			}
		}
	})

	sleeper := c.Hosts[2].Start(t, "sleep", "600")
	// Pid must become the program's own (once ip has exec'd it), for
	// benchmarks that read /proc/<pid>.
	clustertest.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", sleeper.Pid()))
		if err != nil || strings.TrimSpace(string(comm)) != "sleep" {
			return fmt.Errorf("/proc/%d/comm = %q, %v; want sleep", sleeper.Pid(), comm, err)
		}
		return nil
	})

	c.Close()
	c.Close() // idempotent
	if !sleeper.Exited() {
		t.Error("process started in a host still runs after Close")
	}
	for _, ns := range c.Namespaces() {
		if _, err := os.Stat("/var/run/netns/" + ns); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s left after Close (stat: %v)", ns, err)
		}
	}
	if after := rootLinks(t); !slices.Equal(after, linksBefore) {
		t.Errorf("root namespace links changed:\nbefore %v\nafter  %v", linksBefore, after)
	}
}

// TestClusterLarge builds the 51 hosts of the biggest benchmark (50 agents
// and a sweeper) and checks that one broadcast reaches all of them.
func TestClusterLarge(t *testing.T) {
	clustertest.Skip(t)
	if testing.Short() {
		t.Skip("skipping 51 namespaces in -short mode")
	}
	start := time.Now()
	c := clustertest.New(t, 51)
	t.Logf("created 51 hosts in %v", time.Since(start).Round(time.Millisecond))

	rs := make([]*receiver, len(c.Hosts))
	for i, h := range c.Hosts {
		rs[i] = listen(t, h, dataPort)
	}
	send(t, rs[50].conn, c.Broadcast, dataPort, "hello")
	for i, h := range c.Hosts[:50] {
		if d := rs[i].expect(t, h.Name, "hello"); d.from != c.Hosts[50].Addr {
			t.Errorf("%s: from %v, want %v", h.Name, d.from, c.Hosts[50].Addr)
		}
	}
	start = time.Now()
	c.Close()
	t.Logf("deleted 51 hosts in %v", time.Since(start).Round(time.Millisecond))
}

func TestStartMosquitto(t *testing.T) {
	clustertest.Skip(t)
	if _, err := exec.LookPath("mosquitto_sub"); err != nil {
		t.Skip("mosquitto-clients not installed")
	}
	c := clustertest.New(t, 2)
	url := c.Hosts[0].StartMosquitto(t)
	if want := "tcp://10.77.0.1:1883"; url != want {
		t.Errorf("broker URL %q, want %q", url, want)
	}
	// Retained message from one host, read from the other.
	c.Hosts[1].Run(t, "mosquitto_pub", "-h", "10.77.0.1", "-t", "node02/status", "-m", "online", "-r", "-q", "1")
	out := c.Hosts[1].Run(t, "mosquitto_sub", "-h", "10.77.0.1", "-t", "node02/status", "-C", "1", "-W", "5")
	if strings.TrimSpace(out) != "online" {
		t.Errorf("retained status %q, want online", out)
	}
}

func TestSkipRequired(t *testing.T) {
	t.Setenv("ROLLCALL_REQUIRE_NETNS", "1")
	if !clustertest.Required() {
		t.Error("Required() = false with ROLLCALL_REQUIRE_NETNS=1")
	}
	t.Setenv("ROLLCALL_REQUIRE_NETNS", "")
	t.Setenv("CI", "")
	if clustertest.Required() {
		t.Error("Required() = true with neither CI nor ROLLCALL_REQUIRE_NETNS")
	}
}

// TestRemovesStale checks that New removes the namespaces of a run killed
// before its cleanup, and only those.
func TestRemovesStale(t *testing.T) {
	clustertest.Skip(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("rc%dxdead-h0", dead.Process.Pid)
	live := fmt.Sprintf("rc%dxbeef-h0", os.Getppid()) // owned by a live process
	for _, ns := range []string{stale, live} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}

	clustertest.New(t, 1)
	if _, err := os.Stat("/var/run/netns/" + stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale namespace %s kept (stat: %v)", stale, err)
	}
	if _, err := os.Stat("/var/run/netns/" + live); err != nil {
		t.Errorf("namespace %s of a live process removed: %v", live, err)
	}
}
