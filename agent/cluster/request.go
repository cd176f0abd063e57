package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rollcall/rollcall/agent/session"
	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/services"
)

// A Client is a command's short session with the cluster: it sends
// requests to services and waits for their own results, reads retained
// state, and watches values.
type Client struct {
	cfg Config
	s   *session.Session
	log *slog.Logger

	mu      sync.Mutex
	waiting map[string]chan Result // request id -> its result
	subbed  map[string]bool        // result topics subscribed
}

// Dial connects a client; role names it in the broker's client id.
func Dial(ctx context.Context, cfg Config, role string, log *slog.Logger) (*Client, error) {
	s, err := connect(ctx, cfg, role, log)
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, s: s, log: log, waiting: map[string]chan Result{}, subbed: map[string]bool{}}, nil
}

// Close ends the client's session.
func (c *Client) Close() { c.s.Close("", nil) }

// Result is a service's answer to a request, as it came.
type Result struct {
	ID     json.RawMessage  `json:"id,omitempty"`
	Op     string           `json:"op"`
	Status string           `json:"status"`
	Data   json.RawMessage  `json:"data,omitempty"`
	Error  *services.Error  `json:"error,omitempty"`
	Errors []services.Error `json:"errors,omitempty"`
	// Host and Service say who answered; they are not on the wire.
	Host    string `json:"host"`
	Service string `json:"service"`
}

// Problems is every error of the result.
func (r Result) Problems() []services.Error {
	if len(r.Errors) > 0 {
		return r.Errors
	}
	if r.Error != nil {
		return []services.Error{*r.Error}
	}
	return nil
}

// A RefusedError is a request a service answered with an error.
type RefusedError struct{ Result Result }

func (e *RefusedError) Error() string {
	var parts []string
	for _, p := range e.Result.Problems() {
		parts = append(parts, p.Error())
	}
	return fmt.Sprintf("%s/%s refused the %s: %s", e.Result.Host, e.Result.Service, e.Result.Op, strings.Join(parts, "; "))
}

// ErrNoAnswer is wrapped when a service does not answer in time.
var ErrNoAnswer = errors.New("no answer")

// DefaultRequestTimeout is how long a request waits for its result.
const DefaultRequestTimeout = 5 * time.Second

// Do sends payload to <host>/<service>/<suffix> (under the topic prefix,
// when there is one; suffix "setup",
// "set/<name>", "control", "get[/...]") with a fresh request id, and
// waits for the result carrying that id. A JSON or YAML object payload
// gets the id added; anything else is sent as a JSON object built by the
// caller (see SetPayload, ControlPayload). A refusal is a *RefusedError
// holding the result.
func (c *Client) Do(ctx context.Context, host, service, suffix string, payload map[string]any) (Result, error) {
	if !services.ValidTopicName(host) || !services.ValidTopicName(service) {
		return Result{}, fmt.Errorf("%q/%q is not a host and a service", host, service)
	}
	id := newRequestID()
	body := map[string]any{}
	for k, v := range payload {
		body[k] = v
	}
	body["id"] = id
	b, err := json.Marshal(body)
	if err != nil {
		return Result{}, err
	}
	ch := make(chan Result, 1)
	c.mu.Lock()
	c.waiting[strconv.Quote(id)] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, strconv.Quote(id))
		c.mu.Unlock()
	}()
	if err := c.results(host, service); err != nil {
		return Result{}, err
	}
	topic := c.cfg.prefix().Topic(host, service, suffix)
	if err := c.s.PublishWait(topic, 1, false, b, DefaultRequestTimeout); err != nil {
		return Result{}, fmt.Errorf("%s: %w", topic, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRequestTimeout)
		defer cancel()
	}
	select {
	case r := <-ch:
		r.Host, r.Service = host, service
		if r.Status != "ok" {
			return r, &RefusedError{r}
		}
		return r, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Result{Host: host, Service: service}, fmt.Errorf("%s: %w from %s/%s (is the host online, does it run that service?)", topic, ErrNoAnswer, host, service)
		}
		return Result{}, ctx.Err()
	}
}

// results subscribes, once, to a service's result topic, subscribing
// before any request is sent so that no result is missed.
func (c *Client) results(host, service string) error {
	topic := services.Topics{Prefix: c.cfg.prefix(), Host: host, Service: service}.Result()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subbed[topic] {
		return nil
	}
	err := c.s.Subscribe(topic, func(m services.Message) {
		var r Result
		if json.Unmarshal(m.Payload, &r) != nil || len(r.ID) == 0 {
			return
		}
		c.mu.Lock()
		ch := c.waiting[string(r.ID)]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- r:
			default:
			}
		}
	})
	if err == nil {
		c.subbed[topic] = true
	}
	return err
}

func newRequestID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "rc-" + hex.EncodeToString(b[:])
}

// SetupPayload reads a setup (JSON or YAML) as an object to send; an empty
// document is the query for the current setup.
func SetupPayload(doc []byte) (map[string]any, error) {
	if strings.TrimSpace(string(doc)) == "" {
		return map[string]any{}, nil
	}
	t, err := services.Parse(doc, services.MaxPayload)
	if err != nil {
		return nil, err
	}
	m, ok := t.(map[string]any)
	if !ok {
		return nil, errors.New("a setup is an object of keys and values")
	}
	return m, nil
}

// SetPayload is the payload of a set: value as the service takes it (a
// number, a word such as on/off, or true/false), and a pulse duration.
func SetPayload(value string, pulse time.Duration) map[string]any {
	var v any = value
	var j any
	if json.Unmarshal([]byte(value), &j) == nil {
		switch j.(type) {
		case float64, bool:
			v = json.RawMessage(value)
		}
	}
	p := map[string]any{"value": v}
	if pulse > 0 {
		p["for"] = pulse.String()
	}
	return p
}

// Hosts reads the retained summaries of every host that is online: its
// name and services. A host is a rollcall host only by its summary, so a
// foreign device's <name>/status is no host.
func (c *Client) Hosts(ctx context.Context) ([]discovery.Summary, error) {
	var (
		mu     sync.Mutex
		status = map[string]string{}
		sums   = map[string]discovery.Summary{}
	)
	p := c.cfg.prefix()
	err := subscribeRetained(c.s, p, []string{p.Topic("+", "status"), p.Topic("+", "services")}, 3*time.Second, func(m services.Message) {
		host, kind, _ := c.cfg.host(m.Topic)
		mu.Lock()
		defer mu.Unlock()
		switch kind {
		case "status":
			status[host] = string(m.Payload)
		case "services":
			if s, err := discovery.ParseSummary(m.Payload); err == nil && s.Host == host {
				sums[host] = s
			}
		}
	})
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	var out []discovery.Summary
	for _, h := range slices.Sorted(mapKeys(sums)) {
		if status[h] == "online" {
			out = append(out, sums[h])
		}
	}
	return out, nil
}

// Retained reads the retained messages under filter, by topic. The filter
// is taken as it is, the topic prefix not added.
func (c *Client) Retained(ctx context.Context, filter string) (map[string][]byte, error) {
	var mu sync.Mutex
	got := map[string][]byte{}
	err := subscribeRetained(c.s, c.cfg.prefix(), []string{filter}, 3*time.Second, func(m services.Message) {
		if !m.Retained {
			return
		}
		mu.Lock()
		got[m.Topic] = m.Payload
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	return got, err
}

// Descriptions reads the retained descriptions of host, or of every host
// when host is "+", by host name.
func (c *Client) Descriptions(ctx context.Context, host string) (map[string][]byte, error) {
	raw, err := c.Retained(ctx, c.cfg.prefix().Topic(host, "description"))
	out := make(map[string][]byte, len(raw))
	for topic, b := range raw {
		if h, kind, ok := c.cfg.host(topic); ok && kind == "description" {
			out[h] = b
		}
	}
	return out, err
}

// Forget clears the retained topics of a host that is gone: its status,
// description, summary, values and any request retained by mistake. A
// host that says it is online is refused unless force is set: its agent
// would only publish them again.
func (c *Client) Forget(ctx context.Context, host string, force bool) ([]string, error) {
	if !services.ValidTopicName(host) {
		return nil, fmt.Errorf("%q is not a host name", host)
	}
	p := c.cfg.prefix()
	topics, err := c.Retained(ctx, p.Topic(host, "#"))
	if err != nil {
		return nil, err
	}
	if string(topics[p.Topic(host, "status")]) == "online" && !force {
		return nil, fmt.Errorf("%s says it is online: stop its agent first, or use --force", host)
	}
	var cleared []string
	for _, t := range slices.Sorted(mapKeys(topics)) {
		if err := c.s.PublishWait(t, 1, true, nil, DefaultRequestTimeout); err != nil {
			return cleared, fmt.Errorf("clear %s: %w", t, err)
		}
		cleared = append(cleared, t)
	}
	return cleared, nil
}

// A Change is one value an input or output took.
type Change struct {
	Time    time.Time `json:"time"`
	Host    string    `json:"host"`
	Service string    `json:"service"`
	Kind    string    `json:"kind"` // input, output, status
	Name    string    `json:"name"`
	Value   string    `json:"value"`
	// Retained is set for the value the broker held when watching began.
	Retained bool `json:"retained,omitempty"`
}

// Watch calls f with the values of host's inputs and outputs (of one
// service, when service is not empty) and its status, as they change,
// starting with those the broker holds, until ctx ends.
func (c *Client) Watch(ctx context.Context, host, service string, f func(Change)) error {
	svc := "+"
	if service != "" {
		svc = service
	}
	changes := make(chan Change, 256)
	p := c.cfg.prefix()
	err := c.s.SubscribeAll([]string{p.Topic(host, svc, "input", "+"), p.Topic(host, svc, "output", "+"), p.Topic(host, "status")}, func(m services.Message) {
		rest, ok := p.Trim(m.Topic)
		if !ok {
			return
		}
		parts := strings.Split(rest, "/")
		ch := Change{Time: time.Now(), Host: parts[0], Value: string(m.Payload), Retained: m.Retained}
		if len(parts) == 2 {
			ch.Kind, ch.Name = "status", "status"
		} else if len(parts) == 4 {
			ch.Service, ch.Kind, ch.Name = parts[1], parts[2], parts[3]
		} else {
			return
		}
		select {
		case changes <- ch:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ch := <-changes:
			f(ch)
		}
	}
}
