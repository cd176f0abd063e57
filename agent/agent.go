// Package agent composes a rollcall host: one MQTT session, the discovery
// monitor and the host's services, built from the services registry.
//
// The agent keeps two retained topics per host:
//
//	<host>/status       "online", or "offline" (also the session's last will)
//	<host>/description  the host and its services (services.HostDescription)
//
// and answers:
//
//	<host>/get          republish the description
//
// With mqtt.topic_prefix, these and every other topic of the host and its
// services lie under the prefix (<prefix>/<host>/status); the report topic
// and the probes' reply topics do not.
//
// When its monitor accepts a probe, every service of this host answers on
// the probe's reply topic, and the report goes out on /udp/report (or
// /udp/report/<host> with discovery.report_per_host) for any other MQTT
// client on the host that wants to answer too.
//
// With homeassistant.enabled, the host is also one Home Assistant device
// (package homeassistant), kept in step with its description.
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
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rollcall/rollcall/agent/broker"
	"github.com/rollcall/rollcall/agent/homeassistant"
	"github.com/rollcall/rollcall/agent/metrics"
	"github.com/rollcall/rollcall/agent/session"
	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/services"
)

// Version is rollcall's version, as the description and metrics report
// it: the rollcall command sets it from its own build information (the
// release build stamps main.version), so both say what `rollcall version`
// says.
var Version = "dev"

// Agent is one host of the cluster.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	machine  string
	services []services.Service

	// ready is closed once the first connection has subscribed every
	// topic and said online (tests and the demo wait on it).
	ready     chan struct{}
	readyOnce sync.Once

	// Set by Run before it connects, read by other goroutines.
	sessionp atomic.Pointer[session.Session]
	// subscribed: the session is up and its subscriptions renewed.
	subscribed atomic.Bool
	brokerp    atomic.Pointer[broker.Broker]
	monitorp   atomic.Pointer[discovery.Monitor]
	hap        atomic.Pointer[homeassistant.Publisher]
	// haEchoTimeout, when set, replaces the publisher's wait for the
	// broker's echo (tests shorten it).
	haEchoTimeout time.Duration
	metricsp      atomic.Pointer[metrics.Server]
	// stopping is set once Run is ending, so that the agent's own goodbye
	// is not taken for someone overwriting its status.
	stopping chan struct{}
	stop     func() // closes stopping, once
	// checkPending is set while a re-read of the retained description is
	// scheduled; checked counts the retained descriptions read back.
	checkPending atomic.Bool
	checked      atomic.Int64
	// serving is true while the monitor reads probes.
	serving atomic.Bool

	// pubMu makes describing and publishing one step, so that of two
	// publishes the later always carries the later version.
	pubMu sync.Mutex

	mu        sync.Mutex
	externals map[string]*external // services outside the agent, by name
	version   uint64
	// unpublished: the version was raised for a change not yet published.
	unpublished bool
	versionCeil uint64            // the version file's: versions up to it may be published
	verMu       sync.Mutex        // serialises writes of the version file
	failed      map[string]string // service name -> why it stopped
	conflicts   []string
	reasserted  map[string]time.Time // topic -> last re-assertion
	changed     chan struct{}
}

// New builds an agent and its services from a configuration. Nothing is
// opened until Run.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("config: %w", errs)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	id, err := machineID(cfg.StateDir, cfg.MachineID)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:        cfg,
		log:        log.With("host", cfg.Host),
		machine:    id,
		ready:      make(chan struct{}),
		stopping:   make(chan struct{}),
		failed:     map[string]string{},
		reasserted: map[string]time.Time{},
		externals:  map[string]*external{},
		changed:    make(chan struct{}, 1),
	}
	a.stop = sync.OnceFunc(func() { close(a.stopping) })
	v, err := loadVersion(cfg.StateDir)
	if err != nil {
		// The version is picked up above the broker's copy once connected.
		a.log.Error("state file unreadable; the description version continues above the one the broker holds", "err", err)
	}
	// A new run starts above every version the last one may have
	// published, so a description changed across the restart never
	// repeats a version a sweeper holds.
	a.version, a.versionCeil = v+1, v
	a.reserveVersion(a.version)
	claims := services.NewClaims()
	for i, bus := range cfg.Buses {
		if errs := claims.EnableBus(fmt.Sprintf("buses[%d]", i), bus); errs != nil {
			return nil, errs
		}
	}
	env := services.Env{
		Host:        cfg.Host,
		TopicPrefix: cfg.MQTT.TopicPrefix,
		StateDir:    cfg.StateDir,
		Sim:         cfg.Sim,
		Sysfs:       cfg.Sysfs,
		Logger:      a.log,
		Claims:      claims,
	}
	for _, name := range cfg.Services {
		kind, ok := services.LookupKind(name)
		if !ok {
			return nil, fmt.Errorf("no service called %q", name)
		}
		block := cfg.Blocks[name]
		if block == nil {
			block = kind.NewConfig()
		}
		s, err := kind.New(env, block)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		a.services = append(a.services, s)
	}
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

// Connected reports whether the agent's MQTT session is up now.
func (a *Agent) Connected() bool {
	s := a.sessionp.Load()
	return s != nil && s.Connected()
}

// MonitorAddr is the monitor's UDP address, once Ready.
func (a *Agent) MonitorAddr() net.Addr { return a.monitorp.Load().LocalAddr() }

// MetricsAddr is the address /metrics is served on, once Ready; nil when
// metrics.listen is not set.
func (a *Agent) MetricsAddr() net.Addr {
	if s := a.metricsp.Load(); s != nil {
		return s.Addr()
	}
	return nil
}

// BrokerURL is the broker the agent uses, once Ready.
func (a *Agent) BrokerURL() string {
	if b := a.brokerp.Load(); b != nil && a.cfg.MQTT.Broker == "" {
		return b.URL()
	}
	return a.cfg.MQTT.URL()
}

// topic is the topic of levels under the configured prefix.
func (a *Agent) topic(levels ...string) string { return a.cfg.MQTT.TopicPrefix.Topic(levels...) }

func (a *Agent) statusTopic() string      { return a.topic(a.cfg.Host, "status") }
func (a *Agent) descriptionTopic() string { return a.topic(a.cfg.Host, "description") }

// Run serves until ctx ends. A service that fails is logged and marked
// unhealthy; it never stops the agent. Run returns only once every
// goroutine it started has ended.
func (a *Agent) Run(ctx context.Context) (err error) {
	cfg := a.cfg
	defer a.stop()
	if cfg.MQTT.Broker == "" || cfg.MQTT.EmbeddedBroker != "" {
		addr := cfg.MQTT.EmbeddedBroker
		if addr == "" {
			addr = session.DefaultEmbeddedBroker
		}
		b, err := broker.Start(addr, a.log, cfg.MQTT.EmbeddedUsers)
		if err != nil {
			return err
		}
		a.brokerp.Store(b)
		defer b.Close()
		a.log.Info("embedded broker", "addr", b.Addr().String())
	}

	clientID := cfg.MQTT.ClientID
	if clientID == "" {
		clientID = "rollcall-" + cfg.Host + "-" + discovery.ShortID(a.machine)
	}
	mqtt := cfg.MQTT
	mqtt.Broker = a.BrokerURL()
	sess, err := session.New(session.Options{
		Config:      mqtt,
		ClientID:    clientID,
		WillTopic:   a.statusTopic(),
		WillPayload: "offline",
		OnConnect:   a.onConnect,
		// paho calls this on a goroutine of its own, which may run after the
		// next connection is already up: only a session still down is lost.
		OnLost: func() {
			if !a.sessionp.Load().Connected() {
				a.subscribed.Store(false)
				a.setConnected(false)
			}
		},
	}, a.log.With("component", "mqtt"))
	if err != nil {
		return err
	}
	a.sessionp.Store(sess)
	defer func() {
		// Stopping first, so that the goodbye read back is not put
		// right as an overwritten status.
		a.stop()
		sess.Close(a.statusTopic(), []byte("offline"))
	}()

	mon, err := discovery.ListenMonitor(discovery.MonitorConfig{
		Addr:          fmt.Sprintf(":%d", cfg.Discovery.Port),
		Hostname:      cfg.Host,
		Machine:       a.machine,
		ExtAddr:       cfg.Discovery.ExtAddr,
		ReportTopic:   cfg.Discovery.ReportTopic,
		ReportPerHost: cfg.Discovery.ReportPerHost,
		ReplyPrefixes: cfg.Discovery.ReplyPrefixes,
		TopicPrefix:   cfg.MQTT.TopicPrefix,
		Keys:          cfg.Discovery.Keyring(),
		ReplayWindow:  cfg.Discovery.ReplayWindow,
		NotBefore:     time.Now(),
		Version:       a.currentVersion,
		OnReport:      a.answer,
		Logger:        a.log.With("component", "monitor"),
	})
	if err != nil {
		return err
	}
	a.monitorp.Store(mon)
	defer mon.Close()

	for _, sub := range []struct {
		filter string
		h      services.Handler
	}{
		{a.topic(cfg.Host, "get"), func(m services.Message) {
			if m.Retained {
				a.log.Warn("ignored a retained request: requests are never replayed", "topic", m.Topic)
				return
			}
			a.publishDescription()
		}},
		{a.descriptionTopic(), a.watchDescription},
		{a.statusTopic(), a.watchStatus},
		// Services outside the agent announce themselves.
		{a.topic(cfg.Host, "+", "description"), a.watchExternal},
		{a.topic(cfg.Host, "+", "status"), a.watchExternal},
	} {
		if err := sess.Subscribe(sub.filter, sub.h); err != nil {
			return err
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(runCtx)
	defer func() {
		cancel()
		if werr := g.Wait(); err == nil && !errors.Is(werr, context.Canceled) {
			err = werr
		}
	}()
	if cfg.Metrics.Listen != "" {
		if err := a.serveMetrics(gctx, g, sess, mon); err != nil {
			return err
		}
	}
	for _, s := range a.services {
		bus := &serviceBus{Session: sess, agent: a}
		g.Go(func() error {
			err := s.Run(gctx, bus)
			if err != nil && gctx.Err() == nil {
				a.log.Error("service stopped", "service", s.Name(), "err", err)
				a.mu.Lock()
				a.failed[s.Name()] = err.Error()
				a.changedLocked()
				a.mu.Unlock()
				a.signalChanged()
			}
			return nil // one service failing never stops the host
		})
	}
	// Before connecting, like every subscription: the first connection
	// then carries Home Assistant's too.
	ha, err := homeassistant.NewPublisher(sess, homeassistant.Options{
		Config:      cfg.HomeAssistant,
		Host:        cfg.Host,
		Machine:     a.machine,
		Info:        homeassistant.Info{Version: Version, Model: boardModel(cfg.Sysfs), TopicPrefix: cfg.MQTT.TopicPrefix},
		StateDir:    cfg.StateDir,
		Logger:      a.log,
		EchoTimeout: a.haEchoTimeout,
	})
	if err != nil {
		return err
	}
	a.hap.Store(ha)
	g.Go(func() error { ha.Run(gctx); return nil })
	g.Go(func() error { a.describeLoop(gctx); return nil })
	a.waitServing(gctx)
	// Connect only now: the session subscribes every service's topics
	// before it says online, so a request sent on seeing "online" is
	// never lost.
	if err := sess.Connect(gctx, 0); err != nil {
		return err
	}
	g.Go(func() error {
		a.serving.Store(true)
		defer a.serving.Store(false)
		return mon.Serve(gctx, sess)
	})
	a.log.Info("agent running", "machine", a.machine, "broker", a.BrokerURL(), "udp", mon.LocalAddr().String(), "services", len(a.services))
	select {
	case <-gctx.Done():
		return nil
	case err := <-sess.Fatal():
		return err
	}
}

// serveMetrics serves /metrics on metrics.listen until ctx ends.
func (a *Agent) serveMetrics(ctx context.Context, g *errgroup.Group, sess *session.Session, mon *discovery.Monitor) error {
	reg, err := metrics.NewRegistry(metrics.Options{
		Host:     a.cfg.Host,
		Version:  Version,
		Describe: a.Describe,
		Services: a.services,
		Session:  sess,
		Monitor:  mon,
	})
	if err != nil {
		return err
	}
	srv, err := metrics.Listen(a.cfg.Metrics.Listen, reg, a.log.With("component", "metrics"))
	if err != nil {
		return err
	}
	a.metricsp.Store(srv)
	g.Go(func() error { return srv.Serve(ctx) })
	a.log.Info("metrics", "addr", srv.Addr().String())
	return nil
}

// onConnect republishes the retained state after every (re)connect: a
// broker restarted without persistence has forgotten it.
func (a *Agent) onConnect() {
	if err := a.sessionp.Load().Publish(a.statusTopic(), 1, true, []byte("online")); err != nil {
		a.log.Warn("publish status", "err", err)
	}
	a.subscribed.Store(true)
	a.publishDescription()
	a.setConnected(true)
	a.readyOnce.Do(func() { close(a.ready) })
}

// waitServing waits, a few seconds at most, for every service to subscribe.
func (a *Agent) waitServing(ctx context.Context) {
	timeout := time.After(5 * time.Second)
	for _, s := range a.services {
		sv, ok := s.(services.Serving)
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

func (a *Agent) setConnected(up bool) {
	if p := a.hap.Load(); p != nil {
		p.Connected(up)
	}
	for _, s := range a.services {
		if c, ok := s.(services.Connector); ok {
			c.Connected(up)
		}
	}
}

// serviceBus is a service's Bus: the session, plus Changed.
type serviceBus struct {
	*session.Session
	agent *Agent
}

func (b *serviceBus) Changed() { b.agent.markChanged() }

func (a *Agent) markChanged() {
	a.mu.Lock()
	a.changedLocked()
	a.mu.Unlock()
	a.signalChanged()
}

// changedLocked raises the version for a change of what the host
// describes, once per burst; a.mu is held. Raising it with the change
// itself means a probe answered after the change acknowledges a version
// above the summary the broker still holds, so a sweep waits for the
// summary that lists it.
func (a *Agent) changedLocked() {
	if !a.unpublished {
		a.version++
		a.unpublished = true
	}
}

func (a *Agent) signalChanged() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// describeLoop keeps and republishes the description once per burst of
// changes.
func (a *Agent) describeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.changed:
			a.mu.Lock()
			a.unpublished = false
			v := a.version
			a.mu.Unlock()
			a.reserveVersion(v)
			a.publishDescription()
		}
	}
}

// bumpVersion raises the version above floor and keeps it.
func (a *Agent) bumpVersion(floor uint64) {
	a.mu.Lock()
	a.version = max(a.version, floor) + 1
	v := a.version
	a.mu.Unlock()
	a.reserveVersion(v)
}

// versionReserve is how many versions one write of the version file
// reserves. The file holds a ceiling, not the version: every version up
// to it may be published, and a restarted agent starts at it. One write
// per versionReserve changes, not per change: under a stream of setups
// the agent wrote and fsynced the file for every one, which took a third
// of its CPU and delayed reading the next request, an estop among them.
const versionReserve = 64

// reserveVersion makes sure the version file's ceiling is at least v
// before v is published, so the version never goes back after a restart.
func (a *Agent) reserveVersion(v uint64) {
	// One writer at a time, so a lower ceiling is never written last.
	a.verMu.Lock()
	defer a.verMu.Unlock()
	a.mu.Lock()
	ceil := a.versionCeil
	a.mu.Unlock()
	if v <= ceil {
		return
	}
	next := v + versionReserve
	if err := saveVersion(a.cfg.StateDir, next); err != nil {
		a.log.Warn("save description version", "err", err)
		return
	}
	a.mu.Lock()
	a.versionCeil = max(a.versionCeil, next)
	a.mu.Unlock()
}

func (a *Agent) currentVersion() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.version
}

// Describe returns the host's current description.
func (a *Agent) Describe() services.HostDescription {
	a.mu.Lock()
	v := a.version
	conflicts := slices.Clone(a.conflicts)
	a.mu.Unlock()
	return services.HostDescription{
		Protocol:  discovery.Protocol,
		Host:      a.cfg.Host,
		Machine:   a.machine,
		Version:   v,
		Rollcall:  Version,
		Updated:   time.Now().UTC().Format(time.RFC3339),
		IPAddrs:   hostAddrs(),
		ExtAddr:   a.cfg.Discovery.ExtAddr,
		Conflicts: conflicts,
		Services:  a.describeServices(),
	}
}

// describeServices describes every service, marking those that stopped,
// then the external services that are online.
func (a *Agent) describeServices() []services.Description {
	a.mu.Lock()
	failed := maps.Clone(a.failed)
	var ext []services.Description
	for _, name := range slices.Sorted(maps.Keys(a.externals)) {
		if e := a.externals[name]; e.online && e.desc != nil {
			ext = append(ext, *e.desc)
		}
	}
	a.mu.Unlock()
	out := make([]services.Description, len(a.services), len(a.services)+len(ext))
	for i, s := range a.services {
		out[i] = s.Describe()
		if why, ok := failed[s.Name()]; ok {
			out[i].Health, out[i].Error = "error", why
		}
	}
	return append(out, ext...)
}

// publishDescription publishes the host's description and the summary of
// it that sweeps read, both retained.
func (a *Agent) publishDescription() {
	a.pubMu.Lock()
	defer a.pubMu.Unlock()
	d := a.Describe()
	b, err := json.Marshal(d)
	if err != nil {
		a.log.Error("marshal description", "err", err)
		return
	}
	sum := discovery.Summary{Protocol: discovery.Protocol, Host: d.Host, Machine: d.Machine, Version: d.Version, IPAddrs: d.IPAddrs, ExtAddr: d.ExtAddr,
		Services: make([]discovery.ServiceInfo, len(d.Services))}
	for i, sd := range d.Services {
		sum.Services[i] = discovery.Info(sd)
	}
	sb, err := json.Marshal(sum)
	if err != nil {
		a.log.Error("marshal summary", "err", err)
		return
	}
	// Only once the subscriptions are renewed: a copy queued while the
	// session was down would reach the broker first and overwrite the
	// retained description this host reads back to keep its version from
	// going backwards. onConnect publishes it again.
	if a.subscribed.Load() {
		sess := a.sessionp.Load()
		if err := sess.Publish(a.descriptionTopic(), 1, true, b); err != nil {
			a.log.Warn("publish description", "err", err)
		}
		if err := sess.Publish(a.topic(discovery.SummaryTopic(a.cfg.Host)), 1, true, sb); err != nil {
			a.log.Warn("publish summary", "err", err)
		}
		a.log.Debug("description published", "version", d.Version)
	} else {
		a.log.Debug("description not published until the session is back", "version", d.Version)
	}
	if p := a.hap.Load(); p != nil && a.cfg.HomeAssistant.Enabled {
		p.Update(a.homeAssistantView(d))
	}
}

// homeAssistantView is the description Home Assistant's device follows:
// every external service that keeps a description, offline ones too, so
// that a program restarting shows its entities unavailable for a while
// instead of removing them (and their history) from Home Assistant.
func (a *Agent) homeAssistantView(d services.HostDescription) services.HostDescription {
	out := d
	out.Services = slices.DeleteFunc(slices.Clone(d.Services), func(s services.Description) bool { return s.External })
	a.mu.Lock()
	for _, name := range slices.Sorted(maps.Keys(a.externals)) {
		if e := a.externals[name]; e.desc != nil {
			out.Services = append(out.Services, *e.desc)
		}
	}
	a.mu.Unlock()
	for i := range out.Services {
		out.Services[i].State = nil // the publisher keeps the latest; it reads no state
	}
	return out
}

// boardModel is the board as its device tree names it ("Raspberry Pi
// Zero W Rev 1.1", NUL-terminated in the file), or "" on a machine
// without one.
func boardModel(sysfs string) string {
	b, err := os.ReadFile(filepath.Join(sysfs, "firmware", "devicetree", "base", "model"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
}

// external is a service outside the agent: a program that keeps its
// description retained on <host>/<service>/description and its status
// ("online", and "offline" as its MQTT will) on <host>/<service>/status
// (under the topic prefix, when there is one).
type external struct {
	desc   *services.Description
	online bool
}

// watchExternal follows the services outside the agent. The host's
// description lists one while its status is online and its description
// is valid; a sweep then waits for its reply like any other service's.
func (a *Agent) watchExternal(m services.Message) {
	rest, ok := a.cfg.MQTT.TopicPrefix.Trim(m.Topic)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 {
		return
	}
	name, kind := parts[1], parts[2]
	if a.Service(name) != nil {
		if kind == "description" && len(m.Payload) > 0 {
			a.log.Warn("a program outside the agent describes itself under the name of a built-in service; ignored", "topic", m.Topic)
		}
		return
	}
	a.mu.Lock()
	e := a.externals[name]
	if e == nil {
		e = &external{}
		a.externals[name] = e
	}
	before := *e
	switch kind {
	case "status":
		e.online = string(m.Payload) == "online"
	case "description":
		e.desc = nil
		if len(m.Payload) > 0 {
			var d services.Description
			err := json.Unmarshal(m.Payload, &d)
			switch {
			case err != nil:
				a.log.Warn("external service description unreadable; not listed", "topic", m.Topic, "err", err)
			case d.Function != name:
				a.log.Warn("external service description names another service; not listed", "topic", m.Topic, "function", d.Function)
			default:
				d.External = true
				d.State = nil // a summary of what it says; its own topic has the rest
				e.desc = &d
			}
		}
	}
	if e.desc == nil && !e.online {
		delete(a.externals, name)
	}
	changed := before.online != e.online || (before.desc == nil) != (e.desc == nil) || (e.desc != nil && before.desc != nil && !sameDescription(*before.desc, *e.desc))
	if changed {
		a.changedLocked()
	}
	a.mu.Unlock()
	if changed {
		a.signalChanged()
	}
}

func sameDescription(x, y services.Description) bool {
	bx, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(bx) == string(by)
}

// reassertEvery bounds how often the agent puts back a retained topic of
// its own that someone else overwrote.
const reassertEvery = 2 * time.Second

// mayReassert reports whether topic may be re-asserted now, and records
// that it was.
func (a *Agent) mayReassert(topic string) bool {
	select {
	case <-a.stopping:
		return false
	default:
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.reasserted[topic]; ok && time.Since(t) < reassertEvery {
		return false
	}
	a.reasserted[topic] = time.Now()
	return true
}

// watchDescription guards this host's retained description. Another
// machine's description under this host's name is a conflict (every
// fresh Pi image is called raspberrypi), but only once the broker keeps
// it: a live message is checked by asking the broker for its retained
// copy again, so a one-off publish there (a spoofed probe reply, say) is
// ignored. The conflict is named in this host's description, never merged
// away, and this host's own description is put back. The host's own
// description read back from the broker keeps its version from going
// backwards after its state was lost.
func (a *Agent) watchDescription(m services.Message) {
	var d struct {
		Machine string `json:"machine"`
		Version uint64 `json:"version"`
	}
	if m.Retained {
		a.checked.Add(1)
	}
	if len(m.Payload) == 0 || json.Unmarshal(m.Payload, &d) != nil || d.Machine == "" {
		if m.Retained || len(m.Payload) == 0 {
			if a.mayReassert(a.descriptionTopic()) {
				a.publishDescription()
			}
		}
		return
	}
	if d.Machine == a.machine {
		a.mu.Lock()
		behind := d.Version > a.version
		a.mu.Unlock()
		if behind {
			a.log.Warn("description version behind the broker's; continuing above it", "broker", d.Version)
			a.bumpVersion(d.Version)
			a.publishDescription()
		}
		return
	}
	if !m.Retained {
		a.checkRetained()
		return
	}
	a.mu.Lock()
	known := slices.Contains(a.conflicts, d.Machine)
	if !known {
		a.conflicts = append(a.conflicts, d.Machine)
		slices.Sort(a.conflicts)
		a.changedLocked()
	}
	a.mu.Unlock()
	if !known {
		a.log.Error("host name conflict: another machine publishes under this name", "other", d.Machine)
		a.signalChanged()
	}
}

// checkRetained asks the broker for the retained description again, at
// most once per reassertEvery: a burst of foreign messages costs one
// re-read, and the last one is never left unchecked.
func (a *Agent) checkRetained() {
	if !a.checkPending.CompareAndSwap(false, true) {
		return
	}
	a.mu.Lock()
	wait := reassertEvery - time.Since(a.reasserted["check"])
	a.mu.Unlock()
	time.AfterFunc(max(wait, 0), func() {
		a.mu.Lock()
		a.reasserted["check"] = time.Now()
		a.mu.Unlock()
		a.checkPending.Store(false)
		select {
		case <-a.stopping:
			return
		default:
		}
		if err := a.sessionp.Load().Resubscribe(a.descriptionTopic()); err != nil {
			a.log.Debug("re-read retained description", "err", err)
		}
	})
}

// watchStatus puts back this host's retained "online" when something
// else overwrites it while the agent runs.
func (a *Agent) watchStatus(m services.Message) {
	if string(m.Payload) == "online" || !a.Connected() {
		return
	}
	select {
	case <-a.stopping:
		return
	default:
	}
	if a.mayReassert(a.statusTopic()) {
		a.log.Warn("status overwritten while running; putting back online", "payload", truncate(string(m.Payload), 40))
		if err := a.sessionp.Load().Publish(a.statusTopic(), 1, true, []byte("online")); err != nil {
			a.log.Warn("publish status", "err", err)
		}
	}
}

// answer answers a monitor's report for this machine with one reply per
// service on the probe's reply topic, built from the report as the
// monitor made it.
func (a *Agent) answer(r discovery.Report) {
	if r.Machine != a.machine {
		return
	}
	descs := a.describeServices()
	names := make([]string, len(descs))
	for i, d := range descs {
		names[i] = d.Function
	}
	for _, d := range descs {
		if d.External {
			continue // it answers for itself
		}
		b, err := discovery.NewReply(r, d, names).Marshal()
		if err != nil {
			a.log.Error("marshal reply", "err", err)
			continue
		}
		if err := a.sessionp.Load().Publish(r.Topic, 0, false, b); err != nil {
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
