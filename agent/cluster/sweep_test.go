package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/agent/session"
	"github.com/rollcall/rollcall/agent/simcluster"
	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/services"
)

// Replies keep coming after a sweep has what it needs: from a large
// cluster, thousands (one per service of every host, and again for each
// retransmission a host was not heard in). They must not hold up the
// sweep's end, where its session waits for the broker to take the result.
func TestSweepEndsDespiteLateReplies(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	b, err := simcluster.StartEmbedded(log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := simcluster.Start(ctx, simcluster.Options{Hosts: 2, Dir: t.TempDir(), Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	flood := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("late-replies"))
	if tk := flood.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("connect: %v", tk.Error())
	}
	defer flood.Disconnect(0)

	cfg := c.Client("sweeper")
	var resulted time.Time
	inv, err := cluster.Sweep(ctx, cfg, cluster.SweepOptions{Expect: 2, Timeout: 5 * time.Second, OnResult: func(inv cluster.Inventory) {
		// Answers to this very sweep, more than its queues hold, all
		// delivered before the sweep publishes its result.
		for i := range 3000 {
			r := discovery.NewReply(discovery.Report{Hostname: fmt.Sprintf("late%d", i), ReplyTo: cfg.Name, Cmd: discovery.CmdGetStatus,
				Topic: cfg.Discovery.ReplyTopic, ID: inv.Sweep.ID, Machine: fmt.Sprintf("m%d", i), V: discovery.Version},
				services.Description{Function: "gpio", Health: "ok"}, []string{"gpio"})
			p, err := r.Marshal()
			if err != nil {
				t.Error(err)
				return
			}
			flood.Publish(cfg.Discovery.ReplyTopic, 0, false, p)
		}
		if _, err := b.Deliveries(ctx); err != nil {
			t.Error(err)
		}
		resulted = time.Now()
	}}, log)
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Sweep.Complete || len(inv.Hosts) != 2 {
		t.Fatalf("sweep %+v", inv.Sweep)
	}
	if d := time.Since(resulted); d > time.Second {
		t.Errorf("the sweep took %v to publish its result after the late replies, want well under a second (it gives up at 2s)", d.Round(time.Millisecond))
	}
}

// A cluster larger than a broker's queue for one client: a stock mosquitto
// holds at most 1000 QoS 1 messages for a client beyond the 20 in flight
// and drops the rest. Reading every host's retained status must still see
// every host, and the sweep must still learn whom it expects.
func TestRetainedReadOfALargeCluster(t *testing.T) {
	const hosts = 1500
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := simcluster.StartMosquitto(ctx, t.TempDir())
	if errors.Is(err, exec.ErrNotFound) && os.Getenv("CI") == "" {
		t.Skip("mosquitto is not installed: apt-get install mosquitto")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL()).SetClientID("hosts"))
	if tk := pub.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		t.Fatalf("connect: %v", tk.Error())
	}
	defer pub.Disconnect(0)
	var last paho.Token
	for i := range hosts {
		// A rollcall host is one by its retained summary; its status says
		// it is online.
		host := fmt.Sprintf("pi%04d", i)
		pub.Publish(host+"/services", 1, true, fmt.Sprintf(`{"protocol":%q,"host":%q,"machine":"%032x","version":1,"services":[]}`, discovery.Protocol, host, i+1))
		last = pub.Publish(host+"/status", 1, true, "online")
	}
	if !last.WaitTimeout(30*time.Second) || last.Error() != nil {
		t.Fatalf("publish statuses: %v", last.Error())
	}
	cfg := cluster.Config{Name: "reader", MQTT: session.Config{Broker: m.URL(), Keepalive: 30 * time.Second}, Discovery: discovery.DefaultConfig()}
	cfg.Discovery.Interfaces = []string{"lo"}
	cfg.Discovery.Port = 1 // nothing listens: no host answers

	tests := []struct {
		name string
		read func(t *testing.T) int // how many hosts the read saw
	}{
		{"inventory", func(t *testing.T) int {
			inv, err := cluster.ReadInventory(ctx, cfg, slog.New(slog.DiscardHandler), nil)
			if err != nil {
				t.Fatal(err)
			}
			return len(inv.Hosts)
		}},
		{"sweep expects every host online", func(t *testing.T) int {
			inv, err := cluster.Sweep(ctx, cfg, cluster.SweepOptions{Timeout: time.Second, NoAck: true}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			return len(inv.Missing)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.read(t); got != hosts {
				t.Errorf("saw %d hosts, want all %d", got, hosts)
			}
		})
	}
}
