package clustertest_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
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
	base := c.Subnet.Addr().As4()
	for i, h := range c.Hosts {
		want := base
		want[3] += byte(i + 1)
		if h.Addr != netip.AddrFrom4(want) || h.Name != fmt.Sprintf("node%02d", i+1) {
			t.Fatalf("host %d: %s at %v, want node%02d at %v", i, h.Name, h.Addr, i+1, want)
		}
	}
	wantAddr := fmt.Sprintf("%v/%d brd %v", c.Hosts[1].Addr, c.Subnet.Bits(), c.Broadcast)
	if out := c.Hosts[1].Run(t, "ip", "-4", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, wantAddr) {
		t.Fatalf("node02 eth0: %s, want %s", out, wantAddr)
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
	m := c.Hosts[0].StartMosquitto(t, clustertest.MosquittoOptions{})
	broker := c.Hosts[0].Addr.String()
	if want := "tcp://" + broker + ":1883"; m.URL != want {
		t.Errorf("broker URL %q, want %q", m.URL, want)
	}
	// Retained message from one host, read from the other.
	c.Hosts[1].Run(t, "mosquitto_pub", "-h", broker, "-t", "node02/status", "-m", "online", "-r", "-q", "1")
	out := c.Hosts[1].Run(t, "mosquitto_sub", "-h", broker, "-t", "node02/status", "-C", "1", "-W", "5")
	if strings.TrimSpace(out) != "online" {
		t.Errorf("retained status %q, want online", out)
	}

	// Killed and started again, it has forgotten everything: stock
	// mosquitto keeps nothing on disk.
	m.Kill()
	if !m.Proc().Exited() {
		t.Fatal("mosquitto still runs after Kill")
	}
	m.Start(t)
	// mosquitto_sub exits 27 when its -W runs out: it connected and
	// nothing came.
	sub := c.Hosts[1].Command(t.Context(), "mosquitto_sub", "-h", broker, "-t", "node02/status", "--retained-only", "-W", "1")
	got, err := sub.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 27 || len(got) > 0 {
		t.Errorf("after a restart mosquitto_sub printed %q (%v), want a timeout with nothing retained", got, err)
	}
}

func TestMosquittoOptions(t *testing.T) {
	clustertest.Skip(t)
	tests := []struct {
		name    string
		opts    clustertest.MosquittoOptions
		nodelay bool
	}{
		{name: "stock", opts: clustertest.MosquittoOptions{}},
		{name: "tuned", opts: clustertest.MosquittoOptions{NoDelay: true}, nodelay: true},
	}
	c := clustertest.New(t, 1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := c.Hosts[0].StartMosquitto(t, tt.opts)
			defer m.Kill()
			args := m.Proc().Cmd.Args
			conf, err := os.ReadFile(args[len(args)-1])
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(conf), "set_tcp_nodelay true"); got != tt.nodelay {
				t.Errorf("set_tcp_nodelay in the configuration: %v, want %v:\n%s", got, tt.nodelay, conf)
			}
		})
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

func TestOptions(t *testing.T) {
	clustertest.Skip(t)
	c := clustertest.NewWith(t, 2, clustertest.Options{Prefix: "rcopt", Subnet: netip.MustParsePrefix("10.79.4.0/24")})
	if want := netip.MustParseAddr("10.79.4.255"); c.Broadcast != want {
		t.Errorf("broadcast %v, want %v", c.Broadcast, want)
	}
	for i, h := range c.Hosts {
		if want := netip.AddrFrom4([4]byte{10, 79, 4, byte(i + 1)}); h.Addr != want {
			t.Errorf("%s at %v, want %v", h.Name, h.Addr, want)
		}
		if !strings.HasPrefix(h.NS, fmt.Sprintf("rcopt%dx", os.Getpid())) {
			t.Errorf("%s: namespace %s does not start with rcopt and the pid", h.Name, h.NS)
		}
	}
	rs := []*receiver{listen(t, c.Hosts[0], dataPort), listen(t, c.Hosts[1], dataPort)}
	send(t, rs[0].conn, c.Broadcast, dataPort, "on 10.79.4.0/24")
	if d := rs[1].expect(t, "node02", "on 10.79.4.0/24"); d.from != c.Hosts[0].Addr {
		t.Errorf("from %v, want %v", d.from, c.Hosts[0].Addr)
	}

	// Loss set before the hosts are up drops their very first frames.
	lossy := clustertest.NewWith(t, 2, clustertest.Options{Loss: 100})
	r := listen(t, lossy.Hosts[0], dataPort)
	send(t, r.conn, lossy.Broadcast, dataPort, "lost")
	clustertest.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
		if d := lossy.Dropped(t); d == 0 {
			return errors.New("the switch of a cluster built with 100% loss dropped nothing")
		}
		return nil
	})
}

func TestBadOptions(t *testing.T) {
	tests := []struct {
		name string
		n    int
		opts clustertest.Options
	}{
		{name: "prefix not rc", n: 1, opts: clustertest.Options{Prefix: "nb"}},
		{name: "prefix with digits", n: 1, opts: clustertest.Options{Prefix: "rc1"}},
		{name: "subnet too small", n: 3, opts: clustertest.Options{Subnet: netip.MustParsePrefix("10.79.0.0/30")}},
		{name: "IPv6 subnet", n: 1, opts: clustertest.Options{Subnet: netip.MustParsePrefix("fd00::/64")}},
		{name: "loss over 100", n: 1, opts: clustertest.Options{Loss: 101}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				clustertest.NewWith(ft, tt.n, tt.opts)
			}()
			<-done
			if ft.msg == "" {
				t.Fatalf("NewWith(%d, %+v) built a cluster", tt.n, tt.opts)
			}
			t.Logf("refused: %s", ft.msg)
		})
	}
}

// fatalRecorder records Fatalf and ends the goroutine, as testing.T does,
// without failing the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalRecorder) Helper() {}

func TestLoss(t *testing.T) {
	clustertest.Skip(t)
	c := clustertest.New(t, 2)
	a, b := c.Hosts[0], c.Hosts[1]
	ra, rb := listen(t, a, dataPort), listen(t, b, dataPort)
	ma, mb := listen(t, a, markerPort), listen(t, b, markerPort)
	// Both hosts learn each other's MAC address before the loss, so no
	// datagram waits on a lost ARP request.
	send(t, ra.conn, b.Addr, dataPort, "hello")
	rb.expect(t, "node02", "hello")
	send(t, rb.conn, a.Addr, dataPort, "hello")
	ra.expect(t, "node01", "hello")
	c.SetLoss(t, 50)

	// burst sends n datagrams from one host to the other, then markers
	// until one arrives, and counts what came before it.
	burst := func(t *testing.T, from, to *clustertest.Host, rfrom, rto, mto *receiver, n int, tag string) int {
		t.Helper()
		for i := range n {
			send(t, rfrom.conn, to.Addr, dataPort, fmt.Sprintf("%s %d", tag, i))
		}
		// The markers are lost like anything else: send them until one
		// arrives.
		clustertest.Eventually(t, 10*time.Second, time.Millisecond, func() error {
			send(t, rfrom.conn, to.Addr, markerPort, "end "+tag)
			if err := mto.conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
				return err
			}
			buf := make([]byte, 100)
			_, _, err := mto.conn.ReadFrom(buf)
			return err
		})
		return rto.count(t, tag+" ")
	}
	// Fewer than a socket's receive buffer holds unread.
	const n = 200
	for _, dir := range []struct {
		name            string
		from, to        *clustertest.Host
		rfrom, rto, mto *receiver
	}{
		{"node01 to node02", a, b, ra, rb, mb},
		{"node02 to node01", b, a, rb, ra, ma},
	} {
		t.Run(dir.name, func(t *testing.T) {
			// Binomial(200, 0.5): mean 100, sd 7.
			if got := burst(t, dir.from, dir.to, dir.rfrom, dir.rto, dir.mto, n, "lossy"); got < 60 || got > 140 {
				t.Errorf("%d of %d datagrams arrived at 50%% loss", got, n)
			}
		})
	}
	if d := c.Dropped(t); d < 140 {
		t.Errorf("the switch counted %d frames dropped, want about 200", d)
	}
	c.SetLoss(t, 0)
	if got := burst(t, a, b, ra, rb, mb, n, "clean"); got != n {
		t.Errorf("%d of %d datagrams arrived with the loss removed", got, n)
	}
	if d := c.Dropped(t); d != 0 {
		t.Errorf("the switch counts %d frames dropped with no rule", d)
	}
}

func TestSetLink(t *testing.T) {
	clustertest.Skip(t)
	c := clustertest.New(t, 2)
	a, b := c.Hosts[0], c.Hosts[1]
	ra, rb := listen(t, a, dataPort), listen(t, b, dataPort)
	mb := listen(t, b, markerPort)
	send(t, ra.conn, b.Addr, dataPort, "before")
	rb.expect(t, "node02", "before")

	b.SetLink(t, false)
	if out := b.Run(t, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, "NO-CARRIER") {
		t.Errorf("node02 eth0 with its link down: %s, want NO-CARRIER", out)
	}
	for i := range 10 {
		send(t, ra.conn, b.Addr, dataPort, fmt.Sprintf("while down %d", i))
	}
	b.SetLink(t, true)
	if out := b.Run(t, "ip", "-o", "link", "show", "eth0"); strings.Contains(out, "NO-CARRIER") {
		t.Errorf("node02 eth0 with its link back up: %s", out)
	}
	send(t, ra.conn, b.Addr, markerPort, "end")
	mb.expect(t, "node02", "end")
	if n := rb.count(t, "while down"); n != 0 {
		t.Errorf("node02 received %d datagrams sent while its link was down", n)
	}
	send(t, ra.conn, b.Addr, dataPort, "after")
	rb.expect(t, "node02", "after")
}

func TestStartCmd(t *testing.T) {
	clustertest.Skip(t)
	c := clustertest.New(t, 1)
	cmd := exec.Command("cat", "/proc/self/net/dev")
	var out strings.Builder
	cmd.Stdout = &out
	if err := c.Hosts[0].StartCmd(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	// The root namespace has no eth0 of the cluster's; a host has eth0
	// and lo only.
	if got := strings.Count(out.String(), ":"); !strings.Contains(out.String(), "eth0:") || got != 2 {
		t.Errorf("/proc/self/net/dev of a program started in node01:\n%s\nwant lo and eth0 only", out.String())
	}
}

func TestFloor(t *testing.T) {
	clustertest.Skip(t)
	c := clustertest.New(t, 4)
	f := clustertest.NewFloor(t)
	procs := f.Start(t, c.Hosts[1:]...)
	ctx := t.Context()

	inv, err := f.Sweep(ctx, c.Hosts[0], c.Hosts[1:], time.Second)
	if err != nil || !inv.Complete || len(inv.Hosts) != 3 {
		t.Fatalf("floor sweep: complete %v, %d hosts, missing %v, err %v", inv.Complete, len(inv.Hosts), inv.Missing, err)
	}
	t.Logf("floor sweep of 3 hosts: %.2f ms, %d probes", inv.CompleteMS, inv.Probes)

	procs[1].Kill()
	inv, err = f.Sweep(ctx, c.Hosts[0], c.Hosts[1:], time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Complete || !slices.Equal(inv.Missing, []string{c.Hosts[2].Name}) {
		t.Errorf("floor sweep with node03's responder dead: complete %v, missing %v, want node03", inv.Complete, inv.Missing)
	}
	if inv.Probes != 8 {
		t.Errorf("floor sweep with a host missing sent %d probes, want rollcall's 8", inv.Probes)
	}
}
