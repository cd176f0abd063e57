package clustertest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// LocalMosquitto runs a stock mosquitto for t on a free loopback port and
// returns its URL: a listener and allow_anonymous true, nothing tuned, as
// a user has it, plus extra configuration lines (an acl_file, say). Unlike
// the namespace cluster it needs no root. Without mosquitto it skips, and
// fails instead when Required.
func LocalMosquitto(t testing.TB, extra string) string {
	t.Helper()
	port := FreePort(t)
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n%s", port, extra)
	StartLocalMosquitto(t, conf, port)
	return fmt.Sprintf("tcp://127.0.0.1:%d", port)
}

// StartLocalMosquitto runs mosquitto for t with the configuration conf,
// whose listeners are on ports of 127.0.0.1, and waits until every one
// accepts connections. Started as root, it stays root (mosquitto would
// drop to its own user, who cannot read the test's files). Its output is
// shown when t fails; it is killed at cleanup.
func StartLocalMosquitto(t testing.TB, conf string, ports ...int) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		unavailable(t, "mosquitto broker (apt-get install mosquitto)", err)
	}
	if os.Geteuid() == 0 {
		conf = "user root\n" + conf
	}
	path := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("mosquitto:\n%s", out.String())
		}
	})
	for _, p := range ports {
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
			select {
			case <-exited:
				t.Fatalf("mosquitto exited:\n%s", out.String())
			default:
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return fmt.Errorf("mosquitto on %s not accepting: %w", addr, err)
			}
			return c.Close()
		})
	}
}

// FreePort is a TCP port of 127.0.0.1 free when asked.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
