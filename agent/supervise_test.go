package agent

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeNotifier records what the agent tells systemd.
type fakeNotifier struct {
	mu     sync.Mutex
	states []string
}

func (n *fakeNotifier) Notify(state string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.states = append(n.states, state)
	return nil
}

func (n *fakeNotifier) count(prefix string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, s := range n.states {
		if strings.HasPrefix(s, prefix) {
			c++
		}
	}
	return c
}

// stallProxy forwards TCP to a broker until stalled: then it keeps every
// connection open but passes nothing, as a broker wedged in a half-open
// connection or a dead NAT entry would.
type stallProxy struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *stallProxy) serve(c net.Conn) {
	defer c.Close()
	b, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer b.Close()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 4096)
		for {
			n, err := src.Read(buf)
			if err != nil {
				return
			}
			if p.stalled.Load() {
				continue // swallowed: the other side hears nothing
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go pipe(b, c)
	pipe(c, b)
	_, _ = io.Copy(io.Discard, c)
}

func TestSuperviseReadyWatchdogAndWedge(t *testing.T) {
	b := embeddedBroker(t)
	proxy := newStallProxy(t, b.Addr().String())
	c := newTestCluster(t, "tcp://"+proxy.ln.Addr().String())
	cfg := c.config("pi1")
	cfg.MQTT.Keepalive = 30 * time.Second // the watchdog must notice before paho does
	a := c.start(cfg)
	n := &fakeNotifier{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Supervise(ctx, a, n, 400*time.Millisecond)

	waitFor(t, 5*time.Second, "READY and a few watchdog pings", func() bool {
		return n.count("READY=1") == 1 && n.count("WATCHDOG=1") >= 3
	})
	proxy.stalled.Store(true)
	fed := n.count("WATCHDOG=1")
	waitFor(t, 5*time.Second, "the wedge reported", func() bool { return n.count("STATUS=unhealthy: mqtt session not answering") >= 2 })
	if got := n.count("WATCHDOG=1"); got > fed+1 {
		t.Errorf("the watchdog was fed %d more times while the session was wedged", got-fed)
	}
	if err := a.Healthy(context.Background()); err == nil {
		t.Error("Healthy while the broker acknowledges nothing")
	}
}

func TestSuperviseBrokerDownIsNotAFault(t *testing.T) {
	c := newTestCluster(t, "tcp://127.0.0.1:1") // nothing listens there
	cfg := c.config("pi1")
	a, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 5*time.Second, "the agent trying to connect", func() bool { return a.sessionp.Load() != nil && a.serving.Load() })
	if err := a.Healthy(context.Background()); err != nil {
		t.Errorf("an agent retrying a broker that is down is healthy, got %v", err)
	}
}
