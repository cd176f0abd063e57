package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rollcall/rollcall/agent/session"
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

// Sweep broadcasts a probe and gathers the cluster's answers. The result
// is also published, retained, on the inventory topic.
func Sweep(ctx context.Context, cfg Config, opts SweepOptions, log *slog.Logger) (Inventory, error) {
	s, err := connect(ctx, cfg, "sweep", log)
	if err != nil {
		return Inventory{}, err
	}
	defer s.Close("", nil)

	var idb [4]byte
	_, _ = rand.Read(idb[:])
	id := int64(binary.BigEndian.Uint32(idb[:]) >> 1)

	// done ends the reply handler's wait once the sweep is over, so that
	// a late reply never blocks the session's handler goroutine.
	done := make(chan struct{})
	defer close(done)
	replies := make(chan discovery.Reply, 1024)
	err = s.Subscribe(cfg.Discovery.ReplyTopic, func(m services.Message) {
		r, err := discovery.ParseReply(m.Payload)
		if err != nil || r.ID != id {
			return
		}
		select {
		case replies <- r:
		case <-done:
		}
	})
	if err != nil {
		return Inventory{}, err
	}

	expected := slices.Clone(opts.Hosts)
	if !opts.NoRetained {
		known, err := readKnown(s, cfg.Discovery.InventoryTopic)
		if err != nil {
			return Inventory{}, err
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
		return Inventory{}, err
	}
	defer bc.Close()

	res, err := discovery.Sweep(ctx, discovery.SweepConfig{
		ReplyTo:     cfg.Name,
		Topic:       cfg.Discovery.ReplyTopic,
		ID:          id,
		Expected:    dedupe(expected),
		ExpectCount: opts.Expect,
		Timeout:     opts.Timeout,
		Quiet:       opts.Quiet,
		MaxProbes:   opts.MaxProbes,
		JitterMS:    opts.JitterMS,
	}, bc.Send, replies)
	inv := FromSweep(res)
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
	xs = slices.DeleteFunc(slices.Clone(xs), func(x string) bool { return x == "" })
	slices.Sort(xs)
	return slices.Compact(xs)
}

// readKnown returns the hosts the retained inventory lists as online:
// those whose <host>/status says online, and those the last sweep found
// (so that a host that died since is named missing, once).
func readKnown(s *session.Session, inventoryTopic string) ([]string, error) {
	var (
		mu     sync.Mutex
		online []string
	)
	err := subscribeRetained(s, []string{"+/status", inventoryTopic}, 2*time.Second, func(m services.Message) {
		mu.Lock()
		defer mu.Unlock()
		if m.Topic == inventoryTopic {
			var last Inventory
			if json.Unmarshal(m.Payload, &last) == nil && last.Schema == Schema {
				for _, h := range last.Hosts {
					if h.Status == StatusOnline {
						online = append(online, h.Host)
					}
				}
			}
		} else if string(m.Payload) == "online" {
			host, _, _ := strings.Cut(m.Topic, "/")
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
