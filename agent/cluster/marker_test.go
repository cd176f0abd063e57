package cluster_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/rollcall/rollcall/agent/broker"
	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/agent/session"
	"github.com/rollcall/rollcall/discovery"
)

// dropFirstMarker drops the first end-of-retained marker a sweep
// publishes, as a broker does that drops QoS 0 messages to a client it
// finds slow (mosquitto with 1,000 packets queued for it).
type dropFirstMarker struct {
	mqtt.HookBase
	mu      sync.Mutex
	markers int
}

func (h *dropFirstMarker) ID() string           { return "drop-first-marker" }
func (h *dropFirstMarker) Provides(b byte) bool { return b == mqtt.OnPublish }
func (h *dropFirstMarker) OnPublish(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if !strings.HasPrefix(pk.TopicName, "rollcall/sync/") {
		return pk, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.markers++
	if h.markers == 1 {
		return pk, packets.CodeSuccessIgnore // taken, never delivered
	}
	return pk, nil
}

// TestSweepMarkerLost: a sweep whose end-of-retained marker is dropped
// sends it again, and goes on as soon as one comes back, without waiting
// for its fallback.
func TestSweepMarkerLost(t *testing.T) {
	b, err := broker.Start("127.0.0.1:0", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h := &dropFirstMarker{}
	if err := b.AddHook(h, nil); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
	cfg := cluster.Config{Name: "sweeper", MQTT: session.Config{Broker: b.URL(), Keepalive: 5 * time.Second}, Discovery: discovery.DefaultConfig()}
	cfg.Discovery.Interfaces = []string{"lo"}
	cfg.Discovery.Port = 1 // nobody answers
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cluster.Sweep(ctx, cfg, cluster.SweepOptions{Timeout: 4 * time.Second}, log); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	markers := h.markers
	h.mu.Unlock()
	if markers < 2 {
		t.Errorf("%d markers published, want the dropped one sent again", markers)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if strings.Contains(logs.String(), "did not end in time") {
		t.Errorf("the sweep fell back on its deadline instead of the marker sent again:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
