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

// StartMosquitto runs a mosquitto broker in the host, listening on every
// address of the host on MosquittoPort, anonymous and without persistence,
// and waits until it accepts connections. It returns the broker URL
// (tcp://<host addr>:1883). The broker is killed at cleanup and its log,
// in t.TempDir, is shown when the test fails.
func (h *Host) StartMosquitto(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		unavailable(t, "mosquitto broker", err)
	}
	dir := t.TempDir()
	conf := fmt.Sprintf("listener %d 0.0.0.0\n"+
		"allow_anonymous true\n"+
		// As root mosquitto drops to the mosquitto user, which cannot
		// write the log into the test's private directory.
		"user root\n"+
		// Without it mosquitto batches small messages behind Nagle and
		// the subscriber's delayed ACK: every answer waits ~40 ms.
		"set_tcp_nodelay true\n"+
		"persistence false\n"+
		"log_dest file %s\n"+
		"log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"+
		"max_queued_messages 10000\n",
		MosquittoPort, filepath.Join(dir, "mosquitto.log"))
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := h.Start(t, bin, "-c", confPath)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "mosquitto.log"))
			t.Logf("%s: mosquitto.log:\n%s", h.Name, b)
		}
	})

	addr := net.JoinHostPort(h.Addr.String(), fmt.Sprint(MosquittoPort))
	Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
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
	return "tcp://" + addr
}
