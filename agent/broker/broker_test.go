package broker

import (
	"bytes"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	pahopackets "github.com/eclipse/paho.mqtt.golang/packets"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// sentCounter counts the PUBLISH packets the broker writes to clients.
type sentCounter struct {
	mqtt.HookBase
	n atomic.Int64
}

func (h *sentCounter) ID() string { return "sent-counter" }

func (h *sentCounter) Provides(b byte) bool { return b == mqtt.OnPacketSent }

func (h *sentCounter) OnPacketSent(_ *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type == packets.Publish {
		h.n.Add(1)
	}
}

// A hook added to the running broker sees each delivery: one per
// subscriber of the topic published to.
func TestAddHookSeesDeliveries(t *testing.T) {
	b, err := Start("127.0.0.1:0", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	h := new(sentCounter)
	if err := b.AddHook(h, nil); err != nil {
		t.Fatal(err)
	}

	got := make(chan []byte, 4)
	var clients []paho.Client
	for _, id := range []string{"sub1", "sub2"} {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID(id))
		if tk := c.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
			t.Fatalf("%s connect: %v", id, tk.Error())
		}
		defer c.Disconnect(0)
		tk := c.Subscribe("t/x", 0, func(_ paho.Client, m paho.Message) { got <- m.Payload() })
		if !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
			t.Fatalf("%s subscribe: %v", id, tk.Error())
		}
		clients = append(clients, c)
	}
	if tk := clients[0].Publish("t/x", 0, false, "hello"); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("publish: %v", tk.Error())
	}
	for range 2 {
		select {
		case p := <-got:
			if !bytes.Equal(p, []byte("hello")) {
				t.Errorf("delivered %q", p)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("message not delivered to both subscribers")
		}
	}
	// The hook runs once the bytes are written, which may be after the
	// subscriber has read them.
	deadline := time.Now().Add(5 * time.Second)
	for h.n.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := h.n.Load(); n != 2 {
		t.Errorf("hook counted %d deliveries, want 2", n)
	}
}

// With embedded users, only a listed user with the right password gets
// in, refused as not authorized otherwise, so a client can say why;
// without, anyone does.
func TestUsers(t *testing.T) {
	users := map[string]string{"pi": "0123456789", "ops": "abcdefghij"}
	for _, tc := range []struct {
		name     string
		users    map[string]string
		user, pw string
		ok       bool
	}{
		{name: "listed user", users: users, user: "pi", pw: "0123456789", ok: true},
		{name: "another listed user", users: users, user: "ops", pw: "abcdefghij", ok: true},
		{name: "wrong password", users: users, user: "pi", pw: "abcdefghij"},
		{name: "password a prefix of the right one", users: users, user: "pi", pw: "01234"},
		{name: "unknown user", users: users, user: "mallory", pw: "0123456789"},
		{name: "no credentials", users: users},
		{name: "no users: anyone", user: "anyone", pw: "anything", ok: true},
		{name: "no users, no credentials", ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Start("127.0.0.1:0", slog.New(slog.DiscardHandler), tc.users)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("c").
				SetUsername(tc.user).SetPassword(tc.pw).SetAutoReconnect(false).SetProtocolVersion(4))
			tk := c.Connect()
			if !tk.WaitTimeout(5 * time.Second) {
				t.Fatal("connect: no answer")
			}
			defer c.Disconnect(0)
			switch err := tk.Error(); {
			case tc.ok && err != nil:
				t.Errorf("refused: %v", err)
			case !tc.ok && err == nil:
				t.Error("let in")
			case !tc.ok && !errors.Is(err, pahopackets.ErrorRefusedNotAuthorised):
				// mochi answers an MQTT 3.1.1 client's bad credentials
				// with 5, not authorized; the session tells the user it
				// is the user name or password.
				t.Errorf("refused with %v, want not authorized", err)
			}
		})
	}
}
