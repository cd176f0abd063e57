package session

import (
	"errors"
	"io"
	"math"
	"net"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// TestDialerKeepalive checks that a session's idle connection survives a
// lost keepalive probe: with TCP_USER_TIMEOUT set, Linux ends the
// connection once it has heard nothing for that long and a probe is out,
// so several probes must fit before it.
func TestDialerKeepalive(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	tests := []struct {
		name      string
		keepalive time.Duration
	}{
		{name: "1 s", keepalive: time.Second},
		{name: "default 30 s", keepalive: 30 * time.Second},
		{name: "5 min", keepalive: 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := dialer(tt.keepalive, time.Second).Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			raw, err := c.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var idle, intvl, cnt, user int
			var gerr error
			raw.Control(func(fd uintptr) {
				get := func(opt int) int {
					v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, opt)
					gerr = errors.Join(gerr, err)
					return v
				}
				idle, intvl, cnt, user = get(unix.TCP_KEEPIDLE), get(unix.TCP_KEEPINTVL), get(unix.TCP_KEEPCNT), get(unix.TCP_USER_TIMEOUT)
			})
			if gerr != nil {
				t.Fatal(gerr)
			}
			userS := float64(user) / 1000 // ms; the others are seconds
			// Probes go out at idle, idle+interval, ... while the time
			// without word from the peer is under the user timeout.
			probes := int(math.Ceil((userS - float64(idle)) / float64(intvl)))
			t.Logf("keepalive idle %d s, interval %d s, count %d; user timeout %.1f s: %d probes before it", idle, intvl, cnt, userS, probes)
			if user == 0 {
				t.Fatal("no TCP_USER_TIMEOUT: a connection with data unacknowledged takes minutes to fail")
			}
			if probes < 3 {
				t.Errorf("%d keepalive probes fit before the user timeout: a lost probe or two end a healthy idle connection", probes)
			}
			if idle > 5 {
				t.Errorf("keepalive probes from %d s of silence: a broker that died with its reset lost goes unnoticed that long", idle)
			}
			if float64(idle+intvl*cnt) > userS {
				t.Errorf("idle %d s + %d × %d s outlasts the user timeout %.1f s", idle, cnt, intvl, userS)
			}
		})
	}
}

// TestQuickAckConnResetsUnanswered: a connection closed before the peer
// said anything (an attempt given up on) is reset, so the kernel does not
// deliver its CONNECT later; one the peer answered on closes cleanly.
func TestQuickAckConnResetsUnanswered(t *testing.T) {
	tests := []struct {
		name     string
		answered bool
		wantEOF  bool
	}{
		{name: "no answer yet", answered: false, wantEOF: false},
		{name: "answered", answered: true, wantEOF: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			ended := make(chan error, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					ended <- err
					return
				}
				defer c.Close()
				if tt.answered {
					c.Write([]byte{0x20, 2, 0, 0}) // a CONNACK
				}
				_, err = io.Copy(io.Discard, c)
				ended <- err // nil: a clean end of stream
			}()
			raw, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c := newQuickAckConn(raw)
			if _, err := c.Write([]byte{0x10, 0}); err != nil { // a CONNECT
				t.Fatal(err)
			}
			if tt.answered {
				if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
					t.Fatal(err)
				}
			}
			c.Close()
			err = <-ended
			if gotEOF := err == nil; gotEOF != tt.wantEOF {
				t.Errorf("the peer saw %v; want a clean close %v", err, tt.wantEOF)
			}
		})
	}
}
