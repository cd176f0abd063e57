package homeassistant

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/rollcall/rollcall/services"
)

// Session is what the publisher needs of the host's MQTT session.
type Session interface {
	services.Publisher
	// Subscribe registers h for filter, renewed after every reconnect.
	Subscribe(filter string, h services.Handler) error
}

// Options configure a Publisher.
type Options struct {
	Config Config
	// Host and Machine are the host's name and stable identity.
	Host, Machine string
	Info          Info
	// StateDir keeps StateFile, which says what was published last.
	StateDir string
	Logger   *slog.Logger
	// EchoTimeout is how long the broker has to deliver a published
	// config back before the publisher says the broker may be refusing
	// the prefix; default DefaultEchoTimeout.
	EchoTimeout time.Duration
}

// StateFile, in the state directory, names the topic of the last device
// config published and its components' platforms: what to remove when a
// component disappears across a restart, or the whole device once the
// feature is turned off.
const StateFile = "homeassistant.json"

// DefaultEchoTimeout bounds the wait for the broker to deliver a config
// back.
const DefaultEchoTimeout = 5 * time.Second

// maxDrops is how many connections in a row may end between a config
// published and its echo before the publisher stops for the run: a
// broker that disconnects clients publishing where its ACL refuses
// would otherwise kick the whole agent on every reconnect.
const maxDrops = 2

// published is StateFile's content.
type published struct {
	Topic      string            `json:"topic"`
	Components map[string]string `json:"components"` // key: platform
	// Removed are components removed since Home Assistant last announced
	// itself (key: platform). Home Assistant removes a component of a
	// device when a config carries it with its platform alone; one that
	// was down when that config came, and reads only the retained config
	// when it starts, would never learn of the removal. So the retained
	// config carries them until Home Assistant's next birth.
	Removed map[string]string `json:"removed,omitempty"`
}

// maxRemoved bounds the removals a config carries: the oldest beyond it
// (by key) are let go.
const maxRemoved = 64

// Publisher keeps one host's device discovery config on the broker in
// step with its description. Its methods may be called from any
// goroutine; the publishing happens in Run.
type Publisher struct {
	s     Session
	o     Options
	log   *slog.Logger
	topic string // this host's config topic
	path  string
	wake  chan struct{}
	echo  chan []byte

	mu      sync.Mutex
	desc    *services.HostDescription
	up      bool
	force   bool // send even if unchanged: a connection or Home Assistant is new
	birth   bool // Home Assistant announced itself since Run last looked
	dropped bool // a connection ended since Run last looked

	// Owned by Run.
	last     []byte    // the config last sent on this connection
	awaiting *echoWait // what the broker should deliver back
	deadline <-chan time.Time
	st       published
	drops    int
	warned   bool
	stopped  bool
}

type echoWait struct {
	payload []byte
	clear   bool // the empty payload that removes the device
}

// NewPublisher subscribes to the topics the publisher needs (Home
// Assistant's status and the host's config topic, whose echo tells that
// the broker took a config) and returns it; Run serves. With the feature
// off it subscribes only when a device published before must be removed,
// and otherwise does nothing at all.
func NewPublisher(s Session, o Options) (*Publisher, error) {
	if o.EchoTimeout <= 0 {
		o.EchoTimeout = DefaultEchoTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{
		s:     s,
		o:     o,
		log:   o.Logger.With("component", "homeassistant"),
		topic: DeviceTopic(o.Config.Prefix, ObjectID(o.Host)),
		path:  filepath.Join(o.StateDir, StateFile),
		wake:  make(chan struct{}, 1),
		echo:  make(chan []byte, 8),
	}
	st, err := p.load()
	if err != nil {
		p.log.Warn("what was published to Home Assistant before is unknown; a component removed since will stay there as unavailable", "err", err)
	}
	p.st = st
	var filters []string
	switch {
	case o.Config.Enabled:
		filters = []string{StatusTopic(o.Config.Prefix), p.topic}
	case st.Topic != "":
		filters = []string{st.Topic}
	default:
		return p, nil
	}
	for _, f := range filters {
		if err := s.Subscribe(f, p.receive); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Update hands the publisher the host's description; the config follows
// it when it changes what Home Assistant sees.
func (p *Publisher) Update(d services.HostDescription) {
	p.mu.Lock()
	p.desc = &d
	p.mu.Unlock()
	p.poke()
}

// Connected tells the publisher the session came up or went down. Every
// connection gets the config again: a broker restarted without
// persistence has forgotten it.
func (p *Publisher) Connected(up bool) {
	p.mu.Lock()
	p.up = up
	if up {
		p.force = true
	} else {
		p.dropped = true
	}
	p.mu.Unlock()
	p.poke()
}

func (p *Publisher) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// receive takes Home Assistant's birth message (a live "online" on its
// status topic: it restarted and has forgotten what it discovered) and
// the broker's echo of what this publisher sent.
func (p *Publisher) receive(m services.Message) {
	if m.Retained {
		return // sent because we subscribed, not because anything happened
	}
	if m.Topic == StatusTopic(p.o.Config.Prefix) {
		if string(m.Payload) == "online" {
			p.log.Info("Home Assistant is online; sending the device config again")
			p.mu.Lock()
			p.force, p.birth = true, true
			p.mu.Unlock()
			p.poke()
		}
		return
	}
	select {
	case p.echo <- m.Payload:
	default:
	}
}

// Run publishes until ctx ends. It returns at once when there is nothing
// to do: the feature is off and nothing was published before.
func (p *Publisher) Run(ctx context.Context) {
	if !p.o.Config.Enabled && p.st.Topic == "" {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
			p.step()
		case b := <-p.echo:
			p.echoed(b)
		case <-p.deadline:
			p.timedOut()
		}
	}
}

func (p *Publisher) step() {
	p.mu.Lock()
	up, force, birth, dropped, desc := p.up, p.force, p.birth, p.dropped, p.desc
	p.force, p.birth, p.dropped = false, false, false
	p.mu.Unlock()
	if dropped {
		if p.awaiting != nil && !p.awaiting.clear {
			p.drops++
			if p.drops >= maxDrops && !p.stopped {
				p.stopped = true
				p.log.Error("the connection ended twice in a row right after the Home Assistant device config was published: the broker may be refusing "+p.o.Config.Prefix+"/# and dropping the client for it; not publishing it again until the agent restarts", "topic", p.topic)
			}
		}
		p.wait(nil)
		p.last = nil
	}
	if !up {
		return
	}
	if !p.o.Config.Enabled {
		p.removeDevice()
		return
	}
	if p.stopped || desc == nil {
		return
	}
	cfg := Generate(*desc, p.o.Info)
	payload, err := cfg.JSON()
	if err != nil {
		p.log.Error("home assistant config", "err", err)
		return
	}
	if p.st.Topic != "" && p.st.Topic != p.topic {
		// Another prefix or host name before: that device goes whole.
		p.log.Info("removing the Home Assistant device published under another topic", "topic", p.st.Topic)
		p.publish(p.st.Topic, nil)
		p.st = published{}
	}
	next := published{Topic: p.topic, Components: map[string]string{}, Removed: maps.Clone(p.st.Removed)}
	for key, c := range cfg.Components {
		next.Components[key] = c.Platform
		delete(next.Removed, key) // back again
	}
	for key, platform := range p.st.Components {
		if _, ok := cfg.Components[key]; !ok {
			if next.Removed == nil {
				next.Removed = map[string]string{}
			}
			next.Removed[key] = platform
		}
	}
	for len(next.Removed) > maxRemoved {
		delete(next.Removed, slices.Min(slices.Collect(maps.Keys(next.Removed))))
	}
	if len(next.Removed) == 0 {
		next.Removed = nil
	}
	withRemoved := func() ([]byte, error) {
		tomb := cfg
		tomb.Components = maps.Clone(cfg.Components)
		for key, platform := range next.Removed {
			tomb.Components[key] = Tombstone(platform)
		}
		return tomb.JSON()
	}
	if len(next.Removed) > 0 {
		if payload, err = withRemoved(); err != nil {
			p.log.Error("home assistant config", "err", err)
			return
		}
	}
	if len(next.Removed) > len(p.st.Removed) {
		p.log.Info("removing components from Home Assistant", "components", slices.Sorted(maps.Keys(next.Removed)))
	}
	if force || !bytes.Equal(payload, p.last) {
		if p.publish(p.topic, payload) {
			p.last = payload
			p.wait(&echoWait{payload: payload})
			if birth && len(next.Removed) > 0 {
				// Home Assistant is up and has now had every removal:
				// the config goes back to what there is.
				next.Removed = nil
				if clean, err := cfg.JSON(); err == nil && p.publish(p.topic, clean) {
					p.last = clean
					p.wait(&echoWait{payload: clean})
				}
			}
		}
	}
	if next.Topic != p.st.Topic || !maps.Equal(next.Components, p.st.Components) || !maps.Equal(next.Removed, p.st.Removed) {
		p.st = next
		p.save()
	}
}

// removeDevice empties the retained config of the device published while
// the feature was on, which removes the device from Home Assistant.
func (p *Publisher) removeDevice() {
	if p.st.Topic == "" || p.awaiting != nil {
		return
	}
	p.log.Info("Home Assistant discovery is off: removing the device published before", "topic", p.st.Topic)
	if p.publish(p.st.Topic, nil) {
		p.wait(&echoWait{clear: true})
	}
}

// publish sends a config retained at QoS 0: a broker whose ACL refuses
// the topic drops it, where some (mochi-mqtt, the embedded broker's)
// disconnect an MQTT 3.1.1 client refused a QoS 1 publish.
func (p *Publisher) publish(topic string, payload []byte) bool {
	if err := p.s.Publish(topic, 0, true, payload); err != nil {
		p.log.Debug("publish home assistant config", "topic", topic, "err", err)
		return false
	}
	return true
}

func (p *Publisher) wait(w *echoWait) {
	p.awaiting, p.deadline = w, nil
	if w != nil {
		p.deadline = time.After(p.o.EchoTimeout)
	}
}

func (p *Publisher) echoed(b []byte) {
	w := p.awaiting
	switch {
	case w == nil:
	case w.clear && len(b) == 0:
		p.wait(nil)
		p.forget()
		p.log.Info("Home Assistant device removed")
	case !w.clear && bytes.Equal(b, w.payload):
		p.wait(nil)
		p.drops = 0
		p.log.Debug("the broker delivered the Home Assistant device config back", "topic", p.topic, "bytes", len(b))
		if p.warned {
			p.log.Info("the broker now takes the Home Assistant device config", "topic", p.topic)
			p.warned = false
		}
	}
}

func (p *Publisher) timedOut() {
	w := p.awaiting
	p.wait(nil)
	switch {
	case w == nil:
	case w.clear:
		// Done what can be done: not trying at every start forever.
		p.forget()
		p.log.Warn("the broker did not deliver back the removal of the Home Assistant device; it may remain there", "topic", p.st.Topic)
	case !p.warned:
		p.warned = true
		p.log.Warn("the broker did not deliver back the Home Assistant device config: if its ACL refuses "+p.o.Config.Prefix+"/#, Home Assistant will not see this host (nothing else is affected)", "topic", p.topic, "waited", p.o.EchoTimeout)
	}
}

func (p *Publisher) load() (published, error) {
	services.RemoveTemps(p.path)
	b, err := os.ReadFile(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		return published{}, nil
	}
	if err != nil {
		return published{}, err
	}
	var st published
	if err := json.Unmarshal(b, &st); err != nil {
		return published{}, &fs.PathError{Op: "parse", Path: p.path, Err: err}
	}
	return st, nil
}

func (p *Publisher) save() {
	b, _ := json.Marshal(p.st)
	if err := services.WriteFileAtomic(p.path, b, 0o644); err != nil {
		p.log.Warn("save what was published to Home Assistant; a component removed before the next start may stay there as unavailable", "err", err)
	}
}

// forget removes StateFile: nothing is published any more.
func (p *Publisher) forget() {
	p.st = published{}
	if err := os.Remove(p.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.log.Warn("remove "+p.path, "err", err)
	}
}
