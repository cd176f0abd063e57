package simcluster

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/sync/errgroup"
)

// listeners are the external report listeners: one plain paho client per
// host, subscribed as a service outside the agent would be.
type listeners struct {
	clients             []paho.Client
	received, own, lost atomic.Uint64
}

// startListeners connects one client per host and subscribes it to the
// topic given for that host, parallel at a time.
func startListeners(ctx context.Context, url string, topics map[string]string, parallel int) (*listeners, error) {
	l := &listeners{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for host, topic := range topics {
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			c, err := l.listen(url, host, topic)
			if c != nil {
				mu.Lock()
				l.clients = append(l.clients, c)
				mu.Unlock()
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// listen connects host's listener and subscribes it to topic. It counts
// every report, and those naming host; a real service would parse the
// report to tell, this one only looks for the host's name.
func (l *listeners) listen(url, host, topic string) (paho.Client, error) {
	own := fmt.Appendf(nil, `"hostname":%q`, host)
	o := paho.NewClientOptions().AddBroker(url).SetClientID("simcluster-listener-" + host).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).
		SetConnectionLostHandler(func(paho.Client, error) { l.lost.Add(1) })
	c := paho.NewClient(o)
	if tk := c.Connect(); !tk.WaitTimeout(15*time.Second) || tk.Error() != nil {
		return nil, fmt.Errorf("simcluster: listener of %s: connect %s: %v", host, url, tk.Error())
	}
	tk := c.Subscribe(topic, 0, func(_ paho.Client, m paho.Message) {
		l.received.Add(1)
		if bytes.Contains(m.Payload(), own) {
			l.own.Add(1)
		}
	})
	if !tk.WaitTimeout(15*time.Second) || tk.Error() != nil {
		return c, fmt.Errorf("simcluster: listener of %s: subscribe %s: %v", host, topic, tk.Error())
	}
	return c, nil
}

func (l *listeners) counts() ReportCounts {
	return ReportCounts{Received: l.received.Load(), Own: l.own.Load(), Lost: l.lost.Load()}
}

// close disconnects every listener, at once.
func (l *listeners) close() {
	var wg sync.WaitGroup
	for _, c := range l.clients {
		wg.Go(func() { c.Disconnect(0) })
	}
	wg.Wait()
}
