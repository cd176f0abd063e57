package simcluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/rollcall/rollcall/agent/cluster"
)

func testLogger(t testing.TB) *slog.Logger {
	t.Helper()
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startCluster starts a cluster and closes it at cleanup; a failure to
// close fails the test.
func startCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// startMosquitto starts a stock mosquitto for the test, or skips it when
// mosquitto is not installed (outside CI).
func startMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := StartMosquitto(ctx, t.TempDir())
	if errors.Is(err, exec.ErrNotFound) && os.Getenv("CI") == "" {
		t.Skip("mosquitto is not installed: apt-get install mosquitto")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// eventually polls cond every few milliseconds until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func checkComplete(t testing.TB, c *Cluster, inv cluster.Inventory) {
	t.Helper()
	if !inv.Sweep.Complete || len(inv.Missing) > 0 {
		t.Errorf("sweep incomplete: complete %v, missing %v", inv.Sweep.Complete, inv.Missing)
	}
	var got []string
	for _, h := range inv.Hosts {
		got = append(got, h.Host)
		if h.Status != cluster.StatusOnline || len(h.Services) == 0 || len(h.MissingServices) > 0 {
			t.Errorf("host %s: status %s, services %d, missing %v", h.Host, h.Status, len(h.Services), h.MissingServices)
		}
	}
	if !slices.Equal(got, c.Hosts()) {
		t.Errorf("swept %d hosts %v, want the cluster's %d", len(got), got, len(c.Hosts()))
	}
}

// TestSweep starts a small cluster with a listener per host, sweeps it
// and checks that the sweep found every host, that each listener heard
// its own host's report, and what each report setting costs the broker:
// every listener hears every report on the shared topic (n² deliveries),
// only its own host's per host.
func TestSweep(t *testing.T) {
	const n = 30
	tests := []struct {
		name    string
		perHost bool
	}{
		{"shared report topic", false},
		{"report topic per host", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := StartEmbedded(testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() }) // after the cluster's own cleanup
			c := startCluster(t, Options{Hosts: n, Broker: b, ReportPerHost: tt.perHost, Listeners: true})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			before, err := b.Deliveries(ctx)
			if err != nil {
				t.Fatal(err)
			}
			inv, err := cluster.Sweep(ctx, c.Client("sweeper"), cluster.SweepOptions{Expect: n, Timeout: 10 * time.Second}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			checkComplete(t, c, inv)
			eventually(t, 5*time.Second, "every listener hears its host's report", func() bool { return c.Reports().Own >= n })
			after, err := b.Deliveries(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, delivered := c.Reports(), after-before
			t.Logf("%s: sweep complete in %.1f ms, %d probes; listeners received %d reports (%d their own); broker delivered %d",
				tt.name, inv.Sweep.CompleteMS, inv.Sweep.Probes, got.Received, got.Own, delivered)
			if got.Lost > 0 {
				t.Errorf("%d listeners lost their connection", got.Lost)
			}
			if tt.perHost {
				if got.Received != got.Own {
					t.Errorf("listeners received %d reports, %d of them their own host's: per host, they hear only their own", got.Received, got.Own)
				}
				if delivered >= n*n {
					t.Errorf("broker delivered %d messages for one sweep, want well under n² = %d", delivered, n*n)
				}
			} else {
				if got.Received < n*n {
					t.Errorf("listeners received %d reports, want every host's, n² = %d", got.Received, n*n)
				}
				if delivered < n*n {
					t.Errorf("broker delivered %d messages for one sweep, want at least n² = %d", delivered, n*n)
				}
			}
		})
	}
}

// TestSweepMosquitto runs the cluster against a stock mosquitto, and reads
// its delivery count from $SYS (which takes up to 10 s).
func TestSweepMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("reads mosquitto's $SYS, updated every 10 s")
	}
	const n = 30
	m := startMosquitto(t)
	c := startCluster(t, Options{Hosts: n, Broker: m, ReportPerHost: true, Listeners: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inv, err := cluster.Sweep(ctx, c.Client("sweeper"), cluster.SweepOptions{Expect: n, Timeout: 10 * time.Second}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, c, inv)
	eventually(t, 5*time.Second, "every listener hears its host's report", func() bool { return c.Reports().Own >= n })
	d, err := m.Deliveries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// At least each host's retained status and summary read by the sweep,
	// and its report to its listener.
	if d < 3*n {
		t.Errorf("mosquitto says it delivered %d messages, want at least %d", d, 3*n)
	}
	t.Logf("sweep complete in %.1f ms; mosquitto delivered %d messages since it started", inv.Sweep.CompleteMS, d)
}

func TestStartRejects(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"no hosts", Options{Dir: t.TempDir()}},
		{"no state directory", Options{Hosts: 1}},
		{"over the descriptor limit", Options{Hosts: 1 << 30, Dir: t.TempDir()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Start(context.Background(), tt.opts)
			if err == nil {
				c.Close()
				t.Fatal("started")
			}
		})
	}
}

// Hosts stopped by Close said goodbye: the broker keeps every one's status
// as offline.
func TestCloseLeavesHostsOffline(t *testing.T) {
	const n = 30
	b, err := StartEmbedded(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c := startCluster(t, Options{Hosts: n, Broker: b})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Deliveries(ctx); err != nil { // the last goodbyes
		t.Fatal(err)
	}
	ci, err := cluster.ReadInventory(ctx, c.Client("reader"), testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	online := 0
	for _, h := range ci.Hosts {
		if h.Status != "offline" {
			online++
			t.Errorf("host %s: status %q after it stopped", h.Host, h.Status)
		}
	}
	if len(ci.Hosts) != n {
		t.Errorf("inventory lists %d hosts, want %d", len(ci.Hosts), n)
	}
}
