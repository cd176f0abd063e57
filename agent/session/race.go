package session

import (
	"context"
	"net"
	"time"
)

// A connection whose SYN or SYN-ACK was lost is a slow connection for the
// rest of its life, not only for its first second: Linux retransmits the
// SYN after 1 s and then, having no round-trip sample it trusts, starts
// the connection with a 3 s retransmission timeout that doubles on every
// further loss. On a lossy Wi-Fi link (20 % of frames dropped) an agent
// coming back after a broker restart then waited 10–20 s for its CONNECT,
// SUBSCRIBEs and first PUBLISHes to get through. A second SYN sent a
// little later, on a socket of its own, usually completes cleanly in one
// round trip and keeps the ordinary 200 ms minimum timeout: the first
// connection to complete wins and the others are closed.
const (
	raceStagger  = 250 * time.Millisecond // between attempts still pending
	raceAttempts = 3
)

// racingDialer dials like d, starting another attempt to the same address
// every raceStagger while none has completed, up to raceAttempts.
type racingDialer struct {
	d       *net.Dialer
	stagger time.Duration
	max     int
}

func newRacingDialer(d *net.Dialer) *racingDialer {
	return &racingDialer{d: d, stagger: raceStagger, max: raceAttempts}
}

// Dial is for golang.org/x/net/proxy, which forwards through it.
func (r *racingDialer) Dial(network, addr string) (net.Conn, error) {
	return r.DialContext(context.Background(), network, addr)
}

// DialContext returns the first attempt to connect; an attempt that fails
// at once (refused, no route) ends the dial when no other is pending.
func (r *racingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if r.d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.d.Timeout)
		defer cancel()
	}
	return race(ctx, r.stagger, r.max, func(ctx context.Context) (net.Conn, error) {
		return r.d.DialContext(ctx, network, addr)
	})
}

// race runs dial once, then again every stagger while no attempt has
// succeeded and fewer than max were started; the first connection is
// returned and any later one closed. Once every attempt started has
// failed it returns the last one's error, as net.Dialer words it (the
// attempts share ctx, so its end ends them all).
func race(ctx context.Context, stagger time.Duration, max int, dial func(context.Context) (net.Conn, error)) (net.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		c   net.Conn
		err error
	}
	results := make(chan result, max)
	start := func() {
		go func() {
			c, err := dial(ctx)
			results <- result{c, err}
		}()
	}
	start()
	started, pending := 1, 1
	tick := time.NewTicker(stagger)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if started < max && ctx.Err() == nil {
				start()
				started++
				pending++
			}
		case r := <-results:
			pending--
			if r.err == nil {
				// The others are closed as they finish.
				go func(n int) {
					for range n {
						if l := <-results; l.c != nil {
							l.c.Close()
						}
					}
				}(pending)
				return r.c, nil
			}
			if pending == 0 {
				return nil, r.err
			}
		}
	}
}
