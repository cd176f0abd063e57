package session

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// nagleServer answers each byte it reads with two small writes, Nagle's
// algorithm on: the second waits until the first is acknowledged, as a
// stock mosquitto's PUBACK waits behind the message it sent before.
func nagleServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.(*net.TCPConn).SetNoDelay(false)
				b := make([]byte, 1)
				reply := make([]byte, 100)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
					if _, err := c.Write(reply); err != nil {
						return
					}
					if _, err := c.Write(reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// roundTrips times n request/answer exchanges over c, and returns their
// median.
func roundTrips(t *testing.T, c net.Conn, n int) time.Duration {
	t.Helper()
	buf := make([]byte, 200)
	var d []time.Duration
	for range n {
		start := time.Now()
		if _, err := c.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	return d[len(d)/2]
}

func TestQuickAckConn(t *testing.T) {
	addr := nagleServer(t)
	dial := func(t *testing.T) net.Conn {
		t.Helper()
		c, err := dialer(time.Second, time.Second).Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	const n = 20
	plain := roundTrips(t, dial(t), n)
	if plain < 20*time.Millisecond {
		t.Skipf("this kernel does not delay acknowledgements here (median round trip %v): nothing to fix", plain)
	}
	quick := roundTrips(t, newQuickAckConn(dial(t)), n)
	t.Logf("median round trip against a Nagle server: %v plain, %v acknowledging at once", plain, quick)
	// The plain connection waits for the delayed ACK timer (~40 ms) on
	// every exchange; acknowledging at once leaves the loopback's round
	// trip.
	if quick > plain/4 {
		t.Errorf("median round trip %v with quick acknowledgements, %v without: the stall is still there", quick, plain)
	}
}

func TestQuickAckConnOnlyTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if c := newQuickAckConn(a); c != a {
		t.Errorf("a connection that is not TCP was wrapped: %T", c)
	}
}
