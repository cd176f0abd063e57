package clustertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A Proc is a long-running program started in a host with Host.Start.
type Proc struct {
	Cmd *exec.Cmd
	Log string // file holding its standard output and error

	host *Host
	done chan struct{}
	err  error // exit error, valid once done is closed
	once sync.Once
}

// Start starts name inside the host's namespace with its output going to a
// log file in t.TempDir. At cleanup the program is killed, and when the test
// has failed its log is written to the test log.
func (h *Host) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return h.start(t, t, name, args...)
}

// start is Start with the program's lifetime (its log, its kill at
// cleanup) tied to owner, which may outlive t.
func (h *Host) start(t, owner testing.TB, name string, args ...string) *Proc {
	t.Helper()
	f, err := os.CreateTemp(owner.TempDir(), fmt.Sprintf("%s-%s-*.log", h.Name, filepath.Base(name)))
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	defer f.Close()
	p := &Proc{
		Cmd:  h.Command(context.Background(), name, args...),
		Log:  f.Name(),
		host: h,
		done: make(chan struct{}),
	}
	p.Cmd.Stdout, p.Cmd.Stderr = f, f
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("clustertest: %s: start %s: %v", h.Name, name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()

	h.c.mu.Lock()
	h.c.procs = append(h.c.procs, p)
	h.c.mu.Unlock()

	owner.Cleanup(func() {
		p.Kill()
		if owner.Failed() {
			owner.Logf("%s: %s %s (%v):\n%s", h.Name, name, strings.Join(args, " "), p.err, p.Output())
		}
	})
	return p
}

// Pid is the program's process id: ip netns exec execs the program in
// place, so once it has (when the program shows any sign of life), /proc/<Pid>
// is the program's own.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Kill kills the program with SIGKILL and waits for it to exit. It may be
// called more than once.
func (p *Proc) Kill() {
	p.once.Do(func() { _ = p.Cmd.Process.Kill() })
	<-p.done
}

// Signal sends sig to the program.
func (p *Proc) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Exited reports whether the program has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits until the program exits or ctx ends, and returns its exit error.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Output returns the log so far, its last 64 KiB when longer.
func (p *Proc) Output() string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return err.Error()
	}
	const max = 64 << 10
	if len(b) > max {
		b = append([]byte("[...]\n"), b[len(b)-max:]...)
	}
	return string(b)
}

// Eventually polls cond every interval until it returns nil, and fails the
// test with cond's last error when timeout passes first.
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("%v: %v", t.Context().Err(), err)
		}
	}
}
