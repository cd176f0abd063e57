package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"slices"
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
	// JitterMS asks hosts to spread their reports, and so their services'
	// MQTT replies, over this many milliseconds. 0 means AckJitterMS when
	// acknowledgements are on and none otherwise; below 0, none.
	JitterMS int
	// NoRetained skips reading the retained inventory for expected hosts.
	NoRetained bool
	// NoAck sends probes that ask for no UDP acknowledgement, so that only
	// MQTT replies count, as before acknowledgements existed.
	NoAck bool
	// OnResult, when set, is given the result before it is published,
	// retained, on the inventory topic: a command prints it first.
	OnResult func(Inventory)
}

// AckJitterMS is the spread a sweep asks for when it takes acknowledgements.
// The acknowledgements go out at once and, with the hosts' summaries,
// complete the sweep; the reports and replies (a report and one reply per
// service, from every host) only need to reach other listeners and the
// services outside the agent. Spread, they no longer land on the broker and
// the sweeper, nor take a host's CPU, all at the moment the last
// acknowledgements are due: on 50 namespace hosts sharing 2 cores with
// stock mosquitto, complete_ms p50 14.4 -> 8.8 ms. A service outside the
// agent answers up to this much later.
const AckJitterMS = 50

// Sweep broadcasts a probe and gathers the cluster's answers: the
// monitors' UDP acknowledgements, read against the hosts' retained
// summaries, and the services' MQTT replies. The result is also published,
// retained, on the inventory topic.
//
// It reads the retained status and summary of every host while the first
// probes are in flight, not before: on a lossy link that read can take a
// TCP retransmission, and the probes need not wait for it.
func Sweep(ctx context.Context, cfg Config, opts SweepOptions, log *slog.Logger) (Inventory, error) {
	s, err := connect(ctx, cfg, "sweep", log)
	if err != nil {
		return Inventory{}, err
	}
	defer s.Close("", nil)

	var idb [8]byte
	_, _ = rand.Read(idb[:])
	id := int64(binary.BigEndian.Uint32(idb[:4]) >> 1)
	token := ""
	if !opts.NoAck {
		token = hex.EncodeToString(idb[4:])
	}
	jitter := opts.JitterMS
	switch {
	case jitter == 0 && token != "":
		jitter = AckJitterMS
	case jitter < 0:
		jitter = 0
	}

	// done ends the handlers' waits once the sweep is over, so that a
	// late message never blocks the session's handler goroutine.
	done := make(chan struct{})
	finish := sync.OnceFunc(func() { close(done) })
	defer finish()
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

	summaries := make(chan discovery.Summary, 1024)
	var expected chan []string
	if !opts.NoRetained {
		expected = make(chan []string, 1)
		go readRetained(s, cfg, summaries, expected, done, markWait(opts.Timeout), log)
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
	var acks chan discovery.AckFrom
	if token != "" {
		acks = make(chan discovery.AckFrom, 1024)
		actx, stop := context.WithCancel(ctx)
		defer stop()
		go bc.ReadAcks(actx, id, token, acks)
	}

	res, err := discovery.Sweep(ctx, discovery.SweepConfig{
		ReplyTo:     cfg.Name,
		Topic:       cfg.Discovery.ReplyTopic,
		ID:          id,
		Expected:    opts.Hosts,
		ExpectCount: opts.Expect,
		ExpectLater: !opts.NoRetained,
		Timeout:     opts.Timeout,
		Quiet:       opts.Quiet,
		MaxProbes:   opts.MaxProbes,
		JitterMS:    jitter,
		AckToken:    token,
		TopicPrefix: cfg.prefix(),
	}, discovery.SweepIO{Send: bc.Send, Replies: replies, Acks: acks, Summaries: summaries, Expected: expected})
	// Nothing reads the channels any more. Late replies (a large cluster
	// sends thousands) must not fill them and block the session, which
	// still has to read the broker's acknowledgement of the result.
	finish()
	inv := FromSweep(res)
	if err != nil {
		return inv, err
	}
	if opts.OnResult != nil {
		opts.OnResult(inv)
	}
	if b, err := json.Marshal(inv); err == nil {
		if err := s.PublishWait(cfg.inventoryTopic(), 1, true, b, 2*time.Second); err != nil {
			log.Warn("publish sweep result", "topic", cfg.inventoryTopic(), "err", err)
		}
	}
	return inv, nil
}

// markResend is how often the end-of-retained marker is sent again while
// it has not come back.
const markResend = 150 * time.Millisecond

// markWait is how long a sweep of timeout waits for the end of the
// retained hosts before it goes on with those read so far: 2 s, or half
// the timeout when that is shorter.
func markWait(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		timeout = discovery.DefaultTimeout
	}
	return min(2*time.Second, timeout/2)
}

func keyBytes(k string) []byte {
	if k == "" {
		return nil
	}
	return []byte(k)
}

// readRetained subscribes to every host's status and summary and to the
// last sweep's result. Summaries go to summaries, now and as they change;
// once the broker has delivered what it keeps, the hosts that are online
// (by their status, or by the last sweep, so that a host that died since
// is named missing once) go to expected.
func readRetained(s *session.Session, cfg Config, summaries chan<- discovery.Summary, expected chan<- []string, done <-chan struct{}, wait time.Duration, log *slog.Logger) {
	var (
		mu             sync.Mutex
		online         []string            // by status, or by the last sweep
		hosts          = map[string]bool{} // with a rollcall summary
		sent           bool
		p              = cfg.prefix()
		mark           = syncTopic(p)
		inventoryTopic = cfg.inventoryTopic()
	)
	// QoS 0, as subscribeRetained does: at QoS 1 a stock mosquitto drops
	// what it cannot queue (over 1000 messages), the mark included, and
	// the sweep then waits for its timeout.
	err := s.SubscribeAll([]string{p.Topic("+", "status"), p.Topic("+", "services"), inventoryTopic, mark}, func(m services.Message) {
		host, kind, _ := cfg.host(m.Topic)
		switch {
		case m.Topic == mark:
			mu.Lock()
			// A name is a rollcall host only by its summary: another
			// system's <name>/status on a shared broker is not waited for.
			names := slices.DeleteFunc(slices.Clone(online), func(h string) bool { return !hosts[h] })
			first := !sent
			sent = true
			mu.Unlock()
			if first {
				expected <- names // buffered, read once
			}
		case kind == "services":
			sm, err := discovery.ParseSummary(m.Payload)
			if err != nil || sm.Host != host {
				return
			}
			mu.Lock()
			hosts[host] = true
			mu.Unlock()
			select {
			case summaries <- sm:
			case <-done:
			}
		case m.Topic == inventoryTopic:
			var last Inventory
			if json.Unmarshal(m.Payload, &last) == nil && last.Schema == Schema {
				mu.Lock()
				for _, h := range last.Hosts {
					if h.Status == StatusOnline {
						online = append(online, h.Host)
					}
				}
				mu.Unlock()
			}
		case kind == "status" && string(m.Payload) == "online":
			mu.Lock()
			online = append(online, host)
			mu.Unlock()
		}
	})
	if err == nil {
		// The broker has taken the subscription: the marker arrives after
		// the retained messages.
		err = s.Publish(mark, 1, false, []byte{})
	}
	if err == nil {
		// A broker that drops messages to a client it finds slow (under a
		// flood of answers) can drop the marker too: the sweep then goes
		// on with the hosts read so far rather than wait for its timeout.
		// A stock mosquitto drops QoS 0 messages to a client with 1,000
		// packets queued (max_queued_messages), which a thousand hosts'
		// answers reach: the marker is sent again until one gets through.
		go func() {
			tick := time.NewTicker(markResend)
			defer tick.Stop()
			give := time.NewTimer(wait)
			defer give.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					mu.Lock()
					got := sent
					mu.Unlock()
					if got {
						return
					}
					_ = s.Publish(mark, 1, false, []byte{})
				case <-give.C:
					mu.Lock()
					if sent {
						mu.Unlock()
						return
					}
					sent = true
					names := slices.DeleteFunc(slices.Clone(online), func(h string) bool { return !hosts[h] })
					mu.Unlock()
					log.Warn("the broker's retained hosts did not end in time (messages dropped?); waiting for those read so far", "hosts", len(names), "after", wait)
					expected <- names
					return
				}
			}
		}()
	}
	if err != nil {
		log.Warn("cannot read the retained hosts; waiting only for those named", "err", err)
		mu.Lock()
		if !sent {
			sent = true
			expected <- nil
		}
		mu.Unlock()
	}
}
