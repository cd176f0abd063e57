package simcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/rollcall/rollcall/agent/broker"
)

// A Broker is an MQTT broker a simulated cluster runs against, which can
// say how many messages it has delivered.
type Broker interface {
	// URL is the broker's tcp:// URL.
	URL() string
	// Deliveries is how many PUBLISH packets the broker has sent to its
	// clients since it started, read once the deliveries under way have
	// gone out, so that a reading taken after a sweep counts all of it.
	// Subtract two readings for what happened in between.
	Deliveries(ctx context.Context) (uint64, error)
	// Close stops the broker.
	Close() error
}

var (
	_ Broker = (*Embedded)(nil)
	_ Broker = (*Mosquitto)(nil)
)

// Embedded is rollcall's embedded broker (agent/broker) on a free loopback
// port, with a hook counting what it delivers.
type Embedded struct {
	*broker.Broker
	hook *deliveryHook
}

// StartEmbedded starts the embedded broker on a free loopback port.
func StartEmbedded(log *slog.Logger) (*Embedded, error) {
	b, err := broker.Start("127.0.0.1:0", log, nil)
	if err != nil {
		return nil, err
	}
	h := new(deliveryHook)
	if err := b.AddHook(h, nil); err != nil {
		b.Close()
		return nil, err
	}
	return &Embedded{Broker: b, hook: h}, nil
}

// settleQuiet is how long a broker must have delivered nothing for a
// reading of the embedded broker's count to be taken.
const settleQuiet = 100 * time.Millisecond

// Deliveries counts the PUBLISH packets the broker wrote to clients, once
// it has written none for 100 ms.
func (e *Embedded) Deliveries(ctx context.Context) (uint64, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last, since := e.hook.sent.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return uint64(last), fmt.Errorf("embedded broker deliveries: still delivering: %w", ctx.Err())
		case now := <-tick.C:
			n := e.hook.sent.Load()
			if n != last {
				last, since = n, now
				continue
			}
			if now.Sub(since) >= settleQuiet {
				return uint64(n), nil
			}
		}
	}
}

// Dropped counts the messages the broker threw away because a client's
// queue of pending writes was full: a client that reads too slowly.
func (e *Embedded) Dropped() uint64 { return uint64(e.hook.dropped.Load()) }

// deliveryHook counts what the broker writes to clients, and what it drops.
type deliveryHook struct {
	mqtt.HookBase
	sent, dropped atomic.Int64
}

func (h *deliveryHook) ID() string { return "simcluster-deliveries" }

func (h *deliveryHook) Provides(b byte) bool {
	return b == mqtt.OnPacketSent || b == mqtt.OnPublishDropped
}

func (h *deliveryHook) OnPacketSent(_ *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type == packets.Publish {
		h.sent.Add(1)
	}
}

func (h *deliveryHook) OnPublishDropped(*mqtt.Client, packets.Packet) { h.dropped.Add(1) }

// Mosquitto is a mosquitto broker started for the run, with the
// configuration a user writes first: one listener (on a free loopback
// port) and allow_anonymous, nothing tuned.
type Mosquitto struct {
	cmd    *exec.Cmd
	url    string
	log    string // its log file
	exited chan struct{}
	sys    paho.Client

	mu     sync.Mutex
	value  uint64        // last $SYS/broker/publish/messages/sent
	seen   uint64        // $SYS messages delivered to sys, the last included
	update chan struct{} // closed at the next $SYS message
}

// sysSent is mosquitto's count of PUBLISH packets sent to clients.
const sysSent = "$SYS/broker/publish/messages/sent"

// StartMosquitto starts the mosquitto on $PATH (or in /usr/sbin) with a
// stock configuration written to dir, where its log also goes, and
// returns once it accepts connections. It fails with an error wrapping
// exec.ErrNotFound when mosquitto is not installed.
func StartMosquitto(ctx context.Context, dir string) (*Mosquitto, error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mosquitto: free port: %w", err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "listener %d 127.0.0.1\nallow_anonymous true\n", addr.Port), 0o644); err != nil {
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	m := &Mosquitto{url: "tcp://" + addr.String(), log: filepath.Join(dir, "mosquitto.log"), exited: make(chan struct{}), update: make(chan struct{})}
	logf, err := os.Create(m.log)
	if err != nil {
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	defer logf.Close() // the child keeps its own copy
	m.cmd = exec.Command(bin, "-c", conf)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("mosquitto %s: %w", bin, err)
	}
	go func() { m.cmd.Wait(); close(m.exited) }()
	if err := m.waitListening(ctx, addr.String()); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.readSys(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// waitListening polls the port until mosquitto accepts a connection.
func (m *Mosquitto) waitListening(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		select {
		case <-m.exited:
			return fmt.Errorf("mosquitto exited at start: %s", m.logTail())
		case <-ctx.Done():
			return fmt.Errorf("mosquitto not accepting on %s: %w", addr, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// readSys subscribes a client of its own to mosquitto's delivery count.
func (m *Mosquitto) readSys() error {
	o := paho.NewClientOptions().AddBroker(m.url).SetClientID("simcluster-sys").SetAutoReconnect(false)
	m.sys = paho.NewClient(o)
	if tk := m.sys.Connect(); !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		return fmt.Errorf("mosquitto %s: $SYS reader: connect: %v", m.url, tk.Error())
	}
	tk := m.sys.Subscribe(sysSent, 0, func(_ paho.Client, msg paho.Message) {
		v, err := strconv.ParseUint(string(bytes.TrimSpace(msg.Payload())), 10, 64)
		if err != nil {
			return
		}
		m.mu.Lock()
		m.value = v
		m.seen++
		close(m.update)
		m.update = make(chan struct{})
		m.mu.Unlock()
	})
	if !tk.WaitTimeout(5*time.Second) || tk.Error() != nil {
		return fmt.Errorf("mosquitto %s: $SYS reader: subscribe %s: %v", m.url, sysSent, tk.Error())
	}
	return nil
}

// URL is the broker's tcp:// URL.
func (m *Mosquitto) URL() string { return m.url }

// Pid is the broker's process id, to read its memory.
func (m *Mosquitto) Pid() int { return m.cmd.Process.Pid }

// Deliveries waits for mosquitto's next $SYS update (every 10 s with the
// stock sys_interval) and returns its count of PUBLISH packets sent, less
// the updates it sent to this reader before: only the cluster's
// deliveries count.
func (m *Mosquitto) Deliveries(ctx context.Context) (uint64, error) {
	m.mu.Lock()
	next := m.update
	m.mu.Unlock()
	select {
	case <-next:
	case <-m.exited:
		return 0, fmt.Errorf("mosquitto deliveries: broker exited: %s", m.logTail())
	case <-ctx.Done():
		return 0, fmt.Errorf("mosquitto deliveries: no %s update: %w", sysSent, ctx.Err())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// The update just received was not yet counted when it was made.
	return m.value - (m.seen - 1), nil
}

// Close stops the broker: SIGTERM, then SIGKILL after 5 s.
func (m *Mosquitto) Close() error {
	if m.sys != nil {
		m.sys.Disconnect(0)
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("mosquitto: stop: %w", err)
	}
	select {
	case <-m.exited:
	case <-time.After(5 * time.Second):
		m.cmd.Process.Kill()
		<-m.exited
		return fmt.Errorf("mosquitto: did not stop on SIGTERM within 5s; killed")
	}
	return nil
}

// logTail is the end of mosquitto's log, for an error message.
func (m *Mosquitto) logTail() string {
	b, _ := os.ReadFile(m.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}
