package agent

import (
	"reflect"
	"slices"
	"strings"

	"github.com/rollcall/rollcall/services"
)

// Diff returns the keys whose values differ between two configurations,
// as dotted paths ("mqtt.broker", "gpio"), sorted.
func Diff(a, b Config) []string {
	var keys []string
	diffValue(reflect.ValueOf(a), reflect.ValueOf(b), "", &keys)
	for name, ab := range a.Blocks {
		if !reflect.DeepEqual(ab, b.Blocks[name]) {
			keys = append(keys, name)
		}
	}
	for name := range b.Blocks {
		if _, ok := a.Blocks[name]; !ok {
			keys = append(keys, name)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func diffValue(a, b reflect.Value, prefix string, keys *[]string) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		av, bv := a.Field(i), b.Field(i)
		if f.Type.Kind() == reflect.Struct {
			diffValue(av, bv, key+".", keys)
			continue
		}
		if !reflect.DeepEqual(av.Interface(), bv.Interface()) {
			*keys = append(*keys, key)
		}
	}
}

// Reload takes a new configuration while the agent runs and says what
// happens to each change: the log level changes live (the caller holds the
// level); dashboard.* is not the agent's (`rollcall dashboard` reads it
// when it starts); everything else needs a restart, which Reload says
// rather than half-applying. A service's block is only the setup the
// service starts from when nothing is saved: the live setup, perhaps set
// over MQTT, is kept.
func (a *Agent) Reload(next Config) (live, restart, elsewhere []string) {
	for _, k := range Diff(a.cfg, next) {
		switch {
		case k == "log_level":
			live = append(live, k)
		case strings.HasPrefix(k, "dashboard."):
			elsewhere = append(elsewhere, k)
		case slices.Contains(a.cfg.Services, k):
			restart = append(restart, k+" (the live setup is kept: publish the new one to "+services.Topics{Prefix: a.cfg.MQTT.TopicPrefix, Host: a.cfg.Host, Service: k}.Setup()+" to apply it now)")
		default:
			restart = append(restart, k)
		}
	}
	return live, restart, elsewhere
}
