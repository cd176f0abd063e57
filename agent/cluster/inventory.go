package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/services"
)

// Schema is the version of the Inventory document; it goes up when a
// field changes meaning or goes away, never for an added field.
const Schema = 1

// Sources of an Inventory.
const (
	// SourceSweep: the answers to a probe, just now.
	SourceSweep = "sweep"
	// SourceRetained: the status and description every host keeps
	// retained on the broker, read at any time.
	SourceRetained = "retained"
)

// Host statuses in an Inventory.
const (
	StatusOnline  = "online"  // answered the sweep, or its status says so
	StatusOffline = "offline" // its status says so (a clean stop or its last will)
	StatusMissing = "missing" // expected by the sweep, never answered
	StatusUnknown = "unknown" // a description without a status
)

// Inventory is the cluster as rollcall knows it: from a sweep, or from the
// retained topics. `rollcall sweep --json` and `rollcall inventory --json`
// print it, and every sweep publishes it, retained, on the inventory
// topic.
type Inventory struct {
	Schema int    `json:"schema"`
	Source string `json:"source"`
	// Sweep is this sweep (source sweep), or the last one the broker
	// keeps (source retained).
	Sweep *SweepInfo `json:"sweep,omitempty"`
	// Hosts is sorted by host name, then machine.
	Hosts []Host `json:"hosts"`
	// Missing names the hosts a sweep expected that never answered.
	Missing   []string   `json:"missing"`
	Conflicts []Conflict `json:"conflicts"`
}

// SweepInfo is what one sweep did.
type SweepInfo struct {
	ID      int64     `json:"id"`
	ReplyTo string    `json:"replyto"`
	Topic   string    `json:"topic"`
	Started time.Time `json:"started"`
	// Complete is true when every expected host answered with all its
	// services before the timeout; CompleteMS is the time from the first
	// probe to the answer that completed it, 0 when it never did.
	Complete   bool    `json:"complete"`
	CompleteMS float64 `json:"complete_ms"`
	// ElapsedMS is the time from the first probe to the sweep's end.
	ElapsedMS float64 `json:"elapsed_ms"`
	Probes    int     `json:"probes"`
	// Missing names the hosts it expected that never answered.
	Missing []string `json:"missing"`
}

// Host is one machine of the cluster.
type Host struct {
	Host    string `json:"host"`
	Machine string `json:"machine,omitempty"`
	Status  string `json:"status"`
	// IPAddr is the address the sweep reached it at; IPAddrs every
	// address its description lists.
	IPAddr  string   `json:"ipaddr,omitempty"`
	IPAddrs []string `json:"ipaddrs,omitempty"`
	ExtAddr string   `json:"extaddr,omitempty"`
	// Version is its description's version; Rollcall its agent's.
	Version  uint64 `json:"version,omitempty"`
	Rollcall string `json:"rollcall,omitempty"`
	// Conflict is true when another machine uses the same host name. The
	// two are never merged.
	Conflict bool      `json:"conflict,omitempty"`
	Services []Service `json:"services"`
	// MissingServices are services the host lists that did not answer.
	MissingServices []string `json:"missing_services,omitempty"`
	// Invalid says why its retained description could not be read.
	Invalid string `json:"invalid,omitempty"`
}

// Service is one service of a host, without its state.
type Service = discovery.ServiceInfo

// Conflict is a host name used by more than one machine. IPAddrs
// parallels Machines where known.
type Conflict struct {
	Host     string   `json:"host"`
	Machines []string `json:"machines"`
	IPAddrs  []string `json:"ipaddrs,omitempty"`
}

// FromSweep turns a sweep's result into an Inventory.
func FromSweep(r discovery.Inventory) Inventory {
	inv := Inventory{
		Schema: Schema,
		Source: SourceSweep,
		Sweep: &SweepInfo{ID: r.ID, ReplyTo: r.ReplyTo, Topic: r.Topic, Started: r.Started, Complete: r.Complete,
			CompleteMS: r.CompleteMS, ElapsedMS: r.ElapsedMS, Probes: r.Probes, Missing: nonNil(r.Missing)},
		Hosts:     make([]Host, 0, len(r.Hosts)),
		Missing:   nonNil(r.Missing),
		Conflicts: make([]Conflict, 0, len(r.Conflicts)),
	}
	for _, h := range r.Hosts {
		svcs := h.Services
		if svcs == nil {
			svcs = []Service{}
		}
		inv.Hosts = append(inv.Hosts, Host{Host: h.Hostname, Machine: h.Machine, Status: h.Status, IPAddr: h.IPAddr,
			ExtAddr: h.ExtAddr, Version: h.Version, Conflict: h.Conflict, Services: svcs, MissingServices: h.MissingServices})
	}
	for _, c := range r.Conflicts {
		inv.Conflicts = append(inv.Conflicts, Conflict{Host: c.Hostname, Machines: c.Machines, IPAddrs: c.IPAddrs})
	}
	return inv
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ReadInventory reads the retained inventory. With watch set it then
// calls watch with the new inventory after every change until ctx ends.
func ReadInventory(ctx context.Context, cfg Config, log *slog.Logger, watch func(Inventory)) (Inventory, error) {
	s, err := connect(ctx, cfg, "inventory", log)
	if err != nil {
		return Inventory{}, err
	}
	defer s.Close("", nil)

	var (
		mu      sync.Mutex
		r       = retained{prefix: cfg.prefix(), status: map[string]string{}, descs: map[string]hostDesc{}, summary: map[string]bool{}}
		changed = make(chan struct{}, 1)
		p       = cfg.prefix()
	)
	invTopic := cfg.inventoryTopic()
	filters := []string{p.Topic("+", "status"), p.Topic("+", "description"), p.Topic("+", "services"), invTopic}
	err = subscribeRetained(s, p, filters, 3*time.Second, func(m services.Message) {
		mu.Lock()
		defer mu.Unlock()
		r.take(m, invTopic)
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return Inventory{}, err
	}
	// What arrived before the picture is not a change to report.
	select {
	case <-changed:
	default:
	}

	snapshot := func() Inventory {
		mu.Lock()
		defer mu.Unlock()
		return r.inventory()
	}
	inv := snapshot()
	if watch == nil {
		return inv, nil
	}
	watch(inv)
	for {
		select {
		case <-ctx.Done():
			return inv, nil
		case <-changed:
			// Let a burst (a sweep, a host coming up) settle first.
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return inv, nil
			}
			inv = snapshot()
			watch(inv)
		}
	}
}

// retained is what the broker keeps about the cluster.
type retained struct {
	// prefix is the topic prefix the topics taken lie under.
	prefix  services.Prefix
	status  map[string]string
	descs   map[string]hostDesc
	summary map[string]bool // hosts with a rollcall summary
	last    *Inventory
}

// hostDesc is a host's retained description, or why it is unreadable.
type hostDesc struct {
	d       *services.HostDescription
	invalid string
}

func (r *retained) take(m services.Message, invTopic string) {
	rest, ok := r.prefix.Trim(m.Topic)
	if !ok {
		return
	}
	host, kind, _ := strings.Cut(rest, "/")
	switch {
	case m.Topic == invTopic:
		var inv Inventory
		if len(m.Payload) == 0 {
			r.last = nil
		} else if json.Unmarshal(m.Payload, &inv) == nil && inv.Schema == Schema {
			r.last = &inv
		}
	case kind == "services":
		_, err := discovery.ParseSummary(m.Payload)
		r.summary[host] = len(m.Payload) > 0 && err == nil
	case kind == "status":
		if len(m.Payload) == 0 {
			delete(r.status, host)
		} else {
			r.status[host] = string(m.Payload)
		}
	case kind == "description":
		if len(m.Payload) == 0 {
			delete(r.descs, host)
			return
		}
		var d services.HostDescription
		switch err := json.Unmarshal(m.Payload, &d); {
		case err != nil:
			r.descs[host] = hostDesc{invalid: "not a description: " + err.Error()}
		case d.Protocol != discovery.Protocol:
			r.descs[host] = hostDesc{invalid: fmt.Sprintf("protocol %q, not %q", d.Protocol, discovery.Protocol)}
		case d.Host != host:
			r.descs[host] = hostDesc{invalid: fmt.Sprintf("describes host %q", d.Host)}
		default:
			r.descs[host] = hostDesc{d: &d}
		}
	}
}

// inventory is the cluster the retained topics show. A name is a rollcall
// host by its description or its summary: another system's <name>/status
// on a shared broker is no host, and a description that does not parse is
// shown as invalid only for a name rollcall's own summary vouches for.
func (r *retained) inventory() Inventory {
	names := map[string]bool{}
	for h, hd := range r.descs {
		if hd.d != nil {
			names[h] = true
		}
	}
	for h, ok := range r.summary {
		if ok {
			names[h] = true
		}
	}
	inv := Inventory{Schema: Schema, Source: SourceRetained, Hosts: []Host{}, Missing: []string{}, Conflicts: []Conflict{}}
	if r.last != nil {
		inv.Sweep = r.last.Sweep
	}
	conflicts := map[string]map[string]bool{}
	for _, name := range slices.Sorted(mapKeys(names)) {
		h := Host{Host: name, Status: r.status[name], Services: []Service{}}
		if h.Status == "" {
			h.Status = StatusUnknown
		}
		if hd, ok := r.descs[name]; ok {
			h.Invalid = hd.invalid
			if d := hd.d; d != nil {
				h.Machine, h.IPAddrs, h.ExtAddr, h.Version, h.Rollcall = d.Machine, d.IPAddrs, d.ExtAddr, d.Version, d.Rollcall
				for _, sd := range d.Services {
					h.Services = append(h.Services, discovery.NewReply(discovery.Report{}, sd, nil).ServiceInfo)
				}
				// In the order a sweep lists them.
				slices.SortStableFunc(h.Services, func(x, y Service) int { return cmp.Compare(x.Function, y.Function) })
				if len(d.Conflicts) > 0 {
					h.Conflict = true
					m := map[string]bool{d.Machine: true}
					for _, c := range d.Conflicts {
						m[c] = true
					}
					conflicts[name] = m
				}
			}
		}
		inv.Hosts = append(inv.Hosts, h)
	}
	if r.last != nil {
		for _, c := range r.last.Conflicts {
			if conflicts[c.Host] == nil {
				conflicts[c.Host] = map[string]bool{}
			}
			for _, m := range c.Machines {
				conflicts[c.Host][m] = true
			}
		}
	}
	for h, ms := range conflicts {
		inv.Conflicts = append(inv.Conflicts, Conflict{Host: h, Machines: slices.Sorted(mapKeys(ms))})
	}
	slices.SortFunc(inv.Conflicts, func(a, b Conflict) int { return cmp.Compare(a.Host, b.Host) })
	return inv
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Table writes the inventory for people: a line per host, then what is
// missing and what conflicts. Everything that came over the network is
// escaped: a retained description cannot move the cursor or recolour a
// terminal.
func (inv Inventory) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSTATUS\tIPADDR\tVERSION\tSERVICES")
	for _, h := range inv.Hosts {
		names := make([]string, 0, len(h.Services))
		for _, s := range h.Services {
			n := s.Function
			if s.Health != "" && s.Health != "ok" {
				n += "(" + s.Health + ")"
			}
			names = append(names, fmt.Sprintf("%s[%d in, %d out]", n, len(s.Inputs), len(s.Outputs)))
		}
		status := h.Status
		if len(h.MissingServices) > 0 {
			status += ", no reply from " + strings.Join(h.MissingServices, ",")
		}
		if h.Conflict {
			status += ", conflict"
		}
		if h.Invalid != "" {
			status += ", invalid description: " + h.Invalid
		}
		ip := h.IPAddr
		if ip == "" {
			ip = strings.Join(h.IPAddrs, ",")
		}
		ver := "-"
		if h.Version > 0 {
			ver = strconv.FormatUint(h.Version, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", Clean(h.Host), Clean(status), dash(Clean(ip)), ver, dash(Clean(strings.Join(names, " "))))
	}
	tw.Flush()
	if len(inv.Missing) > 0 {
		fmt.Fprintf(w, "missing: %s\n", Clean(strings.Join(inv.Missing, ", ")))
	}
	for _, c := range inv.Conflicts {
		parts := make([]string, len(c.Machines))
		for i, m := range c.Machines {
			parts[i] = discovery.ShortID(m)
			if i < len(c.IPAddrs) {
				parts[i] += " (" + dash(c.IPAddrs[i]) + ")"
			}
		}
		fmt.Fprintf(w, "conflict: host name %s is used by %d machines: %s\n", Clean(c.Host), len(c.Machines), Clean(strings.Join(parts, ", ")))
	}
	if s := inv.Sweep; s != nil && inv.Source == SourceRetained {
		fmt.Fprintf(w, "last sweep: %s, complete: %v", s.Started.Format(time.RFC3339), s.Complete)
		if s.Complete {
			fmt.Fprintf(w, " in %.1f ms", s.CompleteMS)
		}
		if len(s.Missing) > 0 {
			fmt.Fprintf(w, ", missing: %s", Clean(strings.Join(s.Missing, ", ")))
		}
		fmt.Fprintln(w)
	}
}

// Clean escapes control and formatting characters (and invalid UTF-8) in
// s, so that text from the network prints as itself: no escape sequence,
// no right-to-left override reaches the terminal.
func Clean(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || r == unicode.ReplacementChar }) {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
