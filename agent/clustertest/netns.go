package clustertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread that has joined the host's network namespace,
// so the sockets fn opens belong to the host. A socket keeps its namespace
// for life: it may be used from any goroutine once Do returns.
//
// The thread goes back to its own namespace before it is unlocked. Should
// that fail, it stays locked and the runtime ends it with its goroutine;
// that is avoided otherwise, because the children a thread forks with
// Pdeathsig (as Command's do) are killed when that thread ends.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own namespace: %w", err)
			return
		}
		defer self.Close()
		target, err := os.Open(filepath.Join(netnsDir, h.NS))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open namespace %s: %w", h.NS, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", h.NS, err)
			return
		}
		err = fn()
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// DialContext connects from inside the host's namespace.
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// ListenPacket opens a packet socket inside the host's namespace. Go sets
// SO_BROADCAST on UDP sockets, so it can send to the broadcast addresses.
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	var c net.PacketConn
	err := h.Do(func() (err error) {
		c, err = net.ListenPacket(network, address)
		return err
	})
	return c, err
}

// StartCmd starts cmd inside the host's namespace, forked straight from a
// thread that has joined it, with no `ip netns exec` in between: a
// benchmark times the program's own start, as a user's shell would. The
// program keeps the test's mount namespace, so its /sys/class/net is the
// root namespace's; Go's net package, which reads interfaces over
// netlink, is not misled by that. Use Command for anything else.
func (h *Host) StartCmd(cmd *exec.Cmd) error {
	return h.Do(cmd.Start)
}
