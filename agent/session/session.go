// Package session is a rollcall host's one MQTT session, and the short
// sessions of the commands run from a host (sweep, inventory): one paho
// client that reconnects on its own, renews every subscription after a
// reconnect, and hands each subscription's messages to its handler in
// order, on a goroutine of its own.
package session

import (
	"maps"
	"net"
	"syscall"

	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rollcall/rollcall/services"
)

// Config says how to reach the broker: the "mqtt" block of the agent's
// configuration.
type Config struct {
	// Broker is the broker URL (tcp://, ssl://, ws://), or several
	// separated by commas, the nodes of a clustered broker, tried in turn
	// whenever the connection is lost. Empty: the agent starts the
	// embedded broker on EmbeddedBroker and uses it.
	Broker string `json:"broker"`
	// EmbeddedBroker, when set, starts the embedded broker on this address
	// even when Broker is set, so one agent can serve a small cluster.
	EmbeddedBroker string `json:"embedded_broker"`
	// EmbeddedUsers are the users (name: password) the embedded broker
	// lets in; none lets anyone in, which is refused beyond loopback
	// unless EmbeddedInsecure is set. The agent itself connects as
	// Username with Password, which must be one of them.
	EmbeddedUsers map[string]string `json:"embedded_users"`
	// EmbeddedInsecure lets the embedded broker listen beyond loopback
	// without credentials: anyone on the network could then drive the
	// pins.
	EmbeddedInsecure bool          `json:"embedded_insecure"`
	ClientID         string        `json:"client_id"`
	Username         string        `json:"username"`
	Password         string        `json:"password"`
	Keepalive        time.Duration `json:"keepalive"`
	// ConnectTimeout bounds one connection attempt, and how long a command
	// (sweep, inventory, set...) waits for its first connection.
	ConnectTimeout time.Duration `json:"connect_timeout"`
	// MaxAuthFailures makes the agent give up (and exit non-zero) once the
	// broker has refused its credentials that many times in a row:
	// retrying a wrong password never helps. 0 never gives up.
	MaxAuthFailures int `json:"max_auth_failures"`
	TLS             TLS `json:"tls"`
	// TopicPrefix puts every topic of rollcall's under these levels
	// ("site1": site1/<host>/status, site1/rollcall/inventory) on a
	// broker shared with other systems; "" (the default) puts none. The
	// session itself publishes where it is told: its users build their
	// topics with it (see services.Prefix).
	TopicPrefix services.Prefix `json:"topic_prefix"`
}

// TLS is the broker connection's TLS: a CA to trust and an optional client
// certificate.
type TLS struct {
	CA       string `json:"ca"`
	Cert     string `json:"cert"`
	Key      string `json:"key"`
	Insecure bool   `json:"insecure"`
}

// DefaultConnectTimeout bounds a connection attempt when
// Config.ConnectTimeout is not set.
const DefaultConnectTimeout = 3 * time.Second

// DefaultEmbeddedBroker is where the embedded broker listens when no
// broker is configured.
const DefaultEmbeddedBroker = "127.0.0.1:1883"

// Brokers lists the broker URLs of Broker, in order.
func (c Config) Brokers() []string {
	var out []string
	for _, u := range strings.Split(c.URL(), ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// URL is the broker to connect to: the configured one(s), or the embedded
// broker's address.
func (c Config) URL() string {
	if c.Broker != "" {
		return c.Broker
	}
	addr := c.EmbeddedBroker
	if addr == "" {
		addr = DefaultEmbeddedBroker
	}
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	return "tcp://" + addr
}

// Session is the host's one MQTT session. It reconnects on its own, renews
// every subscription after a reconnect and calls OnConnect so the agent can
// republish its retained state. Handlers of one subscription run one at a
// time, in arrival order, on a goroutine of their own, so a handler may
// publish without stalling the client's reader.
type Session struct {
	client paho.Client
	log    *slog.Logger

	mu        sync.Mutex
	subs      map[string]*subscription
	routes    atomic.Pointer[routes] // from subs, for the reader
	done      chan struct{}          // closed by Close: stops every handler goroutine
	closeOnce sync.Once

	onConnect func()
	onLost    func()

	// progress is when the session last showed it is alive (unix ns): a
	// connection made, lost or attempted; see Progress.
	progress atomic.Int64

	brokers       string
	maxAuth       int
	attemptBroker atomic.Value // string: the broker of the attempt under way
	attemptFailed atomic.Bool  // that attempt failed to reach it
	lastFailure   atomic.Pointer[ConnectError]
	failures      atomic.Int64
	authFailures  atomic.Int64
	failure       chan *ConnectError // the latest failure, for Connect
	connects      chan struct{}      // a connection came up, for Connect
	fatal         chan error
	fatalOnce     sync.Once
	warnMu        sync.Mutex
	warned        time.Time
	// conns counts connections made, so that a connection's renewals
	// stop once a newer one has started its own.
	conns atomic.Uint64

	counts struct { // see Stats
		connects, losses, failures         atomic.Uint64
		published, publishErrors, received atomic.Uint64
	}
}

// Stats are a session's counters since it was made, for monitoring.
type Stats struct {
	Connected bool
	// Connects counts the connections made, the first included; Losses
	// the connections lost; Failures the attempts that failed.
	Connects, Losses, Failures uint64
	// Published counts the messages the client took to send (a QoS 0
	// message taken may still be lost with the connection);
	// PublishErrors those it refused or failed to send.
	Published, PublishErrors uint64
	// Received counts the messages delivered to the subscriptions.
	Received uint64
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	c := &s.counts
	return Stats{
		Connected: s.Connected(),
		Connects:  c.connects.Load(), Losses: c.losses.Load(), Failures: c.failures.Load(),
		Published: c.published.Load(), PublishErrors: c.publishErrors.Load(), Received: c.received.Load(),
	}
}

// counted counts a publish by its outcome and returns err.
func (s *Session) counted(err error) error {
	if err != nil {
		s.counts.publishErrors.Add(1)
	} else {
		s.counts.published.Add(1)
	}
	return err
}

type subscription struct {
	queue chan services.Message
	h     services.Handler
}

// Options are what a Session needs to connect.
type Options struct {
	Config   Config
	ClientID string
	// Will, when set, is published retained at QoS 1 by the broker if the
	// session dies without saying goodbye.
	WillTopic, WillPayload string
	// OnConnect runs after every (re)connect, once subscriptions are renewed.
	OnConnect func()
	// OnLost runs when the connection drops.
	OnLost func()
}

// New builds a session; Connect starts it.
func New(cfg Options, log *slog.Logger) (*Session, error) {
	s := &Session{log: log, subs: map[string]*subscription{}, done: make(chan struct{}), onConnect: cfg.OnConnect, onLost: cfg.OnLost,
		brokers: cfg.Config.URL(), maxAuth: cfg.Config.MaxAuthFailures, failure: make(chan *ConnectError, 1), connects: make(chan struct{}, 1), fatal: make(chan error, 1)}
	timeout := cfg.Config.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	o := paho.NewClientOptions()
	for _, u := range cfg.Config.Brokers() {
		o.AddBroker(u)
	}
	o.SetClientID(cfg.ClientID).
		SetCleanSession(true). // we renew subscriptions ourselves on every connect
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		// Retries do not back off beyond a second: a broker restarted
		// without persistence has forgotten every host until its agent
		// reconnects, and with paho's doubling to 10 s a broker down
		// for 8 s would wait 7 s more for its hosts. A refused attempt
		// costs a SYN and a RST; credentials refused stop the agent
		// after Config.MaxAuthFailures.
		SetMaxReconnectInterval(time.Second).
		SetKeepAlive(cfg.Config.Keepalive).
		SetPingTimeout(cfg.Config.Keepalive/2 + time.Second).
		SetConnectTimeout(timeout).
		// 3.1.1 only: paho would otherwise retry a refused connection as
		// MQTT 3.1 and report that version's refusal instead of the cause.
		SetProtocolVersion(4).
		SetConnectionNotificationHandler(s.onNotification).
		SetWriteTimeout(5 * time.Second).
		SetOrderMatters(true).
		SetDefaultPublishHandler(s.route).
		SetOnConnectHandler(func(paho.Client) { s.connected() }).
		SetConnectionAttemptHandler(func(_ *url.URL, tc *tls.Config) *tls.Config {
			s.touch()
			return tc
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.touch()
			s.counts.losses.Add(1)
			s.log.Warn("mqtt connection lost", "err", err)
			if s.onLost != nil {
				s.onLost()
			}
		}).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
			s.log.Debug("mqtt reconnecting", "broker", cfg.Config.Broker)
		})
	d := dialer(cfg.Config.Keepalive, timeout)
	o.SetDialer(d)
	o.SetCustomOpenConnectionFn(openConnection(newRacingDialer(d)))
	if cfg.Config.Username != "" {
		o.SetUsername(cfg.Config.Username)
		o.SetPassword(cfg.Config.Password)
	}
	if cfg.WillTopic != "" {
		o.SetWill(cfg.WillTopic, cfg.WillPayload, 1, true)
	}
	tc, err := cfg.Config.TLS.config()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	s.client = paho.NewClient(o)
	return s, nil
}

// dialer makes the session's connections notice a dead peer in seconds,
// not minutes: TCP keepalive probes on an idle connection, and a user
// timeout on one with data unacknowledged (a broker that vanished, a
// Wi-Fi link that went away), after which the session reconnects.
//
// With a user timeout set, Linux ends an idle connection as soon as it
// has gone that long without hearing from the peer and a keepalive probe
// is unanswered: the probes must start well before it, or a single lost
// probe (or its ACK) ends a healthy connection. Probing after 5 s of
// silence (half the timeout at most), every second, some fifteen probes
// fit in (three at the shortest timeout): at 20% loss each way, 36% of the
// probes go unanswered, and all fifteen practically never are.
//
// The probes are also what finds a broker that died while the agent had
// nothing to say: its kernel answers the agent's connection with a reset,
// which a lossy link can lose, and a probe to the closed port draws
// another. With probes from 10 s of silence, the agents whose reset was
// lost came back 7–11 s after a broker restart at 20% loss.
func dialer(keepalive, connect time.Duration) *net.Dialer {
	timeout := min(max(keepalive, 5*time.Second), 20*time.Second)
	idle := min(timeout/2, 5*time.Second).Truncate(time.Second)
	interval := time.Second
	return &net.Dialer{
		Timeout: connect,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable:   true,
			Idle:     idle,
			Interval: interval,
			Count:    int((timeout - idle) / interval),
		},
		Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = errors.Join(
					unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(timeout.Milliseconds())),
					// An MQTT session is a thin stream: a few small
					// packets in flight. Linux then retransmits a lost
					// one at a steady interval, six times, instead of
					// doubling the wait each time, so a packet lost twice
					// on a lossy link costs 0.4 s, not 0.6 s and rising.
					unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_THIN_LINEAR_TIMEOUTS, 1),
				)
			})
			return errors.Join(err, serr)
		},
	}
}

// Connected reports whether the session is up now.
func (s *Session) Connected() bool { return s.client.IsConnectionOpen() }

func (s *Session) touch() { s.progress.Store(time.Now().UnixNano()) }

// Progress is when the session last made a connection, lost one or tried
// to connect: a session that is down but retrying keeps it recent.
func (s *Session) Progress() time.Time { return time.Unix(0, s.progress.Load()) }

// connected renews every subscription, then calls OnConnect: the agent
// says online only once it hears its requests. A renewal the broker
// refuses or does not answer is retried until it succeeds (an ACL being
// fixed; nats-server refuses QoS 1 subscriptions while it cannot create
// their JetStream consumers). A later connection takes over from an
// earlier one still retrying.
func (s *Session) connected() {
	s.touch()
	gen := s.conns.Add(1)
	s.counts.connects.Add(1)
	s.mu.Lock()
	filters := slices.Sorted(maps.Keys(s.subs))
	s.mu.Unlock()
	// Connect returns on this rather than polling, so a command's first
	// packet goes out as soon as the broker accepts it, and only once the
	// filters to renew are taken: one subscribed after Connect returns is
	// sent by SubscribeAll alone, never twice (twice, its retained
	// messages would arrive twice).
	select {
	case s.connects <- struct{}{}:
	default:
	}
	// Every filter goes in one SUBSCRIBE, answered by one SUBACK: one
	// segment each way. One SUBSCRIBE per subscription, awaited together,
	// was some twenty segments each way, and on a lossy link one of them
	// was nearly always lost and waited out a retransmission timeout
	// before the agent could say online. (The session routes messages
	// itself, so filters need no packet of their own for their handler.)
	// A refusal (an ACL, a clustered broker electing a leader) is retried
	// for the refused filters, backing off, for as long as this
	// connection lasts.
	retry, err := s.renew(filters)
	for wait := renewRetry; err != nil; wait = min(2*wait, renewRetryMax) {
		s.log.Error("mqtt resubscribe; retrying", "filters", retry, "err", err, "in", wait)
		select {
		case <-time.After(wait):
		case <-s.done:
			return
		}
		if s.conns.Load() != gen || !s.client.IsConnectionOpen() {
			return // the next connection renews them
		}
		retry, err = s.renew(retry)
	}
	s.log.Info("mqtt connected", "subscriptions", len(filters))
	if s.onConnect != nil {
		s.onConnect()
	}
}

// How long connected waits before renewing a refused subscription again,
// doubling up to renewRetryMax.
const (
	renewRetry    = time.Second
	renewRetryMax = 10 * time.Second
)

// Publish sends one message without waiting for the broker's ack, so it
// never blocks a handler; an error means the session could not take it.
func (s *Session) Publish(topic string, qos byte, retained bool, payload []byte) error {
	t := s.client.Publish(topic, qos, retained, payload)
	select {
	case <-t.Done():
		return s.counted(t.Error())
	default:
		return s.counted(nil)
	}
}

// PublishWait sends one message and waits up to d for the broker to take it.
func (s *Session) PublishWait(topic string, qos byte, retained bool, payload []byte, d time.Duration) error {
	t := s.client.Publish(topic, qos, retained, payload)
	if !t.WaitTimeout(d) {
		return s.counted(fmt.Errorf("publish %s: timed out", topic))
	}
	return s.counted(t.Error())
}

// Subscribe registers h for filter at QoS 0 (see subscribeQoS) and renews
// it after every reconnect. A filter can be subscribed once.
func (s *Session) Subscribe(filter string, h services.Handler) error {
	return s.SubscribeAll([]string{filter}, h)
}

// SubscribeAll registers one handler for several filters: their messages
// reach h one at a time in the order the broker sent them, whichever filter
// they matched. When connected, it subscribes at once and returns the
// broker's refusal or silence as an error; the filters stay registered
// either way and are renewed, with retries, on the next connect.
func (s *Session) SubscribeAll(filters []string, h services.Handler) error {
	sub := &subscription{queue: make(chan services.Message, subscriptionQueue), h: h}
	s.mu.Lock()
	for _, f := range filters {
		if _, dup := s.subs[f]; dup {
			s.mu.Unlock()
			return fmt.Errorf("subscribe %s: already subscribed", f)
		}
	}
	for _, f := range filters {
		s.subs[f] = sub
	}
	s.rebuildRoutes()
	s.mu.Unlock()
	go func() {
		for {
			select {
			case m := <-sub.queue:
				sub.h(m)
			case <-s.done:
				return
			}
		}
	}()
	if !s.client.IsConnectionOpen() {
		return nil // connected() subscribes them
	}
	return s.subscribe(filters)
}

// Resubscribe sends SUBSCRIBE for an existing filter again, without
// waiting: the broker then sends the filter's retained messages again,
// flagged retained, which tells a retained message from a live one.
func (s *Session) Resubscribe(filter string) error {
	s.mu.Lock()
	_, ok := s.subs[filter]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("resubscribe %s: not subscribed", filter)
	}
	go func() {
		if err := s.subscribe([]string{filter}); err != nil {
			s.log.Debug("mqtt resubscribe", "filter", filter, "err", err)
		}
	}()
	return nil
}

// subscribe sends one SUBSCRIBE for filters and waits for its SUBACK. One
// packet, not one per filter: mochi-mqtt v2.7.9 stops delivering to a
// client's later subscriptions once it holds a filter that starts with
// '+', unless they came in the same packet (seen here; mosquitto is fine).
// A filter the SUBACK refuses (0x80) is an error: paho reports it only in
// the token's result, and a session that took it for granted would never
// hear that filter's messages.
func (s *Session) subscribe(filters []string) error {
	return s.await(s.send(filters), filters)
}

// renew subscribes filters in one SUBSCRIBE and returns those to try
// again: the refused ones, or all of them when the broker did not answer.
func (s *Session) renew(filters []string) ([]string, error) {
	if len(filters) == 0 {
		return nil, nil // a SUBSCRIBE must name a filter
	}
	err := s.await(s.send(filters), filters)
	var r refusal
	if errors.As(err, &r) {
		return r.filters, err
	}
	if err != nil {
		return filters, err
	}
	return nil, nil
}

// send sends one SUBSCRIBE without waiting for its SUBACK.
func (s *Session) send(filters []string) paho.Token {
	m := make(map[string]byte, len(filters))
	for _, f := range filters {
		m[f] = subscribeQoS
	}
	// No paho handler: route delivers every message (see route.go).
	return s.client.SubscribeMultiple(m, nil)
}

// subscribeWait bounds the wait for a SUBACK. It is not what ends a wait
// on a broken connection: paho fails the token as soon as the connection
// is lost, which TCP_USER_TIMEOUT and the MQTT keepalive see to within
// seconds. It is long because on a lossy link a SUBACK can take many
// seconds (retransmissions backing off from 3 s once the handshake itself
// was retransmitted: over 10 s seen at 20% loss), and a subscription given
// up on while its connection lives stays missing until the next reconnect.
const subscribeWait = time.Minute

// await waits for a SUBSCRIBE's SUBACK. A filter the SUBACK refuses is an
// error (see subscribe).
func (s *Session) await(t paho.Token, filters []string) error {
	if !t.WaitTimeout(subscribeWait) {
		return fmt.Errorf("subscribe %v: no answer from the broker in %v", filters, subscribeWait)
	}
	if err := t.Error(); err != nil {
		return fmt.Errorf("subscribe %v: %w", filters, err)
	}
	st, ok := t.(*paho.SubscribeToken)
	if !ok {
		return nil
	}
	var refused []string
	for f, code := range st.Result() {
		if code > 2 {
			refused = append(refused, f)
		}
	}
	if len(refused) > 0 {
		slices.Sort(refused)
		return refusal{refused}
	}
	return nil
}

// refusal is a SUBACK refusing filters.
type refusal struct{ filters []string }

func (r refusal) Error() string { return fmt.Sprintf("subscribe %v: %v", r.filters, errRefused) }
func (r refusal) Unwrap() error { return errRefused }

// subscribeQoS is the QoS of every subscription: 0. The session is clean,
// so a broker redelivers nothing across connections whatever the QoS, and
// over one live connection TCP already delivers; messages published at
// QoS 1 still are acknowledged by the broker. A QoS 1 subscription only
// costs: nats-server backs each with a replicated JetStream consumer,
// which takes a fraction of a second to create, is refused for seconds
// after a node dies, and now and then (2 of 9 here) for as long as a node
// of three is down (nats-server 2.9.10); agents then took tens of seconds
// to get their subscriptions back after a node died, instead of a tenth
// of one. And QoS 1 adds the broker's in-flight window (20 on mosquitto)
// and its per-client queue limit (1,000), which drop requests under a
// flood instead of letting the service answer them busy.
const subscribeQoS = 0

// errRefused is the broker refusing a subscription (SUBACK return code
// 0x80): an ACL, or, for a while, a clustered broker that lost a node.
var errRefused = errors.New("refused by the broker")

// Close ends the session. When goodbye is set, it is published first (the
// broker does not send the will on a clean disconnect).
func (s *Session) Close(goodbyeTopic string, goodbye []byte) {
	if goodbyeTopic != "" && s.client.IsConnectionOpen() {
		if err := s.PublishWait(goodbyeTopic, 1, true, goodbye, 2*time.Second); err != nil {
			s.log.Warn("mqtt goodbye", "err", err)
		}
	}
	s.closeOnce.Do(func() {
		s.client.Disconnect(250)
		close(s.done)
	})
}

func (t TLS) config() (*tls.Config, error) {
	if t.CA == "" && t.Cert == "" && !t.Insecure {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.Insecure} //nolint:gosec // opt-in, documented
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("mqtt tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt tls ca %s: no certificate found", t.CA)
		}
		tc.RootCAs = pool
	}
	if t.Cert != "" {
		c, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("mqtt tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// subscriptionQueue is how many messages of one subscription wait for its
// handler. paho's reader blocks once a queue is full, holding up every
// other subscription behind it: a flood of setups must not keep an estop
// on the control topic from its handler.
const subscriptionQueue = 4096
