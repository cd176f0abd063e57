package simcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/agent/cluster"
)

// Options shape a simulated cluster. Zero values mean the defaults given.
type Options struct {
	// Hosts is how many simulated hosts to run.
	Hosts int
	// Dir holds each host's state directory, Dir/<host>. Required: the
	// caller owns it (t.TempDir, b.TempDir).
	Dir string
	// Broker is what the hosts connect to; nil starts the embedded broker
	// for the cluster, closed with it. A broker passed in stays open.
	Broker Broker
	// ReportPerHost sets discovery.report_per_host on every host.
	ReportPerHost bool
	// Listeners starts one external report listener per host (see the
	// package documentation).
	Listeners bool
	// Parallel is how many hosts start at once, 50 by default.
	Parallel int
	// Prefix starts every host's name, "sim" by default: sim0001, sim0002...
	Prefix string
	// Configure, when set, edits each host's configuration (the i-th,
	// from 0) before its agent is built: its services' blocks, say.
	Configure func(i int, cfg *agent.Config)
	// Logger gets the agents' warnings and errors; nil discards them.
	Logger *slog.Logger
}

// DefaultParallel is how many hosts Start starts at once by default: enough
// to keep two cores busy while each waits for its broker round trips.
const DefaultParallel = 50

// readyTimeout bounds one host's start, from agent.New to Ready.
const readyTimeout = 30 * time.Second

// Cluster is a running simulated cluster.
type Cluster struct {
	opts      Options
	broker    Broker
	ownBroker bool
	port      int
	hosts     []string
	agents    []*agent.Agent
	listeners *listeners
	started   time.Duration

	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error // agents' Run errors
	closed sync.Once
	err    error
}

// fdsPerHost is what one host costs in file descriptors: its session's
// connection and its monitor's socket, the broker's end of the connection
// when the broker runs in this process, and the same again for its
// listener's connection (measured: 3011 descriptors for 1000 hosts on the
// embedded broker, 5011 with listeners).
func fdsPerHost(embedded, listeners bool) int {
	conn := 1
	if embedded {
		conn = 2
	}
	n := conn + 1
	if listeners {
		n += conn
	}
	return n
}

// fdHeadroom is kept free for the sweeper, state files being written, the
// test and the runtime.
const fdHeadroom = 128

// Start starts opts.Hosts simulated hosts, and their listeners, and
// returns once every one is serving: connected, subscribed, online. On
// error, whatever started is stopped again.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Hosts < 1 {
		return nil, fmt.Errorf("simcluster: %d hosts: need at least one", opts.Hosts)
	}
	if opts.Dir == "" {
		return nil, errors.New("simcluster: no state directory (Options.Dir)")
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.Prefix == "" {
		opts.Prefix = "sim"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	_, embedded := opts.Broker.(*Embedded)
	if err := checkFDs(opts.Hosts, fdsPerHost(embedded || opts.Broker == nil, opts.Listeners)); err != nil {
		return nil, err
	}
	port, err := freeUDPPort()
	if err != nil {
		return nil, fmt.Errorf("simcluster: discovery port: %w", err)
	}
	c := &Cluster{opts: opts, broker: opts.Broker, port: port}
	if c.broker == nil {
		b, err := StartEmbedded(opts.Logger)
		if err != nil {
			return nil, fmt.Errorf("simcluster: %w", err)
		}
		c.broker, c.ownBroker = b, true
	}
	begin := time.Now()
	actx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.hosts = make([]string, opts.Hosts)
	c.agents = make([]*agent.Agent, opts.Hosts)
	for i := range c.hosts {
		c.hosts[i] = fmt.Sprintf("%s%04d", opts.Prefix, i+1)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Parallel)
	for i := range c.hosts {
		g.Go(func() error { return c.startHost(gctx, actx, i) })
	}
	if err := g.Wait(); err != nil {
		c.Close()
		return nil, err
	}
	if opts.Listeners {
		l, err := startListeners(ctx, c.broker.URL(), c.listenTopics(), opts.Parallel)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.listeners = l
	}
	c.started = time.Since(begin)
	return c, nil
}

// config is the i-th host's configuration.
func (c *Cluster) config(i int) agent.Config {
	cfg := agent.DefaultConfig()
	cfg.Host = c.hosts[i]
	cfg.StateDir = filepath.Join(c.opts.Dir, cfg.Host)
	cfg.Sim = true
	cfg.LogLevel = "warn"
	cfg.MQTT.Broker, cfg.MQTT.Keepalive = c.broker.URL(), agent.DefaultKeepalive
	cfg.Discovery.Port = c.port
	cfg.Discovery.Interfaces = []string{"lo"}
	cfg.Discovery.ReportPerHost = c.opts.ReportPerHost
	if c.opts.Configure != nil {
		c.opts.Configure(i, &cfg)
	}
	return cfg
}

// startHost builds the i-th agent, runs it until actx ends and waits until
// it serves.
func (c *Cluster) startHost(ctx, actx context.Context, i int) error {
	cfg := c.config(i)
	a, err := agent.New(cfg, c.opts.Logger)
	if err != nil {
		return fmt.Errorf("simcluster: host %s: %w", cfg.Host, err)
	}
	c.agents[i] = a
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := a.Run(actx); err != nil {
			c.mu.Lock()
			c.errs = append(c.errs, fmt.Errorf("host %s: %w", cfg.Host, err))
			c.mu.Unlock()
		}
	}()
	t := time.NewTimer(readyTimeout)
	defer t.Stop()
	select {
	case <-a.Ready():
		return nil
	case <-t.C:
		return fmt.Errorf("simcluster: host %s: not serving after %v (broker %s)", cfg.Host, readyTimeout, c.broker.URL())
	case <-ctx.Done():
		return fmt.Errorf("simcluster: host %s: %w", cfg.Host, ctx.Err())
	}
}

// listenTopics is, for each host, the topic its listener subscribes to.
func (c *Cluster) listenTopics() map[string]string {
	topics := make(map[string]string, len(c.hosts))
	for i, h := range c.hosts {
		topics[h] = c.config(i).Discovery.ReportTopicFor(h)
	}
	return topics
}

// Hosts names the cluster's hosts, in the order they were started.
func (c *Cluster) Hosts() []string { return c.hosts }

// Agents are the cluster's agents, in the order of Hosts.
func (c *Cluster) Agents() []*agent.Agent { return c.agents }

// Broker is the broker the hosts use.
func (c *Cluster) Broker() Broker { return c.broker }

// Port is the UDP port every monitor of the cluster listens on.
func (c *Cluster) Port() int { return c.port }

// StartTime is how long Start took to get every host serving.
func (c *Cluster) StartTime() time.Duration { return c.started }

// Client is the configuration of a command run against the cluster from a
// host called name: a sweep, an inventory read.
func (c *Cluster) Client(name string) cluster.Config {
	cfg := c.config(0)
	cfg.Host = name
	return cfg.Client()
}

// ReportCounts are what the external listeners received, summed over all
// of them.
type ReportCounts struct {
	// Received counts every report delivered to a listener.
	Received uint64
	// Own counts those about the listener's own host: the ones a service
	// outside the agent answers.
	Own uint64
	// Lost counts listeners whose connection dropped: a broker that
	// cannot keep up may disconnect its slowest clients. They do not
	// reconnect.
	Lost uint64
}

// Reports returns what the listeners received so far; zero without
// listeners.
func (c *Cluster) Reports() ReportCounts {
	if c.listeners == nil {
		return ReportCounts{}
	}
	return c.listeners.counts()
}

// Close stops every host (each says goodbye on its status topic), the
// listeners, and the broker when Start started it. It returns what went
// wrong with any of them; calling it again returns the same.
func (c *Cluster) Close() error {
	c.closed.Do(func() {
		var errs []error
		if c.listeners != nil {
			c.listeners.close()
		}
		c.cancel()
		c.wg.Wait()
		c.mu.Lock()
		errs = append(errs, c.errs...)
		c.mu.Unlock()
		// Only once every agent is gone: mochi v2.7.9 can deadlock in
		// Close while a client reconnects.
		if c.ownBroker {
			errs = append(errs, c.broker.Close())
		}
		if err := errors.Join(errs...); err != nil {
			c.err = fmt.Errorf("simcluster: close: %w", err)
		}
	})
	return c.err
}

// checkFDs fails when hosts, at perHost descriptors each, would not fit
// under the process's limit: better now than a thousand "too many open
// files" later. Go raises the soft limit to the hard one at start-up.
func checkFDs(hosts, perHost int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("simcluster: file descriptor limit: %w", err)
	}
	need := uint64(hosts*perHost + fdHeadroom)
	if need > lim.Cur {
		return fmt.Errorf("simcluster: %d hosts need about %d file descriptors, over this process's limit of %d (raise the hard limit: ulimit -Hn, LimitNOFILE=)", hosts, need, lim.Cur)
	}
	return nil
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
