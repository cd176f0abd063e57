package discovery

import (
	"net/netip"
	"time"
)

// bucket is a token bucket: it holds up to burst tokens and gains rate
// tokens a second; each datagram spends one.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) allow(now time.Time, rate float64, burst int) bool {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(float64(burst), b.tokens+dt*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// maxSources bounds the per-source buckets a monitor keeps.
const maxSources = 1024

// limiter rate-limits datagrams per source address and overall. The
// overall bucket keeps many sources, or one spoofing many addresses, from
// turning into a flood of broker publishes.
type limiter struct {
	rate, globalRate   float64
	burst, globalBurst int
	global             bucket
	sources            map[netip.Addr]*bucket
}

func newLimiter(rate float64, burst int, globalRate float64, globalBurst int) *limiter {
	return &limiter{
		rate: rate, burst: burst,
		globalRate: globalRate, globalBurst: globalBurst,
		sources: make(map[netip.Addr]*bucket),
	}
}

func (l *limiter) allow(src netip.Addr, now time.Time) bool {
	b, ok := l.sources[src]
	if !ok {
		if len(l.sources) >= maxSources {
			l.prune(now)
		}
		b = &bucket{}
		l.sources[src] = b
	}
	// The source pays first, so a source over its own limit cannot drain
	// the tokens other sources share.
	return b.allow(now, l.rate, l.burst) && l.global.allow(now, l.globalRate, l.globalBurst)
}

// prune forgets sources whose bucket has refilled, since a fresh bucket
// behaves the same. If every source is busy, it forgets them all: that
// only happens under a flood, when the global bucket is what matters.
func (l *limiter) prune(now time.Time) {
	for a, b := range l.sources {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= float64(l.burst) {
			delete(l.sources, a)
		}
	}
	if len(l.sources) >= maxSources {
		clear(l.sources)
	}
}
