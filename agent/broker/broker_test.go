package broker

import (
	"bytes"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
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
