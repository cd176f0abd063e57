package services

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// An outbox decouples publishing from the code that decides to publish:
// request handlers and input watchers queue messages under their own locks
// and never block on the MQTT session (an MQTT client that waits for a
// PUBACK while its router waits for a handler would otherwise deadlock).
// One goroutine, Run, sends them in order. A retained message replaces a
// queued, unsent one for the same topic, so a slow session sees the latest
// state rather than a growing backlog, and the last value always goes out.
type outbox struct {
	mu      sync.Mutex
	q       []outMsg
	byTop   map[string]int // retained topic -> index in q
	wake    chan struct{}
	limit   int
	drops   int           // since the last flush, which logs them
	dropped atomic.Uint64 // since the start, for Stats
	log     *slog.Logger
}

type outMsg struct {
	topic    string
	retained bool
	payload  []byte
	changed  bool // call bus.Changed instead of publishing
}

// outboxLimit bounds the non-retained messages waiting; beyond it they
// are dropped and counted. Retained values replace each other and never
// count against it.
const outboxLimit = 10000

// newOutbox returns an empty outbox.
func newOutbox(log *slog.Logger) *outbox {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &outbox{byTop: map[string]int{}, wake: make(chan struct{}, 1), limit: outboxLimit, log: log}
}

// Send queues one message at QoS 1.
func (o *outbox) Send(topic string, retained bool, payload []byte) {
	o.push(outMsg{topic: topic, retained: retained, payload: payload})
}

// Changed queues a call of the bus's Changed, in order with the messages.
func (o *outbox) Changed() { o.push(outMsg{changed: true}) }

func (o *outbox) push(m outMsg) {
	o.mu.Lock()
	if m.retained {
		if i, ok := o.byTop[m.topic]; ok {
			o.q[i].payload = m.payload
			o.mu.Unlock()
			return
		}
	}
	if len(o.q) >= o.limit && !m.retained && !m.changed {
		o.drops++
		o.dropped.Add(1)
		o.mu.Unlock()
		return
	}
	if m.retained {
		o.byTop[m.topic] = len(o.q)
	}
	o.q = append(o.q, m)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Run sends queued messages on bus until ctx ends, then sends what is
// left.
func (o *outbox) Run(ctx context.Context, bus Bus) {
	for {
		select {
		case <-o.wake:
			o.flush(bus)
		case <-ctx.Done():
			o.flush(bus)
			return
		}
	}
}

func (o *outbox) flush(bus Bus) {
	for {
		o.mu.Lock()
		batch, drops := o.q, o.drops
		o.q, o.drops = nil, 0
		clear(o.byTop)
		o.mu.Unlock()
		if drops > 0 {
			o.log.Warn("publish queue full, messages dropped", "count", drops)
		}
		if len(batch) == 0 {
			return
		}
		for _, m := range batch {
			if m.changed {
				bus.Changed()
				continue
			}
			if err := bus.Publish(m.topic, 1, m.retained, m.payload); err != nil {
				o.log.Debug("publish failed", "topic", m.topic, "err", err)
			}
		}
	}
}
