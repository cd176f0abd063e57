package dashboard

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rollcall/rollcall/agent/cluster"
)

// Options is what a dashboard needs.
type Options struct {
	Config Config
	// Cluster says how to reach the broker, as for the CLI verbs.
	Cluster cluster.Config
	Log     *slog.Logger
}

// logSize is how many entries the event log keeps.
const logSize = 100

// A Server is one dashboard: it follows the cluster through the broker
// and serves the page, the API and the live events.
type Server struct {
	cfg     Config
	cluster cluster.Config
	log     *slog.Logger
	// passSum is the password's SHA-256, compared in constant time; set
	// when there is a password.
	passSum  *[32]byte
	handler  http.Handler
	hub      *hub
	ready    chan struct{}
	isReady  sync.Once
	describe chan struct{}

	mu      sync.Mutex
	client  *cluster.Client // requests; nil while not connected
	inv     cluster.Inventory
	haveInv bool
	known   map[string]bool   // hosts of the inventory
	details map[string]detail // by host
	asked   map[string]uint64 // description version last asked for, by host
	values  map[string]Value  // by valueKey
	status  map[string]string // live status, by host
	entries []Entry           // the event log, oldest first
}

// New builds a dashboard from its options; it reads the password file but
// touches no network.
func New(opts Options) (*Server, error) {
	if errs := opts.Config.Check(); len(errs) > 0 {
		return nil, fmt.Errorf("dashboard: %w", errs)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg: opts.Config, cluster: opts.Cluster, log: log.With("component", "dashboard"),
		hub: newHub(), ready: make(chan struct{}), describe: make(chan struct{}, 1),
		known: map[string]bool{}, details: map[string]detail{}, asked: map[string]uint64{},
		values: map[string]Value{}, status: map[string]string{},
	}
	if f := opts.Config.PasswordFile; f != "" {
		pw, readable, err := readPassword(f)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256([]byte(pw))
		s.passSum = &sum
		if readable {
			s.log.Warn("the dashboard's password file can be read by every user of this machine: chmod 0640 it", "file", f)
		}
	}
	s.handler = s.routes()
	return s, nil
}

// Handler is the page, the API and the events, behind the password when
// there is one. Follow must run for it to have anything to show.
func (s *Server) Handler() http.Handler { return s.handler }

// Ready is closed once the dashboard has read the cluster: its first
// inventory and the descriptions it lists.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run serves the dashboard on ln and follows the cluster until ctx ends;
// it closes ln. Stopping is a clean exit (nil).
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	if exposed(ln.Addr()) && s.passSum == nil {
		msg := "the dashboard listens beyond loopback without a password: anyone on the network can see the cluster"
		if s.cfg.AllowControl {
			msg = "the dashboard listens beyond loopback without a password and allows control: anyone on the network can drive the outputs"
		}
		s.log.Warn(msg+"; set dashboard.password_file", "listen", ln.Addr().String())
	}
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Follow(gctx) })
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("dashboard: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		s.hub.close() // the event streams end, so Shutdown need not wait for them
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	})
	return g.Wait()
}

// exposed reports whether addr can be reached from beyond this machine:
// any address but a loopback one (an unspecified address listens on all).
func exposed(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return true
	}
	return !tcp.IP.IsLoopback()
}

// Follow connects to the broker and keeps the dashboard's picture of the
// cluster until ctx ends (nil) or the broker cannot be reached at first.
// It reads the retained inventory (hosts, services), watches every
// input, output and status, and reads a host's description again when
// its version changes (halted flags, setup schemas).
func (s *Server) Follow(ctx context.Context) error {
	defer s.hub.close()
	// Requests and the watch have sessions of their own: mochi-mqtt stops
	// delivering a client's later subscriptions (a result topic) once it
	// holds one that starts with '+' (see session.subscribe).
	ctl, err := cluster.Dial(ctx, s.cluster, "dashboard", s.log.With("session", "requests"))
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	defer ctl.Close()
	watch, err := cluster.Dial(ctx, s.cluster, "dashboard-watch", s.log.With("session", "watch"))
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	defer watch.Close()
	s.mu.Lock()
	s.client = ctl
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.client = nil
		s.mu.Unlock()
	}()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := watch.Watch(gctx, "+", "", s.change)
		if gctx.Err() != nil {
			return nil
		}
		return err
	})
	g.Go(func() error {
		_, err := cluster.ReadInventory(gctx, s.cluster, s.log.With("session", "inventory"), s.takeInventory)
		if err != nil {
			return fmt.Errorf("dashboard: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		s.describeLoop(gctx)
		return nil
	})
	return g.Wait()
}

// change takes one value or status from the watch.
func (s *Server) change(ch cluster.Change) {
	v := Value{Host: ch.Host, Service: ch.Service, Kind: ch.Kind, Name: ch.Name, Value: payloadValue([]byte(ch.Value)), Time: ch.Time}
	s.mu.Lock()
	known := s.known[ch.Host]
	var was string
	if ch.Kind == "status" {
		was = s.status[ch.Host]
		s.status[ch.Host] = ch.Value
	} else {
		s.values[v.key()] = v
	}
	s.mu.Unlock()
	if !known {
		return
	}
	s.hub.value(v)
	if ch.Kind == "status" && !ch.Retained && was != ch.Value && ch.Value != "" {
		s.record(Entry{Time: ch.Time, Host: ch.Host, Op: "status", What: ch.Value, OK: ch.Value == cluster.StatusOnline})
	}
}

// takeInventory takes a new inventory: it asks for the descriptions whose
// version changed, and sends the new state.
func (s *Server) takeInventory(inv cluster.Inventory) {
	s.mu.Lock()
	first := !s.haveInv
	s.inv, s.haveInv = inv, true
	known := make(map[string]bool, len(inv.Hosts))
	want := false
	for _, h := range inv.Hosts {
		known[h.Host] = true
		if h.Version != 0 && s.details[h.Host].version != h.Version && s.asked[h.Host] != h.Version {
			s.asked[h.Host] = h.Version
			want = true
		}
	}
	for h := range s.known {
		if !known[h] { // forgotten: its values go with it
			for k, v := range s.values {
				if v.Host == h {
					delete(s.values, k)
				}
			}
			delete(s.details, h)
			delete(s.asked, h)
			delete(s.status, h)
		}
	}
	s.known = known
	s.mu.Unlock()
	if want {
		select {
		case s.describe <- struct{}{}:
		default:
		}
	} else if first {
		s.isReady.Do(func() { close(s.ready) })
	}
	s.hub.send("state", s.State())
}

// describeLoop reads the retained descriptions when asked: on a short
// session of its own, since a session subscribes a filter only once.
func (s *Server) describeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.describe:
		}
		got, err := s.readDescriptions(ctx)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		if err != nil {
			s.log.Warn("reading the hosts' descriptions", "err", err)
			clear(s.asked) // the next inventory asks again
		}
		for host, d := range got {
			if s.known[host] {
				s.details[host] = d
			}
		}
		s.mu.Unlock()
		s.isReady.Do(func() { close(s.ready) })
		s.hub.send("state", s.State())
	}
}

func (s *Server) readDescriptions(ctx context.Context) (map[string]detail, error) {
	// A short session for each read: its connect is no news.
	c, err := cluster.Dial(ctx, s.cluster, "dashboard-describe", slog.New(atLeast{s.log.Handler(), slog.LevelWarn}))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	raw, err := c.Descriptions(ctx, "+")
	out := map[string]detail{}
	for name, b := range raw {
		host, d, ok := parseDetail(b)
		if ok && name == host {
			out[host] = d
		}
	}
	return out, err
}

// State is the cluster as the page shows it now.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return buildState(s.inv, s.details, s.values, s.status, s.cfg.AllowControl)
}

// Log is the event log, oldest first.
func (s *Server) Log() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Entry{}, s.entries...)
}

// record adds an entry to the event log and sends it to the pages.
func (s *Server) record(e Entry) {
	s.mu.Lock()
	if len(s.entries) == logSize {
		s.entries = append(s.entries[:0], s.entries[1:]...)
	}
	s.entries = append(s.entries, e)
	s.mu.Unlock()
	s.hub.send("log", e)
}

// requests is the client requests go through; nil while not connected.
func (s *Server) requests() *cluster.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client
}

// atLeast passes on only records at min or above.
type atLeast struct {
	slog.Handler
	min slog.Level
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h atLeast) WithAttrs(as []slog.Attr) slog.Handler {
	return atLeast{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h atLeast) WithGroup(name string) slog.Handler {
	return atLeast{Handler: h.Handler.WithGroup(name), min: h.min}
}
