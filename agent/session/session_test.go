package session_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/rollcall/rollcall/agent/broker"
	"github.com/rollcall/rollcall/agent/session"
	"github.com/rollcall/rollcall/services"
)

func TestRetainedFlagAndCloseTwice(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	b, err := broker.Start("127.0.0.1:0", log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	pub, err := session.New(session.Options{Config: session.Config{Broker: b.URL(), Keepalive: 5 * time.Second}, ClientID: "pub"}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Connect(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishWait("pi1/status", 1, true, []byte("online"), 5*time.Second); err != nil {
		t.Fatal(err)
	}

	sub, err := session.New(session.Options{Config: session.Config{Broker: b.URL(), Keepalive: 5 * time.Second}, ClientID: "sub"}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Connect(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	got := make(chan services.Message, 8)
	var seen []string
	defer func() {
		if t.Failed() {
			t.Logf("received %q", seen)
		}
	}()
	if err := sub.Subscribe("pi1/status", func(m services.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}
	// next returns the next message with payload. The broker may still be
	// routing the first publish live when sub subscribes (its PUBACK can
	// overtake the routing), so a live copy of an earlier payload after
	// its retained one is legitimate and skipped.
	next := func(payload string) services.Message {
		t.Helper()
		for {
			select {
			case m := <-got:
				seen = append(seen, fmt.Sprintf("%s retained=%v", m.Payload, m.Retained))
				if string(m.Payload) == payload {
					return m
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no %q", payload)
				return services.Message{}
			}
		}
	}
	if m := next("online"); !m.Retained {
		t.Errorf("stored message %+v, want retained online", m)
	}
	if err := pub.PublishWait("pi1/status", 1, true, []byte("offline"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if m := next("offline"); m.Retained {
		t.Errorf("a live publish arrived flagged retained: %+v", m)
	}
	// Asking again gives the stored copy, flagged retained, and nothing
	// else: a live offline now would be a copy delivered twice.
	if err := sub.Resubscribe("pi1/status"); err != nil {
		t.Fatal(err)
	}
	if m := next("offline"); !m.Retained {
		t.Errorf("after Resubscribe %+v, want the retained offline", m)
	}
	sub.Close("", nil)
	sub.Close("", nil) // a second Close is harmless
	pub.Close("", nil)
}

// refuser is a broker hook that refuses subscriptions to one filter, the
// first refusals times (forever when negative), as an ACL or a clustered
// broker that lost a node would.
type refuser struct {
	mqtt.HookBase
	filter string

	mu       sync.Mutex
	refusals int
	asked    int
	qos      map[string]byte // the QoS each filter was last asked at
}

func (h *refuser) ID() string { return "refuser" }

func (h *refuser) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck || b == mqtt.OnSubscribe
}

func (h *refuser) OnSubscribe(_ *mqtt.Client, pk packets.Packet) packets.Packet {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.qos == nil {
		h.qos = map[string]byte{}
	}
	for _, f := range pk.Filters {
		h.qos[f.Filter] = f.Qos
	}
	return pk
}

func (h *refuser) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (h *refuser) OnACLCheck(_ *mqtt.Client, topic string, write bool) bool {
	if write || topic != h.filter {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked++
	if h.refusals == 0 {
		return true
	}
	h.refusals--
	return false
}

// refusingBroker starts a mochi broker on loopback that refuses filter
// the first refusals times.
func refusingBroker(t *testing.T, filter string, refusals int) (string, *refuser) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &refuser{filter: filter, refusals: refusals}
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler), InlineClient: true})
	if err := srv.AddHook(h, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewNet("test", ln)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "tcp://" + ln.Addr().String(), h
}

func TestRefusedSubscription(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name     string
		refusals int
		// connectFirst subscribes once connected; otherwise before, so
		// that the connection's renewal subscribes.
		connectFirst bool
		wantErr      bool
		wantAsked    int
	}{
		{name: "refused while connected is an error", refusals: -1, connectFirst: true, wantErr: true, wantAsked: 1},
		{name: "granted while connected", refusals: 0, connectFirst: true, wantAsked: 1},
		{name: "refused renewal retried before OnConnect", refusals: 1, wantAsked: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, hook := refusingBroker(t, "svc/req", tt.refusals)
			online := make(chan struct{})
			var once sync.Once
			s, err := session.New(session.Options{
				Config:    session.Config{Broker: url, Keepalive: 5 * time.Second},
				ClientID:  "refused",
				OnConnect: func() { once.Do(func() { close(online) }) },
			}, log)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close("", nil)
			got := make(chan services.Message, 1)
			subscribe := func() error {
				return s.SubscribeAll([]string{"svc/other", "svc/req"}, func(m services.Message) { got <- m })
			}
			if !tt.connectFirst {
				if err := subscribe(); err != nil {
					t.Fatalf("subscribe before connecting: %v", err)
				}
			}
			if err := s.Connect(t.Context(), 5*time.Second); err != nil {
				t.Fatal(err)
			}
			select {
			case <-online:
			case <-time.After(10 * time.Second):
				t.Fatal("OnConnect never ran")
			}
			if tt.connectFirst {
				err := subscribe()
				if (err != nil) != tt.wantErr || err != nil && !strings.Contains(err.Error(), "svc/req") {
					t.Fatalf("SubscribeAll = %v, want an error naming svc/req: %v", err, tt.wantErr)
				}
			}
			hook.mu.Lock()
			asked, qos := hook.asked, hook.qos["svc/req"]
			hook.mu.Unlock()
			if asked != tt.wantAsked {
				t.Errorf("svc/req asked for %d times before OnConnect, want %d", asked, tt.wantAsked)
			}
			// QoS 0: on a clean session QoS 1 adds nothing, and
			// nats-server would back it with a JetStream consumer.
			if qos != 0 {
				t.Errorf("svc/req subscribed at QoS %d, want 0", qos)
			}
			if tt.wantErr {
				return
			}
			// Granted in the end: its messages arrive.
			if err := s.PublishWait("svc/req", 1, false, []byte("go"), 5*time.Second); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-got:
				if string(m.Payload) != "go" {
					t.Errorf("got %+v", m)
				}
			case <-time.After(5 * time.Second):
				t.Error("no message on svc/req")
			}
		})
	}
}

func TestEmbeddedBrokerUsers(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	b, err := broker.Start("127.0.0.1:0", log, map[string]string{"pi": "0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tc := range []struct {
		name, user, pass string
		ok               bool
	}{
		{"anonymous", "", "", false},
		{"wrong password", "pi", "guess", false},
		{"unknown user", "mallory", "0123456789", false},
		{"right", "pi", "0123456789", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := session.New(session.Options{Config: session.Config{Broker: b.URL(), Keepalive: 5 * time.Second, Username: tc.user, Password: tc.pass}, ClientID: "u-" + tc.name}, log)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close("", nil)
			err = s.Connect(context.Background(), 2*time.Second)
			var ce *session.ConnectError
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.ok && (!errors.As(err, &ce) || !ce.Auth):
				t.Fatalf("err %v, want a refusal of the credentials", err)
			}
		})
	}
}

// TestConnectReturnsOnConnect checks that Connect returns once the broker
// accepts, not at the next tick of a poll: a command's first packet waits
// on it.
func TestConnectReturnsOnConnect(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	b, err := broker.Start("127.0.0.1:0", log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 11
	var took []time.Duration
	for i := range n {
		s, err := session.New(session.Options{Config: session.Config{Broker: b.URL(), Keepalive: 5 * time.Second}, ClientID: fmt.Sprintf("c%d", i)}, log)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := s.Connect(context.Background(), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
		if !s.Connected() {
			t.Fatal("Connect returned before the session was up")
		}
		s.Close("", nil)
	}
	slices.Sort(took)
	// Polling every 5 ms could never return before the first tick.
	if med := took[n/2]; med >= 4*time.Millisecond {
		t.Errorf("Connect took %v (median of %d) against a broker in the same process: %v", med, n, took)
	}
}

// TestReconnectSoonAfterBrokerReturns stops the broker for longer than a
// doubling backoff's first steps (it would try at 0, 1, 3 and 7 s) and
// checks that the session is back soon after the broker is: a broker
// restarted without persistence has forgotten every retained status and
// description until the agents publish them again.
func TestReconnectSoonAfterBrokerReturns(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	b, err := broker.Start("127.0.0.1:0", log, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr().String()
	connects := make(chan time.Time, 10)
	s, err := session.New(session.Options{
		Config:    session.Config{Broker: b.URL(), Keepalive: 5 * time.Second},
		ClientID:  "reconnect",
		OnConnect: func() { connects <- time.Now() },
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close("", nil)
	if err := s.Connect(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	<-connects
	b.Close()
	const outage = 3500 * time.Millisecond
	time.Sleep(outage) // the outage itself: nothing to wait for
	if b, err = broker.Start(addr, log, nil); err != nil {
		t.Fatalf("restart the broker on %s: %v", addr, err)
	}
	defer b.Close()
	back := time.Now()
	select {
	case at := <-connects:
		late := at.Sub(back)
		t.Logf("reconnected %v after the broker returned from a %v outage", late.Round(time.Millisecond), outage)
		if late > maxReconnectLate {
			t.Errorf("reconnected %v after the broker returned, want within %v", late, maxReconnectLate)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no reconnection 15 s after the broker returned")
	}
}

// maxReconnectLate bounds the reconnection after a broker's return: the
// retry interval (1 s) and the connection itself.
const maxReconnectLate = 2 * time.Second
