package clustertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// MosquittoPort is the port StartMosquitto listens on.
const MosquittoPort = 1883

// MosquittoOptions choose the broker's configuration. The zero value is
// stock mosquitto: a listener and allow_anonymous, nothing else, as a
// user who installs the package and opens it to the network has it.
type MosquittoOptions struct {
	// NoDelay sets set_tcp_nodelay, a tuning stock mosquitto lacks:
	// without it the broker's small writes wait behind Nagle's algorithm
	// for the client's delayed ACK. Benchmarks label it as a comparison;
	// tests and the headline figures run stock.
	NoDelay bool
}

// A Mosquitto is a broker running in a host.
type Mosquitto struct {
	URL  string // tcp://<host addr>:1883
	Host *Host

	conf  string
	proc  *Proc
	owner testing.TB // of StartMosquitto: the broker lives as long as it
}

// StartMosquitto runs a mosquitto broker in the host, listening on every
// address of the host on MosquittoPort, anonymous and without persistence
// (mosquitto's default), and waits until it accepts connections. Its log
// is its standard error, in the Proc's log, shown when the test fails; it
// is killed at cleanup.
func (h *Host) StartMosquitto(t testing.TB, o MosquittoOptions) *Mosquitto {
	t.Helper()
	if _, err := exec.LookPath("mosquitto"); err != nil {
		unavailable(t, "mosquitto broker", err)
	}
	conf := fmt.Sprintf("listener %d 0.0.0.0\nallow_anonymous true\n", MosquittoPort)
	if o.NoDelay {
		conf += "set_tcp_nodelay true\n"
	}
	m := &Mosquitto{
		URL:   "tcp://" + net.JoinHostPort(h.Addr.String(), fmt.Sprint(MosquittoPort)),
		Host:  h,
		conf:  filepath.Join(t.TempDir(), "mosquitto.conf"),
		owner: t,
	}
	if err := os.WriteFile(m.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m.Start(t)
	return m
}

// Start starts the broker again after Kill, with the same configuration,
// and waits until it accepts connections. Without persistence it comes
// back empty: no retained message, no session. It runs until the cleanup
// of the test that called StartMosquitto, even when t is a subtest.
func (m *Mosquitto) Start(t testing.TB) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		unavailable(t, "mosquitto broker", err)
	}
	h := m.Host
	p := h.start(t, m.owner, bin, "-c", m.conf)
	m.proc = p
	addr := net.JoinHostPort(h.Addr.String(), fmt.Sprint(MosquittoPort))
	Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if p.Exited() {
			t.Fatalf("%s: mosquitto exited: %v\n%s", h.Name, p.err, p.Output())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := h.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("mosquitto on %s not accepting: %w", addr, err)
		}
		return c.Close()
	})
}

// Kill kills the broker with SIGKILL, as a crash or an OOM kill would, and
// waits for it to exit. Its clients see their connections reset.
func (m *Mosquitto) Kill() { m.proc.Kill() }

// Proc is the broker's process, as last started.
func (m *Mosquitto) Proc() *Proc { return m.proc }
