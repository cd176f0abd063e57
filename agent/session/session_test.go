package session_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

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
	got := make(chan services.Message, 4)
	if err := sub.Subscribe("pi1/status", func(m services.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}
	next := func() services.Message {
		t.Helper()
		select {
		case m := <-got:
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no message")
			return services.Message{}
		}
	}
	if m := next(); !m.Retained || string(m.Payload) != "online" {
		t.Errorf("stored message %+v, want retained online", m)
	}
	if err := pub.PublishWait("pi1/status", 1, true, []byte("offline"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if m := next(); m.Retained {
		t.Errorf("a live publish arrived flagged retained: %+v", m)
	}
	// Asking again gives the stored copy, flagged retained.
	if err := sub.Resubscribe("pi1/status"); err != nil {
		t.Fatal(err)
	}
	if m := next(); !m.Retained || string(m.Payload) != "offline" {
		t.Errorf("after Resubscribe %+v, want the retained offline", m)
	}
	sub.Close("", nil)
	sub.Close("", nil) // a second Close is harmless
	pub.Close("", nil)
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
