// Package cluster is the client side of a rollcall cluster: what a command
// run from any host does with it. Sweep broadcasts a probe and gathers the
// answers; ReadInventory reads the picture the broker keeps (every host's
// retained status and description, and the last sweep). Both give an
// Inventory, the one model of the cluster, printed by its Table or as JSON.
//
// A client needs only a broker and the discovery settings, never a host's
// configuration: see Config.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/rollcall/rollcall/agent/session"
	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/services"
)

// Config is what a client needs: who it is, the broker and the discovery
// settings.
type Config struct {
	// Name is the client's host name: the probe's replyto, and part of its
	// MQTT client id.
	Name      string
	MQTT      session.Config
	Discovery discovery.Config
}

// connect opens a short-lived session for a command run from a host.
func connect(ctx context.Context, cfg Config, role string, log *slog.Logger) (*session.Session, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	// A configured client id is the prefix of every command's own (a
	// broker's ACL may key on it); a suffix keeps two commands apart.
	id := fmt.Sprintf("rollcall-%s-%s-%s", role, cfg.Name, hex.EncodeToString(b[:]))
	if cfg.MQTT.ClientID != "" {
		id = fmt.Sprintf("%s-%s-%s", cfg.MQTT.ClientID, role, hex.EncodeToString(b[:]))
	}
	s, err := session.New(session.Options{Config: cfg.MQTT, ClientID: id}, log)
	if err != nil {
		return nil, err
	}
	wait := cfg.MQTT.ConnectTimeout
	if wait <= 0 {
		wait = session.DefaultConnectTimeout
	}
	if err := s.Connect(ctx, wait); err != nil {
		s.Close("", nil)
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	return s, nil
}

// subscribeRetained subscribes h to filters and returns once the broker has
// delivered their retained messages (or after wait). It subscribes a topic
// of its own along with them and publishes to it: a broker sends a
// subscription's retained messages before it handles the client's next
// packet, so that message comes after them, on the same connection and,
// being one subscription, to the same handler, in order. Mosquitto,
// mochi (processSubscribe queues them on the client's one outbound
// channel before reading on) and nats-server all do (tested in
// agent/clustertest). h keeps receiving later messages.
func subscribeRetained(s *session.Session, filters []string, wait time.Duration, h services.Handler) error {
	var (
		once sync.Once
		seen = make(chan struct{})
		mark = syncTopic()
	)
	// The session subscribes at QoS 0: a stock mosquitto queues at most
	// 1,000 QoS 1 messages for a client and drops the rest, and a read of
	// every host's retained topics is more than that.
	err := s.SubscribeAll(append(slices.Clone(filters), mark), func(m services.Message) {
		if m.Topic == mark {
			once.Do(func() { close(seen) })
			return
		}
		h(m)
	})
	if err != nil {
		return err
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	if err := s.Publish(mark, 1, false, []byte{}); err != nil {
		return err
	}
	select {
	case <-seen:
	case <-deadline.C:
	}
	return nil
}

func syncTopic() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "rollcall/sync/" + hex.EncodeToString(b[:])
}
