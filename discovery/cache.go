package discovery

import "time"

// expiring is a bounded map whose entries expire. Monitors keep nonces and
// answered probes in it, both under the control of whoever can send a
// datagram, so it must never grow without bound. Entries leave in the
// order they were added: the oldest goes first when it expires or when
// room is needed.
type expiring[K comparable, V any] struct {
	max   int
	ttl   time.Duration
	m     map[K]*expEntry[V]
	order []expKey[K] // insertion order; may hold keys already removed
}

type expEntry[V any] struct {
	val     V
	expires time.Time
}

type expKey[K comparable] struct {
	key     K
	expires time.Time
}

func newExpiring[K comparable, V any](max int, ttl time.Duration) *expiring[K, V] {
	return &expiring[K, V]{max: max, ttl: ttl, m: make(map[K]*expEntry[V])}
}

// get returns the live entry for k, or nil.
func (c *expiring[K, V]) get(k K, now time.Time) *V {
	e, ok := c.m[k]
	if !ok || !now.Before(e.expires) {
		return nil
	}
	return &e.val
}

// put adds k (or renews it) with value v for the cache's ttl.
func (c *expiring[K, V]) put(k K, v V, now time.Time) {
	c.expire(now)
	// order holds a stale key per renewal, so bound it as well as m.
	for (len(c.m) >= c.max || len(c.order) >= 2*c.max) && len(c.order) > 0 {
		c.pop()
	}
	exp := now.Add(c.ttl)
	c.m[k] = &expEntry[V]{val: v, expires: exp}
	c.order = append(c.order, expKey[K]{k, exp})
}

// expire drops entries whose time is up.
func (c *expiring[K, V]) expire(now time.Time) {
	for len(c.order) > 0 && !now.Before(c.order[0].expires) {
		c.pop()
	}
}

// pop removes the oldest key, unless it was renewed since.
func (c *expiring[K, V]) pop() {
	o := c.order[0]
	c.order[0] = expKey[K]{}
	c.order = c.order[1:]
	if e, ok := c.m[o.key]; ok && e.expires.Equal(o.expires) {
		delete(c.m, o.key)
	}
	if len(c.order) == 0 {
		c.order = nil // let the backing array go
	}
}

func (c *expiring[K, V]) len() int { return len(c.m) }
