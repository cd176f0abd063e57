package session

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/rollcall/rollcall/services"
)

// slowBroker is an MQTT server that answers each SUBSCRIBE after delay,
// as a distant or lossy broker would, each on its own.
func slowBroker(t *testing.T, delay time.Duration) string {
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
			go serveSlow(c, delay)
		}
	}()
	return "tcp://" + l.Addr().String()
}

func serveSlow(c net.Conn, delay time.Duration) {
	defer c.Close()
	var mu sync.Mutex // one writer at a time
	write := func(p packets.ControlPacket) {
		mu.Lock()
		defer mu.Unlock()
		p.Write(c)
	}
	if _, err := packets.ReadPacket(c); err != nil { // CONNECT
		return
	}
	write(packets.NewControlPacket(packets.Connack))
	for {
		p, err := packets.ReadPacket(c)
		if err != nil {
			return
		}
		switch p := p.(type) {
		case *packets.SubscribePacket:
			ack := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
			ack.MessageID, ack.ReturnCodes = p.MessageID, make([]byte, len(p.Topics))
			time.AfterFunc(delay, func() { write(ack) }) // the simulated latency
		case *packets.PublishPacket:
			if p.Qos == 1 {
				ack := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
				ack.MessageID = p.MessageID
				write(ack)
			}
		case *packets.PingreqPacket:
			write(packets.NewControlPacket(packets.Pingresp))
		case *packets.DisconnectPacket:
			return
		}
	}
}

// TestResubscribeTogether: on connecting, an agent's subscriptions (one
// per service and topic kind) are sent together, so it says online after
// one round trip to the broker, not one per subscription.
func TestResubscribeTogether(t *testing.T) {
	const (
		delay = 100 * time.Millisecond
		subs  = 12
	)
	connected := make(chan time.Time, 1)
	s, err := New(Options{
		Config:    Config{Broker: slowBroker(t, delay), Keepalive: 30 * time.Second},
		ClientID:  "resubscribe",
		OnConnect: func() { connected <- time.Now() },
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close("", nil)
	for i := range subs {
		if err := s.Subscribe(fmt.Sprintf("host/service%d/#", i), func(services.Message) {}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := s.Connect(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-connected:
		took := at.Sub(start)
		t.Logf("%d subscriptions answered after %v each: online after %v", subs, delay, took)
		if took > 4*delay {
			t.Errorf("online %v after connecting, want about one SUBACK delay (%v), not one per subscription", took, delay)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("never online")
	}
}
