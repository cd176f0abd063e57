package agent

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/services"
)

// SweepOptions are a sweep's own settings; the rest comes from Config.
type SweepOptions struct {
	// Expect is the least number of distinct hosts to wait for.
	Expect int
	// Hosts are host names that must answer, on top of those the retained
	// inventory lists as online.
	Hosts     []string
	Timeout   time.Duration
	Quiet     time.Duration
	MaxProbes int
	JitterMS  int
	// NoRetained skips reading the retained inventory for expected hosts.
	NoRetained bool
}

// client opens a short-lived session for a command run from a host: a
// sweep or an inventory read.
func client(ctx context.Context, cfg Config, role string, log *slog.Logger) (*Session, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := fmt.Sprintf("rollcall-%s-%s-%s", role, cfg.Host, hex.EncodeToString(b[:]))
	s, err := NewSession(SessionConfig{MQTT: withBroker(cfg.MQTT, cfg.BrokerURL()), ClientID: id}, log)
	if err != nil {
		return nil, err
	}
	if err := s.Connect(ctx, 5*time.Second); err != nil {
		s.Close("", nil)
		return nil, fmt.Errorf("%s: broker %s: %w", role, cfg.BrokerURL(), err)
	}
	return s, nil
}

// subscribeRetained subscribes h to filters and returns once the broker has
// delivered their retained messages (or after wait). It subscribes a topic
// of its own along with them and publishes to it: mosquitto delivers that
// message after the retained ones. Brokers that send retained messages
// from another goroutine (mochi) may still be sending then, so it also
// waits until messages have stopped arriving for settleQuiet. h keeps
// receiving later messages.
func subscribeRetained(s *Session, filters []string, wait time.Duration, h services.Handler) error {
	var (
		once     sync.Once
		seen     = make(chan struct{})
		activity = make(chan struct{}, 1)
		mark     = syncTopic()
	)
	err := s.SubscribeAll(append(slices.Clone(filters), mark), func(topic string, b []byte) {
		if topic == mark {
			once.Do(func() { close(seen) })
			return
		}
		h(topic, b)
		select {
		case activity <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return err
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	if err := s.Publish(mark, 1, false, []byte{}); err == nil {
		select {
		case <-seen:
		case <-deadline.C:
			return nil
		}
	}
	quiet := time.NewTimer(settleQuiet)
	defer quiet.Stop()
	for {
		select {
		case <-activity:
			quiet.Reset(settleQuiet)
		case <-quiet.C:
			return nil
		case <-deadline.C:
			return nil
		}
	}
}

// settleQuiet is how long retained messages must stop arriving before a
// reader takes its picture.
const settleQuiet = 40 * time.Millisecond

// Sweep broadcasts a probe and gathers the cluster's answers. The sweep's
// result is also published, retained, on the inventory topic.
func Sweep(ctx context.Context, cfg Config, opts SweepOptions, log *slog.Logger) (discovery.Inventory, error) {
	s, err := client(ctx, cfg, "sweep", log)
	if err != nil {
		return discovery.Inventory{}, err
	}
	defer s.Close("", nil)

	var idb [4]byte
	_, _ = rand.Read(idb[:])
	id := int64(binary.BigEndian.Uint32(idb[:]) >> 1)

	replies := make(chan discovery.Reply, 1024)
	err = s.Subscribe(cfg.Discovery.ReplyTopic, func(_ string, b []byte) {
		r, err := discovery.ParseReply(b)
		if err != nil || r.ID != id {
			return
		}
		select {
		case replies <- r:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return discovery.Inventory{}, err
	}

	expected := append([]string(nil), opts.Hosts...)
	if !opts.NoRetained {
		known, err := readKnown(s, cfg.Discovery.InventoryTopic)
		if err != nil {
			return discovery.Inventory{}, err
		}
		expected = append(expected, known...)
	}

	bc, err := discovery.NewBroadcaster(discovery.BroadcastConfig{
		Port:       cfg.Discovery.Port,
		Interfaces: cfg.Discovery.Interfaces,
		Targets:    cfg.Discovery.Targets,
		Key:        keyBytes(cfg.Discovery.Key),
		KeyID:      cfg.Discovery.KeyID,
	})
	if err != nil {
		return discovery.Inventory{}, err
	}
	defer bc.Close()

	inv, err := discovery.Sweep(ctx, discovery.SweepConfig{
		ReplyTo:     cfg.Host,
		Topic:       cfg.Discovery.ReplyTopic,
		ID:          id,
		Expected:    dedupe(expected),
		ExpectCount: opts.Expect,
		Timeout:     opts.Timeout,
		Quiet:       opts.Quiet,
		MaxProbes:   opts.MaxProbes,
		JitterMS:    opts.JitterMS,
	}, bc.Send, replies)
	if err != nil {
		return inv, err
	}
	if b, err := json.Marshal(inv); err == nil {
		if err := s.PublishWait(cfg.Discovery.InventoryTopic, 1, true, b, 2*time.Second); err != nil {
			log.Warn("publish sweep result", "topic", cfg.Discovery.InventoryTopic, "err", err)
		}
	}
	return inv, nil
}

func keyBytes(k string) []byte {
	if k == "" {
		return nil
	}
	return []byte(k)
}

func dedupe(xs []string) []string {
	sort.Strings(xs)
	out := xs[:0]
	for i, x := range xs {
		if x != "" && (i == 0 || x != xs[i-1]) {
			out = append(out, x)
		}
	}
	return out
}

// readKnown returns the hosts the retained inventory lists as online:
// those whose <host>/status says online, and those the last sweep found
// (so that a host that died since is named missing, once).
func readKnown(s *Session, inventoryTopic string) ([]string, error) {
	var (
		mu     sync.Mutex
		online []string
	)
	err := subscribeRetained(s, []string{"+/status", inventoryTopic}, 2*time.Second, func(topic string, b []byte) {
		mu.Lock()
		defer mu.Unlock()
		if topic == inventoryTopic {
			var last discovery.Inventory
			if json.Unmarshal(b, &last) == nil {
				for _, h := range last.Hosts {
					if h.Status == discovery.StatusOnline {
						online = append(online, h.Hostname)
					}
				}
			}
		} else if string(b) == "online" {
			host, _, _ := strings.Cut(topic, "/")
			online = append(online, host)
		}
	})
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(online), nil
}

func syncTopic() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "rollcall/sync/" + hex.EncodeToString(b[:])
}
