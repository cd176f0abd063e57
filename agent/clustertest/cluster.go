// Package clustertest builds throwaway clusters of hosts out of Linux network
// namespaces, for tests that need real broadcast, real sockets and real
// packet loss: the discovery sweep, the agent's MQTT last will, faults
// (a broker restarted, a link pulled, frames lost on every link) and the
// benchmarks that time a sweep across 100 hosts.
//
// A cluster of n hosts is n namespaces <prefix><id>-h<i>, each with one
// interface eth0 holding the (i+1)-th address of the subnet (10.77.0.0/16
// by default: 10.77.0.1, 10.77.0.2, ...), joined by veth pairs to a bridge
// that lives in a dedicated switch namespace <prefix><id>-sw, so the root
// namespace is never touched. Directed broadcast (10.77.255.255) and
// limited broadcast (255.255.255.255) both reach every other host. Faults
// are made on the switch: SetLoss drops frames on every link, SetLink
// pulls one host's cable.
//
// Everything is torn down by t.Cleanup, even when the test fails or panics.
// A run killed before its cleanup (a -timeout, a SIGKILL) leaves namespaces
// behind; <id> begins with the owning process id, and the next New removes
// namespaces whose owner is gone, whatever their prefix.
//
// The prefix (rc by default) and the subnet can be chosen, in Options or
// with ROLLCALL_NETNS_PREFIX and ROLLCALL_NETNS_SUBNET, so that developers
// sharing a machine tell their namespaces apart.
//
// Creating namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN). Tests call
// Skip first: it skips with the reason under plain `go test`, and fails in CI
// (CI=true or ROLLCALL_REQUIRE_NETNS=1), where the cluster tests must run.
package clustertest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/var/run/netns"

// Defaults of Options. Namespaces isolate clusters from one another, so
// all of them can use the same subnet at once.
const (
	DefaultPrefix = "rc"
	DefaultSubnet = "10.77.0.0/16"
)

// Options shape a cluster. The zero value is New's cluster.
type Options struct {
	// Prefix begins every namespace name: "rc" followed by lowercase
	// letters, so that removing stale namespaces touches only clustertest's.
	// Empty means ROLLCALL_NETNS_PREFIX, or DefaultPrefix.
	Prefix string
	// Subnet holds the hosts' addresses, the first n after the network
	// address. Invalid (zero) means ROLLCALL_NETNS_SUBNET, or
	// DefaultSubnet.
	Subnet netip.Prefix
	// Loss is the percentage of frames the switch drops (see SetLoss),
	// in place before anything runs on the hosts.
	Loss int
}

// withDefaults fills what o leaves out and checks it.
func (o Options) withDefaults(n int) (Options, error) {
	if o.Prefix == "" {
		o.Prefix = cmp.Or(os.Getenv("ROLLCALL_NETNS_PREFIX"), DefaultPrefix)
	}
	if !validPrefix.MatchString(o.Prefix) {
		return o, fmt.Errorf("namespace prefix %q: want rc followed by at most 8 lowercase letters", o.Prefix)
	}
	if !o.Subnet.IsValid() {
		s := cmp.Or(os.Getenv("ROLLCALL_NETNS_SUBNET"), DefaultSubnet)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return o, fmt.Errorf("subnet %q: %w", s, err)
		}
		o.Subnet = p
	}
	o.Subnet = o.Subnet.Masked()
	if !o.Subnet.Addr().Is4() || o.Subnet.Bits() > 30 {
		return o, fmt.Errorf("subnet %v: want an IPv4 prefix of /30 or wider", o.Subnet)
	}
	// The network and broadcast addresses are not hosts'.
	if room := 1<<(32-o.Subnet.Bits()) - 2; n > room {
		return o, fmt.Errorf("subnet %v holds %d hosts, not %d", o.Subnet, room, n)
	}
	if o.Loss < 0 || o.Loss > 100 {
		return o, fmt.Errorf("loss %d%%: want 0 to 100", o.Loss)
	}
	return o, nil
}

var validPrefix = regexp.MustCompile(`^rc[a-z]{0,8}$`)

// A Cluster is a set of hosts on one Ethernet segment.
type Cluster struct {
	Hosts     []*Host
	Subnet    netip.Prefix // 10.77.0.0/16 by default
	Broadcast netip.Addr   // 10.77.255.255: the subnet's directed broadcast

	id string // <prefix><pid>x<rand>, the start of every namespace name
	sw string // namespace that holds the bridge

	mu     sync.Mutex
	procs  []*Proc
	closed bool
}

// A Host is one namespace of a cluster, seen by its programs as a machine
// with a single interface, eth0.
type Host struct {
	Index int        // position in Cluster.Hosts
	Name  string     // hostname to give its programs: node01, node02, ...
	NS    string     // network namespace name, for ip netns exec
	Addr  netip.Addr // address on eth0: the subnet's (Index+1)-th

	c *Cluster
}

// New builds a cluster of n hosts with the default Options and registers
// its teardown with t.Cleanup. It fails the test when the namespaces cannot
// be built; call Skip first.
func New(t testing.TB, n int) *Cluster {
	t.Helper()
	return NewWith(t, n, Options{})
}

// NewWith builds a cluster of n hosts shaped by o, like New.
func NewWith(t testing.TB, n int, o Options) *Cluster {
	t.Helper()
	if n < 1 || n > 65000 {
		t.Fatalf("clustertest: %d hosts: want 1 to 65000", n)
	}
	o, err := o.withDefaults(n)
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	removeStale(t)

	c := &Cluster{Subnet: o.Subnet, Broadcast: lastAddr(o.Subnet), id: newID(o.Prefix)}
	c.sw = c.id + "-sw"
	t.Cleanup(c.Close)

	var add strings.Builder
	fmt.Fprintf(&add, "netns add %s\n", c.sw)
	for i := range n {
		h := &Host{
			Index: i,
			Name:  fmt.Sprintf("node%02d", i+1),
			NS:    fmt.Sprintf("%s-h%d", c.id, i),
			Addr:  nthAddr(o.Subnet, uint32(i+1)),
			c:     c,
		}
		c.Hosts = append(c.Hosts, h)
		fmt.Fprintf(&add, "netns add %s\n", h.NS)
	}
	if err := ipBatch("", add.String()); err != nil {
		t.Fatalf("clustertest: create namespaces: %v", err)
	}

	// The switch: one bridge, one veth per host. The peer end is created
	// directly in the host's namespace, so no interface ever appears in the
	// root namespace. STP stays off, so ports forward at once.
	var sw strings.Builder
	sw.WriteString("link add br0 type bridge stp_state 0 forward_delay 0\nlink set br0 up\n")
	for _, h := range c.Hosts {
		fmt.Fprintf(&sw, "link add h%d type veth peer name eth0 netns %s\n", h.Index, h.NS)
		fmt.Fprintf(&sw, "link set h%d master br0 up\n", h.Index)
	}
	if err := ipBatch(c.sw, sw.String()); err != nil {
		t.Fatalf("clustertest: build switch: %v", err)
	}
	// Loss is in place before any host has an address, so even a
	// program's first frame (an ARP request, a TCP SYN) may be lost.
	if o.Loss > 0 {
		c.SetLoss(t, o.Loss)
	}

	// Each host: lo up, eth0 addressed and up, and a route for the limited
	// broadcast, which otherwise fails with ENETUNREACH as there is no
	// default route.
	for _, h := range c.Hosts {
		script := fmt.Sprintf("link set lo up\n"+
			"addr add %s/%d broadcast %s dev eth0\n"+
			"link set eth0 up\n"+
			"route add 255.255.255.255/32 dev eth0\n",
			h.Addr, c.Subnet.Bits(), c.Broadcast)
		if err := ipBatch(h.NS, script); err != nil {
			t.Fatalf("clustertest: configure %s: %v", h.NS, err)
		}
	}
	c.waitLinks(t, c.Hosts...)
	return c
}

// waitLinks waits until the hosts' links carry frames: their switch ports
// forwarding and their eth0 running. The kernel reports a carrier change
// from a work queue it runs at most once a second, so a port plugged in
// (a veth brought up) can stay dead for up to a second.
func (c *Cluster) waitLinks(t testing.TB, hosts ...*Host) {
	t.Helper()
	Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		out, err := exec.Command("ip", "netns", "exec", c.sw, "bridge", "-j", "link", "show").Output()
		if err != nil {
			return fmt.Errorf("bridge link show: %w", err)
		}
		var ports []struct {
			IfName string `json:"ifname"`
			State  string `json:"state"`
		}
		if err := json.Unmarshal(out, &ports); err != nil {
			return fmt.Errorf("bridge link show: %w", err)
		}
		state := make(map[string]string, len(ports))
		for _, p := range ports {
			state[p.IfName] = p.State
		}
		for _, h := range hosts {
			if s := state[fmt.Sprintf("h%d", h.Index)]; s != "forwarding" {
				return fmt.Errorf("%s: switch port h%d %q, not forwarding", h.Name, h.Index, s)
			}
		}
		return nil
	})
	for _, h := range hosts {
		Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
			return h.Do(func() error {
				ifi, err := net.InterfaceByName("eth0")
				if err != nil {
					return fmt.Errorf("%s: %w", h.Name, err)
				}
				if ifi.Flags&net.FlagRunning == 0 {
					return fmt.Errorf("%s: eth0 not running (%v)", h.Name, ifi.Flags)
				}
				return nil
			})
		})
	}
}

// Close stops every process started with Host.Start and deletes the
// namespaces. It is idempotent and registered with t.Cleanup by New.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	procs := c.procs
	c.mu.Unlock()

	for _, p := range procs {
		p.Kill()
	}
	var del strings.Builder
	for _, h := range c.Hosts {
		fmt.Fprintf(&del, "netns del %s\n", h.NS)
	}
	fmt.Fprintf(&del, "netns del %s\n", c.sw)
	// -force goes on after a line fails, so one missing namespace does not
	// leave the others behind.
	cmd := exec.Command("ip", "-force", "-batch", "-")
	cmd.Stdin = strings.NewReader(del.String())
	_ = cmd.Run()
}

// Namespaces lists the namespace names of the cluster, hosts then switch.
func (c *Cluster) Namespaces() []string {
	var names []string
	for _, h := range c.Hosts {
		names = append(names, h.NS)
	}
	return append(names, c.sw)
}

// Command returns a command that runs name inside the host's namespace.
// `ip netns exec` execs name in place, so Process.Pid is name's own pid.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	// Programs die with the test binary even when it is killed before its
	// cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Run runs name inside the host's namespace and returns its standard output.
// It fails the test when the command fails, quoting its standard error.
func (h *Host) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := h.Command(t.Context(), name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %s %s: %v\n%s", h.Name, name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.String()
}

// ipBatch runs the commands of script with `ip -batch`, inside namespace ns
// when ns is not empty.
func ipBatch(ns, script string) error {
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// nthAddr is the n-th address after p's network address.
func nthAddr(p netip.Prefix, n uint32) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) + n
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// lastAddr is p's directed broadcast address.
func lastAddr(p netip.Prefix) netip.Addr {
	return nthAddr(p, 1<<(32-p.Bits())-1)
}

// newID returns <prefix><pid>x<4 hex digits>: unique per New, and telling
// removeStale which process owns the namespaces.
func newID(prefix string) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%dx%s", prefix, os.Getpid(), hex.EncodeToString(b[:]))
}

// ownedName matches the namespaces of every clustertest run, whatever its
// prefix, capturing the owner's process id.
var ownedName = regexp.MustCompile(`^rc[a-z]{0,8}?(\d+)x[0-9a-f]+-`)

// removeStale deletes the namespaces left by clustertest runs whose process
// is gone, and kills whatever still runs in them. Namespaces of a live
// process, such as another package's tests running in parallel, are kept.
func removeStale(t testing.TB) {
	t.Helper()
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	var del strings.Builder
	for _, e := range entries {
		m := ownedName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if out, err := exec.Command("ip", "netns", "pids", e.Name()).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if p, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			}
		}
		fmt.Fprintf(&del, "netns del %s\n", e.Name())
	}
	if del.Len() == 0 {
		return
	}
	t.Logf("clustertest: removing namespaces of dead runs:\n%s", del.String())
	cmd := exec.Command("ip", "-force", "-batch", "-")
	cmd.Stdin = strings.NewReader(del.String())
	_ = cmd.Run()
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

var available = sync.OnceValue(func() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root (run the tests as root, e.g. sudo -E go test)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("iproute2's ip command is not installed")
	}
	ns := newID(DefaultPrefix) + "-probe"
	if err := ipBatch("", "netns add "+ns+"\n"); err != nil {
		return fmt.Errorf("cannot create a network namespace: %w", err)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	if err := ipBatch(ns, "link add br0 type bridge\nlink add v0 type veth peer name v1\n"); err != nil {
		return fmt.Errorf("cannot create bridges or veth pairs: %w", err)
	}
	return nil
})

// Available reports whether this process can build clusters: it is root, ip
// is installed, and a trial namespace with a bridge and a veth pair works.
func Available() error { return available() }

// Required reports whether the environment demands that cluster tests run
// rather than skip: CI=true or ROLLCALL_REQUIRE_NETNS=1.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("ROLLCALL_REQUIRE_NETNS") == "1"
}

// Skip skips the test when clusters cannot be built here, naming the reason.
// Where Required, it fails the test instead.
func Skip(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		unavailable(t, "network-namespace cluster", err)
	}
}

// unavailable skips or, where Required, fails the test because what it
// needs is missing.
func unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if Required() {
		t.Fatalf("clustertest: %s required (CI=true or ROLLCALL_REQUIRE_NETNS=1) but unavailable: %v", what, err)
	}
	t.Skipf("clustertest: skipping, no %s: %v", what, err)
}
