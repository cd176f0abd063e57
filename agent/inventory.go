package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/rollcall/rollcall/discovery"
)

// Inventory is the cluster as its retained topics tell it, readable from
// any host at any time: each host's status and description, and the last
// sweep's result.
type Inventory struct {
	Hosts     []HostState          `json:"hosts"`
	Conflicts []HostConflict       `json:"conflicts"`
	LastSweep *discovery.Inventory `json:"last_sweep,omitempty"`
}

// HostState is one host in the inventory.
type HostState struct {
	Host        string       `json:"host"`
	Status      string       `json:"status"` // online, offline, or unknown
	Description *Description `json:"description,omitempty"`
}

// HostConflict is a host name under which several machines were seen.
type HostConflict struct {
	Host     string   `json:"host"`
	Machines []string `json:"machines"`
}

// ReadInventory reads the retained inventory. With watch set it then
// calls watch with the new inventory after every change until ctx ends.
func ReadInventory(ctx context.Context, cfg Config, log *slog.Logger, watch func(Inventory)) (Inventory, error) {
	s, err := client(ctx, cfg, "inventory", log)
	if err != nil {
		return Inventory{}, err
	}
	defer s.Close("", nil)

	var (
		mu      sync.Mutex
		status  = map[string]string{}
		descs   = map[string]*Description{}
		last    *discovery.Inventory
		changed = make(chan struct{}, 1)
	)
	filters := []string{"+/status", "+/description", cfg.Discovery.InventoryTopic}
	err = subscribeRetained(s, filters, 3*time.Second, func(topic string, b []byte) {
		mu.Lock()
		defer mu.Unlock()
		host, kind, _ := strings.Cut(topic, "/")
		switch {
		case topic == cfg.Discovery.InventoryTopic:
			var inv discovery.Inventory
			if json.Unmarshal(b, &inv) == nil {
				last = &inv
			}
		case kind == "status":
			if len(b) == 0 {
				delete(status, host)
			} else {
				status[host] = string(b)
			}
		case kind == "description":
			var d Description
			if len(b) == 0 {
				delete(descs, host)
			} else if json.Unmarshal(b, &d) == nil && d.Host != "" {
				descs[host] = &d
			}
		}
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
		return buildInventory(status, descs, last)
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

func buildInventory(status map[string]string, descs map[string]*Description, last *discovery.Inventory) Inventory {
	hosts := map[string]bool{}
	for h := range status {
		hosts[h] = true
	}
	for h := range descs {
		hosts[h] = true
	}
	inv := Inventory{Hosts: []HostState{}, Conflicts: []HostConflict{}, LastSweep: last}
	names := make([]string, 0, len(hosts))
	for h := range hosts {
		names = append(names, h)
	}
	sort.Strings(names)
	conflicts := map[string]map[string]bool{}
	for _, h := range names {
		st := status[h]
		if st == "" {
			st = "unknown"
		}
		hs := HostState{Host: h, Status: st, Description: descs[h]}
		inv.Hosts = append(inv.Hosts, hs)
		if d := descs[h]; d != nil && len(d.Conflicts) > 0 {
			m := map[string]bool{d.Machine: true}
			for _, c := range d.Conflicts {
				m[c] = true
			}
			conflicts[h] = m
		}
	}
	if last != nil {
		for _, c := range last.Conflicts {
			if conflicts[c.Hostname] == nil {
				conflicts[c.Hostname] = map[string]bool{}
			}
			for _, m := range c.Machines {
				conflicts[c.Hostname][m] = true
			}
		}
	}
	for h, ms := range conflicts {
		c := HostConflict{Host: h}
		for m := range ms {
			c.Machines = append(c.Machines, m)
		}
		sort.Strings(c.Machines)
		inv.Conflicts = append(inv.Conflicts, c)
	}
	sort.Slice(inv.Conflicts, func(i, j int) bool { return inv.Conflicts[i].Host < inv.Conflicts[j].Host })
	return inv
}

// Table writes the inventory for people.
func (inv Inventory) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSTATUS\tIPADDR\tVERSION\tSERVICES")
	for _, h := range inv.Hosts {
		ip, ver, svcs := "-", "-", "-"
		if d := h.Description; d != nil {
			if len(d.IPAddrs) > 0 {
				ip = strings.Join(d.IPAddrs, ",")
			}
			ver = fmt.Sprint(d.Version)
			var names []string
			for _, s := range d.Services {
				n := s.Function
				if s.Health == "error" {
					n += "(error)"
				}
				names = append(names, fmt.Sprintf("%s[%d in, %d out]", n, len(s.Inputs), len(s.Outputs)))
			}
			if len(names) > 0 {
				svcs = strings.Join(names, " ")
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Host, h.Status, ip, ver, svcs)
	}
	tw.Flush()
	for _, c := range inv.Conflicts {
		fmt.Fprintf(w, "CONFLICT: host name %q is used by %d machines: %s\n", c.Host, len(c.Machines), strings.Join(c.Machines, ", "))
	}
	if inv.LastSweep != nil {
		fmt.Fprintf(w, "last sweep: %s, %d hosts, complete in %.1f ms", inv.LastSweep.Started.Format(time.RFC3339), len(inv.LastSweep.Hosts), inv.LastSweep.CompleteMS)
		if len(inv.LastSweep.Missing) > 0 {
			fmt.Fprintf(w, ", missing: %s", strings.Join(inv.LastSweep.Missing, ", "))
		}
		fmt.Fprintln(w)
	}
}
