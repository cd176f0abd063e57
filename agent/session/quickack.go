package session

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
	"golang.org/x/sys/unix"
)

// Brokers answer with small packets (a SUBACK, a PUBACK, one short message
// after a burst), and stock mosquitto writes them under Nagle's algorithm:
// a small segment waits until everything sent before it is acknowledged.
// Linux delays its acknowledgements by up to 40 ms once a connection looks
// interactive, so each such answer stalls for that long: a sweep's read of
// the retained topics ends on one (its sync marker), and the PUBACK of its
// result is another. A client cannot turn the broker's Nagle off, but it
// can acknowledge at once: TCP_QUICKACK. The kernel does not keep it (it
// falls back to delaying), so it is set again after every read. Reads are
// buffered, which makes that one system call per burst rather than per
// packet field (paho reads a packet's header a byte at a time).

// quickAckConn is a TCP connection that acknowledges what it reads at once.
//
// Closed before the broker has said anything (paho gives up on an attempt
// whose CONNACK is late), it is reset rather than closed: a graceful close
// lets the kernel go on retransmitting the CONNECT, which on a lossy link
// can reach the broker after the next attempt has connected; the broker
// then takes the session over for that dead socket, drops the live one,
// and publishes the host's will (offline).
type quickAckConn struct {
	*net.TCPConn
	r     *bufio.Reader
	heard *ackingReader
}

// quickAckBuffer holds a burst of messages: a retained read of a hundred
// hosts' summaries comes in a few reads.
const quickAckBuffer = 32 << 10

func newQuickAckConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c // a proxy's connection: leave it as it is
	}
	a := &ackingReader{c: tc}
	return &quickAckConn{TCPConn: tc, r: bufio.NewReaderSize(a, quickAckBuffer), heard: a}
}

func (c *quickAckConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Close resets a connection the broker never answered on, and closes any
// other.
func (c *quickAckConn) Close() error {
	if !c.heard.any.Load() {
		_ = c.TCPConn.SetLinger(0)
	}
	return c.TCPConn.Close()
}

// ackingReader reads from the socket and acknowledges at once what it read.
type ackingReader struct {
	c   *net.TCPConn
	any atomic.Bool // something was read
}

func (a *ackingReader) Read(p []byte) (int, error) {
	n, err := a.c.Read(p)
	if n > 0 {
		a.any.Store(true)
		if raw, rerr := a.c.SyscallConn(); rerr == nil {
			_ = raw.Control(func(fd uintptr) {
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
			})
		}
	}
	return n, err
}

// openConnection opens the broker connection as paho would, over d
// (racing attempts, see racingDialer), with TCP connections (plain or
// under TLS) acknowledging at once.
func openConnection(d proxy.Dialer) paho.OpenConnectionFunc {
	return func(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
		switch uri.Scheme {
		case "mqtt", "tcp":
			c, err := proxy.FromEnvironmentUsing(d).Dial("tcp", uri.Host)
			if err != nil {
				return nil, err
			}
			return newQuickAckConn(c), nil
		case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
			c, err := proxy.FromEnvironmentUsing(d).Dial("tcp", uri.Host)
			if err != nil {
				return nil, err
			}
			tc := o.TLSConfig
			if tc == nil {
				tc = &tls.Config{}
			}
			if tc.ServerName == "" { // as tls.DialWithDialer does
				tc = tc.Clone()
				tc.ServerName = uri.Hostname()
			}
			ctx, cancel := context.WithTimeout(context.Background(), o.ConnectTimeout)
			defer cancel()
			conn := tls.Client(newQuickAckConn(c), tc)
			if err := conn.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, err
			}
			return conn, nil
		case "ws", "wss":
			// Websockets go through their own dialer: left as paho has them.
			u := *uri
			u.User = nil
			var tc *tls.Config
			if uri.Scheme == "wss" {
				tc = o.TLSConfig
			}
			return paho.NewWebsocket(u.String(), tc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
		case "unix":
			path := uri.Host
			if path == "" {
				path = uri.Path
			}
			return d.Dial("unix", path)
		}
		return nil, fmt.Errorf("broker %s: unknown scheme %q", uri.Redacted(), uri.Scheme)
	}
}
