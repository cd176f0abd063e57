package dashboard

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/services"
)

// State is the cluster as the page shows it: GET /api/state, and the
// "state" event whenever a host, a service or a description changes.
type State struct {
	// Control is set when the dashboard takes writes (allow_control).
	Control   bool               `json:"control"`
	Hosts     []Host             `json:"hosts"`
	Conflicts []cluster.Conflict `json:"conflicts"`
}

// Host is one host of the State.
type Host struct {
	Host string `json:"host"`
	// Status is online, offline or unknown (see cluster.Status*).
	Status   string    `json:"status"`
	Machine  string    `json:"machine,omitempty"`
	Version  uint64    `json:"version,omitempty"`
	Rollcall string    `json:"rollcall,omitempty"`
	IPAddrs  []string  `json:"ipaddrs,omitempty"`
	Conflict bool      `json:"conflict,omitempty"`
	Invalid  string    `json:"invalid,omitempty"`
	Services []Service `json:"services"`
}

// Service is one service of a Host.
type Service struct {
	Function string `json:"function"`
	Health   string `json:"health,omitempty"`
	Error    string `json:"error,omitempty"`
	External bool   `json:"external,omitempty"`
	// Halted is set while the service is emergency-stopped, as its
	// description says.
	Halted bool `json:"halted"`
	// Setup is set when the description carries the setup payload's JSON
	// Schema: GET /api/setup/<host>/<service> gives it for a form.
	Setup bool `json:"setup"`
	// Control is set when the service has a control topic (estop,
	// recover).
	Control bool        `json:"control"`
	Inputs  []Interface `json:"inputs"`
	Outputs []Interface `json:"outputs"`
}

// Interface is one input or output, with its latest value.
type Interface struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Mode string `json:"mode,omitempty"`
	// Settable is set for an output with a set topic.
	Settable bool `json:"settable"`
	// Value is the last value published on its topic (the "value" of a
	// JSON reading, or the bare payload), else the description's.
	Value any `json:"value"`
	// Updated is when the dashboard saw Value published; absent for a
	// value taken from the description.
	Updated *time.Time `json:"updated,omitempty"`
	Class   Class      `json:"class"`
}

// Value is one value an input or output took, or a host's new status:
// the "value" event. Kind is input, output or status.
type Value struct {
	Host    string    `json:"host"`
	Service string    `json:"service,omitempty"`
	Kind    string    `json:"kind"`
	Name    string    `json:"name"`
	Value   any       `json:"value"`
	Time    time.Time `json:"time"`
}

func (v Value) key() string { return valueKey(v.Host, v.Service, v.Kind, v.Name) }

func valueKey(host, service, kind, name string) string {
	return host + "/" + service + "/" + kind + "/" + name
}

// Entry is one line of the event log: the result of a request the
// dashboard sent, or a host going online or offline.
type Entry struct {
	Time    time.Time `json:"time"`
	Host    string    `json:"host"`
	Service string    `json:"service,omitempty"`
	// Op is set, setup, control or status.
	Op string `json:"op"`
	// What is the output set, the control command, or the new status.
	What string `json:"what,omitempty"`
	OK   bool   `json:"ok"`
	// Message says what happened in words: the value taken, or why the
	// dashboard got no result.
	Message string `json:"message,omitempty"`
	// Problems are the service's errors, each with its field.
	Problems []services.Error `json:"problems,omitempty"`
}

// payloadValue is what a published payload means as a value: the "value"
// member of a JSON reading ({"value":21.5,"unit":"°C",...}), a bare JSON
// number, bool or string, or the payload as text.
func payloadValue(p []byte) any {
	p = bytes.TrimSpace(p)
	if len(p) == 0 {
		return nil
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(p))
	d.UseNumber()
	if d.Decode(&v) != nil || d.More() {
		return string(p)
	}
	if m, ok := v.(map[string]any); ok {
		if x, ok := m["value"]; ok {
			return x
		}
		return string(p)
	}
	return v
}

// detail is what the dashboard keeps of a host's retained description
// beyond the inventory: per service, its halted flag, setup schema and
// current setup.
type detail struct {
	version  uint64
	services map[string]serviceDetail
}

type serviceDetail struct {
	halted bool
	schema json.RawMessage
	config json.RawMessage
}

// parseDetail reads the parts of a retained <host>/description the
// inventory leaves out. A service whose state is not an object (an
// external program's) just has none.
func parseDetail(payload []byte) (string, detail, bool) {
	var d struct {
		Host     string `json:"host"`
		Version  uint64 `json:"version"`
		Services []struct {
			Function string          `json:"function"`
			State    json.RawMessage `json:"state"`
		} `json:"services"`
	}
	if json.Unmarshal(payload, &d) != nil || d.Host == "" {
		return "", detail{}, false
	}
	out := detail{version: d.Version, services: map[string]serviceDetail{}}
	for _, s := range d.Services {
		var st struct {
			Halted bool            `json:"halted"`
			Config json.RawMessage `json:"config"`
			Schema struct {
				Setup json.RawMessage `json:"setup"`
			} `json:"schema"`
		}
		_ = json.Unmarshal(s.State, &st)
		sd := serviceDetail{halted: st.Halted, config: st.Config}
		if isObject(st.Schema.Setup) {
			sd.schema = st.Schema.Setup
		}
		out.services[s.Function] = sd
	}
	return d.Host, out, true
}

func isObject(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// buildState merges the inventory, the descriptions' details and the live
// values into the State the page shows.
func buildState(inv cluster.Inventory, details map[string]detail, values map[string]Value, status map[string]string, control bool) State {
	st := State{Control: control, Hosts: make([]Host, 0, len(inv.Hosts)), Conflicts: inv.Conflicts}
	if st.Conflicts == nil {
		st.Conflicts = []cluster.Conflict{}
	}
	for _, h := range inv.Hosts {
		out := Host{Host: h.Host, Status: h.Status, Machine: h.Machine, Version: h.Version, Rollcall: h.Rollcall,
			IPAddrs: h.IPAddrs, Conflict: h.Conflict, Invalid: h.Invalid, Services: make([]Service, 0, len(h.Services))}
		if s := status[h.Host]; s != "" {
			out.Status = s
		}
		det := details[h.Host]
		for _, svc := range h.Services {
			sd := det.services[svc.Function]
			s := Service{Function: svc.Function, Health: svc.Health, Error: svc.Error, External: svc.External,
				Halted: sd.halted, Setup: sd.schema != nil, Control: svc.Control != ""}
			s.Inputs = interfaces(h.Host, svc.Function, "input", svc.Inputs, values)
			s.Outputs = interfaces(h.Host, svc.Function, "output", svc.Outputs, values)
			out.Services = append(out.Services, s)
		}
		st.Hosts = append(st.Hosts, out)
	}
	return st
}

func interfaces(host, service, kind string, its []services.Interface, values map[string]Value) []Interface {
	out := make([]Interface, 0, len(its))
	for _, it := range its {
		i := Interface{Name: it.Name, Type: it.Type, Mode: it.Mode, Settable: it.Set != "", Value: it.Value,
			Class: classify(kind == "output", it)}
		if v, ok := values[valueKey(host, service, kind, it.Name)]; ok {
			i.Value = v.Value
			t := v.Time
			i.Updated = &t
		}
		out = append(out, i)
	}
	return out
}
