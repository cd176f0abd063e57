// Package cluster is the client side of a rollcall cluster: what a command
// run from any host does with it. Sweep broadcasts a probe and gathers the
// answers; ReadInventory reads the picture the broker keeps (every host's
// retained status and description, and the last sweep). Both give an
// Inventory, the one model of the cluster, printed by its Table or as JSON.
//
// A client needs only a broker and the discovery settings, never a host's
// configuration: see Config. With mqtt.topic_prefix, every topic a client
// reads or writes lies under the prefix (site1/<host>/status,
// site1/rollcall/inventory), and host names read off topics are the level
// below it; the probe's reply topic does not move. A client sees only the
// hosts under its own prefix.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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

// prefix is the levels every topic of rollcall's lies under.
func (c Config) prefix() services.Prefix { return c.MQTT.TopicPrefix }

// inventoryTopic is where the last sweep's result is kept, retained.
func (c Config) inventoryTopic() string { return c.prefix().Topic(c.Discovery.InventoryTopic) }

// host returns the host a topic read from a subscription such as
// <prefix>/+/status names, and the rest below it ("status"); ok is false
// for a topic outside the prefix.
func (c Config) host(topic string) (host, rest string, ok bool) {
	t, ok := c.prefix().Trim(topic)
	if !ok {
		return "", "", false
	}
	host, rest, _ = strings.Cut(t, "/")
	return host, rest, true
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
func subscribeRetained(s *session.Session, p services.Prefix, filters []string, wait time.Duration, h services.Handler) error {
	var (
		once sync.Once
		seen = make(chan struct{})
		mark = syncTopic(p)
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

// syncTopic is a fresh topic under <prefix>/rollcall/sync/ marking the end
// of the retained messages: under the prefix, where a broker's ACL lets
// rollcall publish.
func syncTopic(p services.Prefix) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return p.Topic("rollcall", "sync", hex.EncodeToString(b[:]))
}
