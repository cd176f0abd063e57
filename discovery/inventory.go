package discovery

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Host statuses in an inventory.
const (
	StatusOnline  = "online"
	StatusMissing = "missing"
)

// Inventory is the result of a sweep.
type Inventory struct {
	ID      int64     `json:"id"`
	ReplyTo string    `json:"replyto"`
	Topic   string    `json:"topic"`
	Started time.Time `json:"started"`
	// CompleteMS is the time from the first probe to the reply that
	// completed the expected set: the figure benchmarks report. It is 0
	// when the sweep did not complete.
	CompleteMS float64 `json:"complete_ms"`
	// ElapsedMS is the time from the first probe to the end of the sweep,
	// quiet period included.
	ElapsedMS float64 `json:"elapsed_ms"`
	Probes    int     `json:"probes"`
	// Hosts is sorted by hostname, then machine id. Expected hosts that
	// never answered are listed with status "missing" and no machine.
	Hosts []Host `json:"hosts"`
	// Missing names the expected hosts that never answered.
	Missing   []string   `json:"missing"`
	Conflicts []Conflict `json:"conflicts"`
	// Complete is true when every expected host, and every host heard,
	// answered with all its services before the timeout.
	Complete bool `json:"complete"`
}

// Host is one machine in an inventory.
type Host struct {
	Hostname string `json:"hostname"`
	Machine  string `json:"machine,omitempty"`
	IPAddr   string `json:"ipaddr,omitempty"`
	ExtAddr  string `json:"extaddr,omitempty"`
	Status   string `json:"status"`
	// Conflict is true when another machine answered with the same
	// hostname. The two are never merged.
	Conflict bool `json:"conflict,omitempty"`
	// Version is the version of the host's description the sweep used,
	// when it used its summary.
	Version  uint64        `json:"version,omitempty"`
	Services []ServiceInfo `json:"services"`
	// MissingServices lists services the host named in host_services
	// that did not reply.
	MissingServices []string `json:"missing_services,omitempty"`
}

// Conflict is a hostname claimed by more than one machine. IPAddrs
// parallels Machines.
type Conflict struct {
	Hostname string   `json:"hostname"`
	Machines []string `json:"machines"`
	IPAddrs  []string `json:"ipaddrs"`
}

// Table writes the inventory for people: one line per host, then the
// missing hosts and the conflicts.
func (inv Inventory) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tIPADDR\tSERVICES\tSTATUS")
	for _, h := range inv.Hosts {
		names := make([]string, 0, len(h.Services))
		for _, s := range h.Services {
			n := s.Function
			if s.Health != "" && s.Health != "ok" {
				n += "(" + s.Health + ")"
			}
			names = append(names, n)
		}
		status := h.Status
		if len(h.MissingServices) > 0 {
			status += ", no reply from " + strings.Join(h.MissingServices, ",")
		}
		if h.Conflict {
			status += ", conflict"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Hostname, dash(h.IPAddr), dash(strings.Join(names, ",")), status)
	}
	tw.Flush()
	if len(inv.Missing) > 0 {
		fmt.Fprintf(w, "missing: %s\n", strings.Join(inv.Missing, ", "))
	}
	for _, c := range inv.Conflicts {
		parts := make([]string, len(c.Machines))
		for i, m := range c.Machines {
			parts[i] = fmt.Sprintf("%s (%s)", ShortID(m), dash(c.IPAddrs[i]))
		}
		fmt.Fprintf(w, "conflict: %s claimed by machines %s\n", c.Hostname, strings.Join(parts, ", "))
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
