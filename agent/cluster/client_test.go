package cluster_test

import (
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

// clientIDs records the client id of every connection the broker takes.
type clientIDs struct {
	mqtt.HookBase
	mu  sync.Mutex
	ids []string
}

func (h *clientIDs) ID() string           { return "client-ids" }
func (h *clientIDs) Provides(b byte) bool { return b == mqtt.OnConnect }
func (h *clientIDs) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ids = append(h.ids, cl.ID)
	return nil
}

// TestClientID: a command connects as mqtt.client_id and a suffix of its
// own when one is configured (an ACL may key on it), and as rollcall-… when
// not; two commands never share an id.
func TestClientID(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	b, err := broker.Start("127.0.0.1:0", log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	h := &clientIDs{}
	if err := b.AddHook(h, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, configured, prefix string
	}{
		{"configured", "greenhouse-ops", "greenhouse-ops-inventory-"},
		{"default", "", "rollcall-inventory-laptop-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cluster.Config{Name: "laptop", MQTT: session.Config{Broker: b.URL(), Keepalive: 5 * time.Second, ClientID: tc.configured}, Discovery: discovery.DefaultConfig()}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			h.mu.Lock()
			h.ids = nil
			h.mu.Unlock()
			for range 2 {
				if _, err := cluster.ReadInventory(ctx, cfg, log, nil); err != nil {
					t.Fatal(err)
				}
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if len(h.ids) != 2 || h.ids[0] == h.ids[1] {
				t.Fatalf("client ids %q, want two different ones", h.ids)
			}
			for _, id := range h.ids {
				if !strings.HasPrefix(id, tc.prefix) {
					t.Errorf("client id %q, want it to start with %q", id, tc.prefix)
				}
			}
		})
	}
}
