package services

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
)

// Env is what the host gives every service it builds.
type Env struct {
	// Host is this host's name, the first level of every topic below
	// TopicPrefix.
	Host string
	// TopicPrefix is mqtt.topic_prefix: the levels above the host's in
	// every topic; "" for none.
	TopicPrefix Prefix
	// StateDir keeps what must survive a restart; "" keeps nothing.
	StateDir string
	// Sim runs the service on its simulated driver, whatever its
	// configuration names.
	Sim bool
	// Sysfs is the root of the sysfs tree ("/sys"), Dev the root of the
	// device nodes ("/dev"); tests point them at fixture trees.
	Sysfs, Dev string
	Logger     *slog.Logger
	// Claims is the host's record of pins, buses and devices.
	Claims *Claims
	// Clock is the service's time; nil is the real clock.
	Clock Clock
}

func (e Env) withDefaults() Env {
	if e.Logger == nil {
		e.Logger = slog.New(slog.DiscardHandler)
	}
	if e.Claims == nil {
		e.Claims = NewClaims()
	}
	if e.Clock == nil {
		e.Clock = RealClock{}
	}
	if e.Sysfs == "" {
		e.Sysfs = "/sys"
	}
	if e.Dev == "" {
		e.Dev = "/dev"
	}
	return e
}

// A Kind is one kind of service the agent can run, the way a
// node_exporter collector or a periph driver registers itself: its name
// (the second level of its topics and its key in the agent's
// configuration file), its configuration type and how to build it.
type Kind struct {
	Name string
	// NewConfig returns a pointer to a new configuration of the kind with
	// its defaults filled in: the agent decodes the kind's block of the
	// configuration file into it.
	NewConfig func() any
	// New builds the service from a configuration NewConfig returned.
	New func(env Env, cfg any) (Service, error)
}

// NewKind makes a Kind with a typed configuration C. defaults may be nil.
func NewKind[C any](name string, defaults func() C, build func(env Env, cfg C) (Service, error)) Kind {
	return Kind{
		Name: name,
		NewConfig: func() any {
			c := new(C)
			if defaults != nil {
				*c = defaults()
			}
			return c
		},
		New: func(env Env, cfg any) (Service, error) {
			c, ok := cfg.(*C)
			if !ok {
				return nil, fmt.Errorf("%s: configuration is %T, not %s", name, cfg, reflect.TypeFor[*C]())
			}
			return build(env.withDefaults(), *c)
		},
	}
}

var (
	kindsMu sync.Mutex
	kinds   = map[string]Kind{}
)

// Register adds a kind of service. It is meant for init functions and
// panics on a duplicate or invalid name, a programming error.
func Register(k Kind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if !ValidTopicName(k.Name) || k.New == nil || k.NewConfig == nil {
		panic(fmt.Sprintf("services: Register(%q): invalid kind", k.Name))
	}
	if _, dup := kinds[k.Name]; dup {
		panic(fmt.Sprintf("services: Register(%q): registered twice", k.Name))
	}
	kinds[k.Name] = k
}

// Kinds returns every registered kind, sorted by name.
func Kinds() []Kind {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	out := make([]Kind, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Kind) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// LookupKind returns the kind registered under name.
func LookupKind(name string) (Kind, bool) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	k, ok := kinds[name]
	return k, ok
}
