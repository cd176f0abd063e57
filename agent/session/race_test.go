package session

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeConn records whether it was closed.
type fakeConn struct {
	net.Conn
	id     int
	closed atomic.Bool
}

func (c *fakeConn) Close() error { c.closed.Store(true); return nil }

// TestRace: the first attempt to complete wins and every other connection
// is closed; attempts start stagger apart, at most max; a refusal ends the
// dial at once when nothing else is pending; a dial that never completes
// ends with the context.
func TestRace(t *testing.T) {
	const stagger = 100 * time.Millisecond
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		// attempt says how attempt i (from 0) ends: after delay, with a
		// connection or err; a negative delay never ends before ctx.
		attempt  func(i int) (delay time.Duration, err error)
		timeout  time.Duration
		wantID   int // the winning attempt, -1 for an error
		wantErr  error
		started  int
		maxTaken time.Duration
	}{
		{
			name:    "first attempt completes at once",
			attempt: func(int) (time.Duration, error) { return 0, nil },
			timeout: 5 * time.Second, wantID: 0, started: 1, maxTaken: 5 * stagger,
		},
		{
			name: "lost SYN: the second attempt wins",
			attempt: func(i int) (time.Duration, error) {
				if i == 0 {
					return 10 * stagger, nil // a retransmitted SYN
				}
				return time.Millisecond, nil
			},
			timeout: 5 * time.Second, wantID: 1, started: 2, maxTaken: 5 * stagger,
		},
		{
			name: "two lost: the third wins, no fourth is started",
			attempt: func(i int) (time.Duration, error) {
				if i < 2 {
					return -1, nil
				}
				return time.Millisecond, nil
			},
			timeout: 5 * time.Second, wantID: 2, started: 3, maxTaken: 6 * stagger,
		},
		{
			name:    "refused at once: no second attempt",
			attempt: func(int) (time.Duration, error) { return 0, refused },
			timeout: 5 * time.Second, wantID: -1, wantErr: syscall.ECONNREFUSED, started: 1, maxTaken: 5 * stagger,
		},
		{
			name: "refused while another is pending: the pending one still wins",
			attempt: func(i int) (time.Duration, error) {
				if i == 0 {
					return 3 * stagger, nil
				}
				return 0, refused
			},
			timeout: 5 * time.Second, wantID: 0, started: 3, maxTaken: 6 * stagger,
		},
		{
			name:    "nothing answers: the context's end, in the dialer's words",
			attempt: func(int) (time.Duration, error) { return -1, nil },
			timeout: 5 * stagger, wantID: -1, wantErr: context.DeadlineExceeded, started: 3, maxTaken: 10 * stagger,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu    sync.Mutex
				conns []*fakeConn
				n     atomic.Int32
			)
			dial := func(ctx context.Context) (net.Conn, error) {
				i := int(n.Add(1)) - 1
				delay, err := tc.attempt(i)
				var after <-chan time.Time
				if delay >= 0 {
					after = time.After(delay)
				}
				select {
				case <-after:
				case <-ctx.Done():
					return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
				}
				if err != nil {
					return nil, err
				}
				c := &fakeConn{id: i}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				return c, nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			start := time.Now()
			c, err := race(ctx, stagger, 3, dial)
			took := time.Since(start)
			switch {
			case tc.wantID < 0 && err == nil:
				t.Fatalf("connected to attempt %d, want an error", c.(*fakeConn).id)
			case tc.wantID < 0 && !errors.Is(err, tc.wantErr):
				t.Errorf("error %v, want %v", err, tc.wantErr)
			case tc.wantID >= 0 && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantID >= 0 && c.(*fakeConn).id != tc.wantID:
				t.Errorf("won by attempt %d, want %d", c.(*fakeConn).id, tc.wantID)
			}
			if took > tc.maxTaken {
				t.Errorf("took %v, want at most %v", took, tc.maxTaken)
			}
			// Losers finish (ctx is cancelled) and are closed; the winner
			// is left open.
			deadline := time.Now().Add(2 * time.Second)
			for {
				mu.Lock()
				open := 0
				for _, fc := range conns {
					if !fc.closed.Load() && (c == nil || fc != c.(*fakeConn)) {
						open++
					}
				}
				mu.Unlock()
				if open == 0 || time.Now().After(deadline) {
					if open != 0 {
						t.Errorf("%d losing connections left open", open)
					}
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if c != nil && c.(*fakeConn).closed.Load() {
				t.Error("the winning connection was closed")
			}
			if got := int(n.Load()); got != tc.started {
				t.Errorf("%d attempts started, want %d", got, tc.started)
			}
		})
	}
}
