package gpio

import (
	"context"
	"log/slog"
	"sync"

	"github.com/rollcall/rollcall/services"
)

// outbox decouples publishing from the code that decides to publish:
// handlers and input watchers queue messages under their own locks and
// never block on the MQTT session (an MQTT client that waits for a PUBACK
// while its router waits for a handler would otherwise deadlock). One
// goroutine sends them in order. A retained message replaces a queued,
// unsent one for the same topic, so a slow session sees the latest state
// rather than a growing backlog.
type outbox struct {
	mu     sync.Mutex
	q      []outMsg
	byTop  map[string]int // retained topic -> index in q
	wake   chan struct{}
	limit  int
	drops  int
	logger *slog.Logger
}

type outMsg struct {
	topic    string
	retained bool
	payload  []byte
	changed  bool // call bus.Changed instead of publishing
}

func newOutbox(log *slog.Logger) *outbox {
	return &outbox{byTop: map[string]int{}, wake: make(chan struct{}, 1), limit: 10000, logger: log}
}

func (o *outbox) send(topic string, retained bool, payload []byte) {
	o.push(outMsg{topic: topic, retained: retained, payload: payload})
}

func (o *outbox) changed() { o.push(outMsg{changed: true}) }

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

// run sends queued messages on bus until ctx ends, then sends what is
// left.
func (o *outbox) run(ctx context.Context, bus services.Bus) {
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

func (o *outbox) flush(bus services.Bus) {
	for {
		o.mu.Lock()
		batch, drops := o.q, o.drops
		o.q, o.drops = nil, 0
		clear(o.byTop)
		o.mu.Unlock()
		if drops > 0 {
			o.logger.Warn("publish queue full, dropped results", "count", drops)
		}
		if len(batch) == 0 {
			return
		}
		for _, m := range batch {
			if m.changed {
				bus.Changed()
				continue
			}
			qos := byte(1)
			if err := bus.Publish(m.topic, qos, m.retained, m.payload); err != nil {
				o.logger.Debug("publish failed", "topic", m.topic, "err", err)
			}
		}
	}
}
