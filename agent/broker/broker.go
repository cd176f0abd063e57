// Package broker is the MQTT broker embedded in rollcall (mochi-mqtt), for
// a host or a small cluster with no broker of its own, and for the demo and
// tests.
package broker

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Broker is the embedded MQTT broker, for a host (or a small cluster) with
// no broker of its own.
type Broker struct {
	srv   *mqtt.Server
	addr  net.Addr
	close sync.Once
	err   error
}

// Start listens on addr ("127.0.0.1:1883", ":0" for any free port) and
// serves until Close. With users (name → password), only they may
// connect; without, anyone who can reach the port may, like mosquitto's
// allow_anonymous: the agent's configuration refuses that beyond loopback
// unless told it is insecure.
func Start(addr string, log *slog.Logger, users map[string]string) (*Broker, error) {
	// Listen ourselves so ":0" works and the bound address is known.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	// mochi warns about every client that hangs up and every short
	// keepalive; only its errors are worth an operator's attention.
	blog := slog.New(minLevel{Handler: log.Handler(), min: slog.LevelError}).With("component", "broker")
	srv := mqtt.New(&mqtt.Options{Logger: blog})
	if err := srv.AddHook(&usersHook{users: users}, nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	tcp := listeners.NewNet("rollcall", ln)
	if err := srv.AddListener(tcp); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if err := srv.Serve(); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return &Broker{srv: srv, addr: ln.Addr()}, nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() net.Addr { return b.addr }

// URL is the broker's tcp:// URL.
func (b *Broker) URL() string { return "tcp://" + b.addr.String() }

// AddHook adds a mochi hook to the running broker: a way to watch what it
// does (count the messages it delivers, say) or to extend it, without a
// broker of one's own.
func (b *Broker) AddHook(h mqtt.Hook, config any) error {
	if err := b.srv.AddHook(h, config); err != nil {
		return fmt.Errorf("embedded broker: hook %s: %w", h.ID(), err)
	}
	return nil
}

// Close stops the broker and drops its clients. It may be called twice
// (mochi's own Close panics on a second call).
func (b *Broker) Close() error {
	b.close.Do(func() {
		// mochi-mqtt v2.7.9's Close can hang forever: it lists a
		// listener's clients with Clients.GetByListener, which takes the
		// clients' read lock twice, and a client disconnecting at that
		// moment (Delete, waiting for the write lock) blocks both. So the
		// clients are closed here first, from a copy taken under one read
		// lock; mochi's Close then finds every listener already ended.
		b.srv.Listeners.CloseAll(func(listener string) {
			for _, cl := range b.srv.Clients.GetAll() {
				if cl.Net.Listener == listener && !cl.Closed() {
					_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
				}
			}
		})
		b.err = b.srv.Close()
	})
	return b.err
}

// minLevel passes on only records at min or above.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}

// usersHook lets in the clients whose user name and password are in
// users, or everyone when users is empty, and lets a client in publish and
// subscribe to any topic. It is mochi's auth ledger reduced to what the
// configuration can say (embedded_users), with passwords compared in
// constant time, and without the YAML and JSON ledger decoding that the
// binary would otherwise carry.
type usersHook struct {
	mqtt.HookBase
	users map[string]string
}

func (h *usersHook) ID() string { return "rollcall-users" }

func (h *usersHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

func (h *usersHook) OnConnectAuthenticate(_ *mqtt.Client, pk packets.Packet) bool {
	if len(h.users) == 0 {
		return true
	}
	pw, ok := h.users[string(pk.Connect.Username)]
	// Compared even for an unknown user, so that the time taken does not
	// tell which user names exist.
	same := subtle.ConstantTimeCompare([]byte(pw), pk.Connect.Password) == 1
	return ok && same
}

func (h *usersHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
