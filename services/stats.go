package services

import (
	"maps"
	"slices"
	"sync"
)

// OutcomeOK is the Code of a RequestOutcome that succeeded.
const OutcomeOK = "ok"

// Stats are what a service has done since it was built, for monitoring
// (a Prometheus collector reads them at every scrape). Every service on a
// Runtime has them; see Runtime.Stats.
type Stats struct {
	// Requests counts the results of requests by op and outcome. Read
	// errors a scan reports unasked are not requests: see Channels.
	Requests map[RequestOutcome]uint64
	// Channels are the inputs read by the scans running now, in the order
	// they started. A channel set up anew starts counting from zero.
	Channels []ChannelStats
	// Dropped counts messages the service could not queue for publishing
	// (its outbox was full): results and unretained messages that never
	// reached the broker.
	Dropped uint64
}

// RequestOutcome is a request's op and how it ended: the code of its
// error, or OutcomeOK.
type RequestOutcome struct {
	Op, Code string
}

// ChannelStats is what one scan has seen.
type ChannelStats struct {
	Name string
	ScanStatus
	// Inputs are the inputs the channel's reads have published, by name.
	// While the channel is failing their values are its last good
	// reading, not the present.
	Inputs []string
}

// counters are a runtime's Stats as they accumulate. Results are sent
// from the runtime's goroutine and from the session's handlers (busy, too
// large), so the counts take a lock.
type counters struct {
	mu       sync.Mutex
	requests map[RequestOutcome]uint64
	scans    []*Scan
}

func (c *counters) result(r Result) {
	code := OutcomeOK
	if r.Status != "ok" {
		code = CodeInternal
		if r.Error != nil {
			code = r.Error.Code
		}
	}
	c.mu.Lock()
	if c.requests == nil {
		c.requests = map[RequestOutcome]uint64{}
	}
	c.requests[RequestOutcome{Op: r.Op, Code: code}]++
	c.mu.Unlock()
}

func (c *counters) addScan(s *Scan) {
	c.mu.Lock()
	c.scans = append(c.scans, s)
	c.mu.Unlock()
}

func (c *counters) removeScan(s *Scan) {
	c.mu.Lock()
	c.scans = slices.DeleteFunc(c.scans, func(x *Scan) bool { return x == s })
	c.mu.Unlock()
}

// Stats returns the service's counters. It is safe to call from any
// goroutine and waits for no hardware: at most for a scan publishing a
// reading.
func (rt *Runtime[C]) Stats() Stats {
	rt.counts.mu.Lock()
	st := Stats{Requests: maps.Clone(rt.counts.requests), Dropped: rt.out.dropped.Load()}
	scans := slices.Clone(rt.counts.scans)
	rt.counts.mu.Unlock()
	if st.Requests == nil {
		st.Requests = map[RequestOutcome]uint64{}
	}
	for _, s := range scans {
		st.Channels = append(st.Channels, s.stats())
	}
	return st
}
