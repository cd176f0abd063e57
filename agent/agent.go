// Package agent composes a rollcall host: one MQTT session, the discovery
// monitor and the host's services.
//
// The agent keeps two retained topics per host:
//
//	<host>/status       "online", or "offline" (also the session's last will)
//	<host>/description  the host and its services, see Description
//
// and answers:
//
//	<host>/get          republish the description
//
// When its monitor accepts a probe, every service of this host answers on
// the probe's reply topic, and the report goes out on /udp/report for any
// other MQTT client on the host that wants to answer too.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/services"
)

// Version is rollcall's version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Description is a host's retained self-description on <host>/description.
type Description struct {
	Host    string `json:"host"`
	Machine string `json:"machine"`
	// Version goes up on every change and across restarts.
	Version  uint64   `json:"version"`
	Rollcall string   `json:"rollcall"`
	Updated  string   `json:"updated"`
	IPAddrs  []string `json:"ipaddrs"`
	ExtAddr  string   `json:"extaddr"`
	// Conflicts lists other machines seen publishing under this host name.
	Conflicts []string               `json:"conflicts,omitempty"`
	Services  []services.Description `json:"services"`
}

// Agent is one host of the cluster.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	machine  string
	services []services.Service
	pins     *services.PinRegistry

	// ready is closed once the first connection has subscribed every
	// topic and said online (tests and the demo wait on it).
	ready     chan struct{}
	readyOnce sync.Once

	session *Session
	broker  *Broker
	monitor *discovery.Monitor

	mu        sync.Mutex
	version   uint64
	failed    map[string]string // service name -> why it stopped
	conflicts []string
	changed   chan struct{}
}

// New builds an agent from a validated configuration. Nothing is opened
// until Run.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("config: %w", errs)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	id, err := machineID(cfg.StateDir, cfg.MachineID)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:     cfg,
		log:     log.With("host", cfg.Host),
		machine: id,
		pins:    services.NewPinRegistry(),
		ready:   make(chan struct{}),
		version: loadVersion(cfg.StateDir),
		failed:  map[string]string{},
		changed: make(chan struct{}, 1),
	}
	for _, bus := range cfg.Buses {
		if err := a.pins.ReserveBus(bus); err != nil {
			return nil, err
		}
	}
	g, err := gpio.New(cfg.GPIO, gpio.Options{
		Host:     cfg.Host,
		StateDir: cfg.StateDir,
		Logger:   a.log,
		Pins:     a.pins,
	})
	if err != nil {
		return nil, fmt.Errorf("gpio: %w", err)
	}
	a.services = append(a.services, g)
	return a, nil
}

// Service returns the host's service of that name, or nil.
func (a *Agent) Service(name string) services.Service {
	for _, s := range a.services {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// Machine is the host's stable identity.
func (a *Agent) Machine() string { return a.machine }

// Ready is closed once the agent is serving: its first connection to the
// broker has subscribed to every topic of the host and its services and
// published the host's status and description.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// MonitorAddr is the monitor's UDP address, once Ready.
func (a *Agent) MonitorAddr() net.Addr { return a.monitor.LocalAddr() }

// BrokerURL is the broker the agent uses, once Ready.
func (a *Agent) BrokerURL() string {
	if a.broker != nil && a.cfg.MQTT.Broker == "" {
		return a.broker.URL()
	}
	return a.cfg.BrokerURL()
}

func (a *Agent) statusTopic() string      { return a.cfg.Host + "/status" }
func (a *Agent) descriptionTopic() string { return a.cfg.Host + "/description" }

// Run serves until ctx ends. A service that fails is logged and marked
// unhealthy; it never stops the agent.
func (a *Agent) Run(ctx context.Context) error {
	cfg := a.cfg
	if cfg.MQTT.Broker == "" || cfg.MQTT.EmbeddedBroker != "" {
		addr := cfg.MQTT.EmbeddedBroker
		if addr == "" {
			addr = DefaultEmbeddedBroker
		}
		b, err := StartBroker(addr, a.log)
		if err != nil {
			return err
		}
		a.broker = b
		defer b.Close()
		a.log.Info("embedded broker", "addr", b.Addr().String())
	}

	mon, err := discovery.ListenMonitor(discovery.MonitorConfig{
		Addr:         fmt.Sprintf(":%d", cfg.Discovery.Port),
		Hostname:     cfg.Host,
		Machine:      a.machine,
		ExtAddr:      cfg.Discovery.ExtAddr,
		ReportTopic:  cfg.Discovery.ReportTopic,
		Keys:         cfg.Discovery.keyring(),
		ReplayWindow: cfg.Discovery.ReplayWindow,
		Logger:       a.log.With("component", "monitor"),
	})
	if err != nil {
		return err
	}
	a.monitor = mon
	defer mon.Close()

	clientID := cfg.MQTT.ClientID
	if clientID == "" {
		clientID = "rollcall-" + cfg.Host + "-" + discovery.ShortID(a.machine)
	}
	sess, err := NewSession(SessionConfig{
		MQTT:        withBroker(cfg.MQTT, a.BrokerURL()),
		ClientID:    clientID,
		WillTopic:   a.statusTopic(),
		WillPayload: "offline",
		OnConnect:   a.onConnect,
		OnLost:      func() { a.setConnected(false) },
	}, a.log.With("component", "mqtt"))
	if err != nil {
		return err
	}
	a.session = sess
	defer sess.Close(a.statusTopic(), []byte("offline"))

	for _, sub := range []struct {
		filter string
		h      services.Handler
	}{
		{cfg.Host + "/get", func(string, []byte) { a.publishDescription() }},
		{a.descriptionTopic(), a.watchDescription},
	} {
		if err := sess.Subscribe(sub.filter, sub.h); err != nil {
			return err
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, s := range a.services {
		bus := &serviceBus{Session: sess, agent: a}
		g.Go(func() error {
			err := s.Run(gctx, bus)
			if err != nil && gctx.Err() == nil {
				a.log.Error("service stopped", "service", s.Name(), "err", err)
				a.mu.Lock()
				a.failed[s.Name()] = err.Error()
				a.mu.Unlock()
				a.markChanged()
			}
			return nil // one service failing never stops the host
		})
	}
	g.Go(func() error { a.describeLoop(gctx); return nil })
	a.waitServing(ctx)
	// Connect only now: the session subscribes every service's topics
	// before it says online, so a request sent on seeing "online" is
	// never lost.
	if err := sess.Connect(ctx, 0); err != nil {
		return err
	}
	g.Go(func() error {
		return mon.Serve(gctx, reportTap{Session: sess, topic: cfg.Discovery.ReportTopic, answer: a.handleReport})
	})
	a.log.Info("agent running", "machine", a.machine, "broker", a.BrokerURL(), "udp", mon.LocalAddr().String(), "services", len(a.services))
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func withBroker(m MQTTConfig, url string) MQTTConfig {
	m.Broker = url
	return m
}

// onConnect republishes the retained state after every (re)connect: a
// broker restarted without persistence has forgotten it.
func (a *Agent) onConnect() {
	if err := a.session.Publish(a.statusTopic(), 1, true, []byte("online")); err != nil {
		a.log.Warn("publish status", "err", err)
	}
	a.publishDescription()
	a.setConnected(true)
	a.readyOnce.Do(func() { close(a.ready) })
}

// serving is implemented by services that can say when they have
// subscribed to their topics.
type serving interface{ Serving() <-chan struct{} }

// waitServing waits, a few seconds at most, for every service to subscribe.
func (a *Agent) waitServing(ctx context.Context) {
	timeout := time.After(5 * time.Second)
	for _, s := range a.services {
		sv, ok := s.(serving)
		if !ok {
			continue
		}
		select {
		case <-sv.Serving():
		case <-timeout:
			a.log.Warn("service slow to subscribe; going online without it", "service", s.Name())
			return
		case <-ctx.Done():
			return
		}
	}
}

// connectivity is implemented by services that act on broker loss (the
// gpio failsafe).
type connectivity interface{ Connected(up bool) }

func (a *Agent) setConnected(up bool) {
	for _, s := range a.services {
		if c, ok := s.(connectivity); ok {
			c.Connected(up)
		}
	}
}

// reportTap hands the monitor's reports to this host's services in
// process, then publishes them for other MQTT clients on the host. The
// agent does not subscribe to the report topic: with every agent of a
// cluster subscribed, each probe would wake every agent once per host.
type reportTap struct {
	*Session
	topic  string
	answer func(topic string, payload []byte)
}

func (t reportTap) Publish(topic string, qos byte, retained bool, payload []byte) error {
	if topic == t.topic {
		t.answer(topic, payload)
	}
	return t.Session.Publish(topic, qos, retained, payload)
}

// serviceBus is a service's Bus: the session, plus Changed.
type serviceBus struct {
	*Session
	agent *Agent
}

func (b *serviceBus) Changed() { b.agent.markChanged() }

func (a *Agent) markChanged() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// describeLoop bumps the version and republishes the description once per
// burst of changes.
func (a *Agent) describeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.changed:
			a.mu.Lock()
			a.version++
			v := a.version
			a.mu.Unlock()
			if err := saveVersion(a.cfg.StateDir, v); err != nil {
				a.log.Warn("save description version", "err", err)
			}
			a.publishDescription()
		}
	}
}

// Describe returns the host's current description.
func (a *Agent) Describe() Description {
	a.mu.Lock()
	v := a.version
	conflicts := slices.Clone(a.conflicts)
	a.mu.Unlock()
	d := Description{
		Host:      a.cfg.Host,
		Machine:   a.machine,
		Version:   v,
		Rollcall:  Version,
		Updated:   time.Now().UTC().Format(time.RFC3339),
		IPAddrs:   hostAddrs(),
		ExtAddr:   a.cfg.Discovery.ExtAddr,
		Conflicts: conflicts,
	}
	d.Services = a.describeServices()
	return d
}

// describeServices describes every service, marking those that stopped.
func (a *Agent) describeServices() []services.Description {
	a.mu.Lock()
	failed := maps.Clone(a.failed)
	a.mu.Unlock()
	out := make([]services.Description, len(a.services))
	for i, s := range a.services {
		out[i] = s.Describe()
		if why, ok := failed[s.Name()]; ok {
			out[i].Health, out[i].Error = "error", why
		}
	}
	return out
}

func (a *Agent) publishDescription() {
	b, err := json.Marshal(a.Describe())
	if err != nil {
		a.log.Error("marshal description", "err", err)
		return
	}
	if err := a.session.Publish(a.descriptionTopic(), 1, true, b); err != nil {
		a.log.Warn("publish description", "err", err)
	}
}

// watchDescription spots another machine publishing under this host's
// name: every fresh Pi image is called raspberrypi. The conflict is named
// in this host's description, never merged away.
func (a *Agent) watchDescription(_ string, payload []byte) {
	var d struct {
		Machine string `json:"machine"`
	}
	if json.Unmarshal(payload, &d) != nil || d.Machine == "" || d.Machine == a.machine {
		return
	}
	a.mu.Lock()
	known := slices.Contains(a.conflicts, d.Machine)
	if !known {
		a.conflicts = append(a.conflicts, d.Machine)
		sort.Strings(a.conflicts)
	}
	a.mu.Unlock()
	if !known {
		a.log.Error("host name conflict: another machine publishes under this name", "other", d.Machine)
		a.markChanged()
	}
}

// handleReport answers a monitor's report for this machine with one reply
// per service on the probe's reply topic.
func (a *Agent) handleReport(_ string, payload []byte) {
	r, err := discovery.ParseReport(payload)
	if err != nil {
		a.log.Debug("report dropped", "err", err)
		return
	}
	if r.Machine != a.machine {
		return // another host's report (or a clone's, under our name)
	}
	descs := a.describeServices()
	names := make([]string, len(descs))
	for i, d := range descs {
		names[i] = d.Function
	}
	for _, d := range descs {
		b, err := discovery.NewReply(r, d, names).Marshal()
		if err != nil {
			a.log.Error("marshal reply", "err", err)
			continue
		}
		if err := a.session.Publish(r.Topic, 0, false, b); err != nil {
			a.log.Warn("publish reply", "topic", r.Topic, "err", err)
		}
	}
}

// hostAddrs lists the host's IPv4 addresses on up, non-loopback interfaces.
func hostAddrs() []string {
	out := []string{}
	ifs, err := net.Interfaces()
	if err != nil {
		return out
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, ad := range addrs {
			if n, ok := ad.(*net.IPNet); ok && n.IP.To4() != nil {
				out = append(out, n.IP.String())
			}
		}
	}
	return out
}
