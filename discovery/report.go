package discovery

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"

	"github.com/rollcall/rollcall/services"
)

// MaxReply is the largest report or reply ParseReport and ParseReply read.
const MaxReply = services.MaxPayload

// Report is what a monitor publishes on the report topic for each probe it
// accepts: the probe's return address enriched with who this host is and
// where the probe reached it. See the package documentation.
type Report struct {
	Hostname string `json:"hostname"`
	ReplyTo  string `json:"replyto"`
	Cmd      string `json:"cmd"`
	IPAddr   string `json:"ipaddr"`
	Topic    string `json:"topic"`
	ExtAddr  string `json:"extaddr"`
	ID       int64  `json:"id"`
	Machine  string `json:"machine"`
	V        int    `json:"v,omitempty"`
	// Prefix is the host's topic prefix (mqtt.topic_prefix), absent when
	// it has none: replies copy it, and a sweep counts only the replies
	// under its own prefix.
	Prefix services.Prefix `json:"prefix,omitempty"`
}

// ParseReport decodes and validates a report.
func ParseReport(b []byte) (Report, error) {
	if len(b) > MaxReply {
		return Report{}, fmt.Errorf("report: %w: %d bytes", ErrTooLarge, len(b))
	}
	var w struct {
		Report
		ID *int64 `json:"id"`
	}
	if err := unmarshal(b, &w); err != nil {
		return Report{}, fmt.Errorf("report: %w", err)
	}
	r := w.Report
	if w.ID == nil {
		return Report{}, fmt.Errorf("report: %w", &FieldError{"id", "missing"})
	}
	r.ID = *w.ID
	if err := r.validate(true); err != nil {
		return Report{}, fmt.Errorf("report: %w", err)
	}
	return r, nil
}

// Marshal encodes the report.
func (r Report) Marshal() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return b, nil
}

// validate checks the fields a service relies on. strict also checks the
// fields only a monitor fills in, which a reply from a client outside
// rollcall may get wrong without harm.
func (r Report) validate(strict bool) error {
	if err := checkName("hostname", r.Hostname); err != nil {
		return err
	}
	if r.Machine == "" {
		return &FieldError{"machine", "missing"}
	}
	if len(r.Machine) > 128 || !printable(r.Machine) {
		return &FieldError{"machine", "not at most 128 printable characters"}
	}
	if r.ID < 0 {
		return &FieldError{"id", "negative"}
	}
	if why := r.Prefix.Check(); why != "" {
		return &FieldError{"prefix", why}
	}
	if !strict {
		return nil
	}
	if r.Cmd != CmdGetStatus {
		return &FieldError{"cmd", fmt.Sprintf("want %q, got %q", CmdGetStatus, r.Cmd)}
	}
	if err := checkName("replyto", r.ReplyTo); err != nil {
		return err
	}
	if err := checkTopic("topic", r.Topic); err != nil {
		return err
	}
	if r.IPAddr != "" {
		if _, err := netip.ParseAddr(r.IPAddr); err != nil {
			return &FieldError{"ipaddr", "not an IP address"}
		}
	}
	if len(r.ExtAddr) > 255 || !printable(r.ExtAddr) {
		return &FieldError{"extaddr", "not at most 255 printable characters"}
	}
	return nil
}

// ServiceInfo is what one service says about itself in a reply and in an
// inventory: a services.Description without its State.
type ServiceInfo struct {
	Function string               `json:"function"`
	Inputs   []services.Interface `json:"inputs"`
	Outputs  []services.Interface `json:"outputs"`
	Control  string               `json:"control"`
	Setup    string               `json:"setup"`
	Get      string               `json:"get"`
	Result   string               `json:"result,omitempty"`
	Health   string               `json:"health,omitempty"`
	Error    string               `json:"error,omitempty"`
	// External marks a service outside the agent (a program that speaks
	// the protocol itself): the host lists it, and a sweep waits for its
	// own reply.
	External bool `json:"external,omitempty"`
}

// Summary is a host's retained <host>/services: the part of its
// description a sweep needs, small enough for a sweep to read every
// host's at its start. Version is the description's.
type Summary struct {
	// Protocol is Protocol: what makes a retained <name>/services a
	// rollcall host's, on a broker other systems share.
	Protocol string        `json:"protocol"`
	Host     string        `json:"host"`
	Machine  string        `json:"machine"`
	Version  uint64        `json:"version"`
	IPAddrs  []string      `json:"ipaddrs,omitempty"`
	ExtAddr  string        `json:"extaddr,omitempty"`
	Services []ServiceInfo `json:"services"`
}

// Protocol marks a rollcall host's retained summary and description.
const Protocol = "rollcall/1"

// SummaryTopic is where a host keeps its Summary, retained, with no topic
// prefix; a host under one keeps it on Prefix.Topic(SummaryTopic(host)).
func SummaryTopic(host string) string { return host + "/services" }

// ParseSummary decodes a summary and checks what a sweep relies on.
func ParseSummary(b []byte) (Summary, error) {
	if len(b) > MaxReply {
		return Summary{}, fmt.Errorf("summary: %w: %d bytes", ErrTooLarge, len(b))
	}
	var s Summary
	if err := unmarshal(b, &s); err != nil {
		return Summary{}, fmt.Errorf("summary: %w", err)
	}
	if s.Protocol != Protocol {
		return Summary{}, fmt.Errorf("summary: %w", &FieldError{"protocol", fmt.Sprintf("%q, not %q: not a rollcall host", s.Protocol, Protocol)})
	}
	if err := checkName("host", s.Host); err != nil {
		return Summary{}, fmt.Errorf("summary: %w", err)
	}
	if s.Machine == "" || len(s.Machine) > 128 || !printable(s.Machine) {
		return Summary{}, fmt.Errorf("summary: %w", &FieldError{"machine", "not 1-128 printable characters"})
	}
	for i, si := range s.Services {
		if err := checkName(fmt.Sprintf("services[%d].function", i), si.Function); err != nil {
			return Summary{}, fmt.Errorf("summary: %w", err)
		}
		if si.Inputs == nil {
			s.Services[i].Inputs = []services.Interface{}
		}
		if si.Outputs == nil {
			s.Services[i].Outputs = []services.Interface{}
		}
	}
	return s, nil
}

// Info is the part of d a sweep needs: d without its State.
func Info(d services.Description) ServiceInfo {
	in, out := d.Inputs, d.Outputs
	if in == nil {
		in = []services.Interface{}
	}
	if out == nil {
		out = []services.Interface{}
	}
	return ServiceInfo{
		Function: d.Function,
		Inputs:   in,
		Outputs:  out,
		Control:  d.Control,
		Setup:    d.Setup,
		Get:      d.Get,
		Result:   d.Result,
		Health:   d.Health,
		Error:    d.Error,
		External: d.External,
	}
}

// Reply is one service's answer to a report, published on the probe's
// topic. It carries the report's fields, the service's description and the
// names of every built-in service of its host.
type Reply struct {
	Report
	ServiceInfo
	// HostServices names every built-in service of the replying host, so
	// a sweep knows how many replies complete the host. Clients outside
	// rollcall may leave it out.
	HostServices []string `json:"host_services,omitempty"`
}

// NewReply builds the reply of a service described by d to report r.
// State is left out: a sweep wants to know what is there, not its detail.
func NewReply(r Report, d services.Description, hostServices []string) Reply {
	hs := slices.Clone(hostServices)
	slices.Sort(hs)
	return Reply{Report: r, ServiceInfo: Info(d), HostServices: hs}
}

// ParseReply decodes and validates a reply. It asks only for what a sweep
// aggregates on (hostname, machine, function, id), so that a script
// outside rollcall that follows the protocol is counted like a built-in
// service.
func ParseReply(b []byte) (Reply, error) {
	if len(b) > MaxReply {
		return Reply{}, fmt.Errorf("reply: %w: %d bytes", ErrTooLarge, len(b))
	}
	var w struct {
		Reply
		ID *int64 `json:"id"`
	}
	if err := unmarshal(b, &w); err != nil {
		return Reply{}, fmt.Errorf("reply: %w", err)
	}
	r := w.Reply
	if w.ID == nil {
		return Reply{}, fmt.Errorf("reply: %w", &FieldError{"id", "missing"})
	}
	r.ID = *w.ID
	if len(r.HostServices) == 0 {
		r.HostServices = nil
	}
	if err := r.validate(); err != nil {
		return Reply{}, fmt.Errorf("reply: %w", err)
	}
	return r, nil
}

func (r Reply) validate() error {
	if err := r.Report.validate(false); err != nil {
		return err
	}
	if err := checkName("function", r.Function); err != nil {
		return err
	}
	for i, s := range r.HostServices {
		if err := checkName(fmt.Sprintf("host_services[%d]", i), s); err != nil {
			return err
		}
	}
	return nil
}

// Marshal encodes the reply.
func (r Reply) Marshal() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("reply: %w", err)
	}
	return b, nil
}
