package metrics

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rollcall/rollcall/agent/session"
	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/services"
)

// fakeService is a service with counters and nothing else.
type fakeService struct {
	name  string
	stats services.Stats
}

func (f *fakeService) Name() string                            { return f.name }
func (f *fakeService) Describe() services.Description          { return services.Description{Function: f.name} }
func (f *fakeService) Run(context.Context, services.Bus) error { return nil }
func (f *fakeService) Stats() services.Stats                   { return f.stats }
func (f fakeSession) Stats() session.Stats                     { return session.Stats(f) }
func (f fakeMonitor) Stats() discovery.MonitorStats            { return discovery.MonitorStats(f) }
func describing(d services.HostDescription) func() services.HostDescription {
	return func() services.HostDescription { return d }
}

type (
	fakeSession session.Stats
	fakeMonitor discovery.MonitorStats
)

// testHost is a host with a dht22 whose one sensor may be failing, a gpio
// service and an external service, as its description and counters say.
func testHost(failing bool) Options {
	dht := &fakeService{name: "dht22", stats: services.Stats{
		Requests: map[services.RequestOutcome]uint64{{Op: "setup", Code: "ok"}: 2, {Op: "setup", Code: "invalid"}: 1},
		Channels: []services.ChannelStats{{Name: "air", ScanStatus: services.ScanStatus{Reads: 10, Errors: 3, Failing: failing},
			Inputs: []string{"air_temperature", "air_humidity"}}},
	}}
	gpio := &fakeService{name: "gpio", stats: services.Stats{Requests: map[services.RequestOutcome]uint64{{Op: "set", Code: "ok"}: 5}, Dropped: 4}}
	health := "ok"
	if failing {
		health = "error"
	}
	return Options{
		Host:    "simpi",
		Version: "1.2.3",
		Describe: describing(services.HostDescription{Host: "simpi", Version: 42, Conflicts: []string{"other"}, Services: []services.Description{
			{Function: "dht22", Health: health, State: services.State{}, Inputs: []services.Interface{
				{Name: "air_temperature", Type: "number", Unit: "°C", Mode: "temperature", Value: 18.5},
				{Name: "air_humidity", Type: "number", Unit: "%RH", Mode: "humidity", Value: 45.0},
			}},
			{Function: "gpio", Health: "ok", State: services.State{Halted: true}, Inputs: []services.Interface{
				{Name: "button", Type: "bool", Mode: "input", Value: 1.0},
				{Name: "unread", Type: "bool", Mode: "input"},                    // no value yet
				{Name: "label", Type: "string", Mode: "input", Value: "pressed"}, // not a number
			}, Outputs: []services.Interface{
				{Name: "lamp", Type: "bool", Mode: "output", Value: 0.0},
				{Name: "fan", Type: "pwm", Unit: "%", Mode: "pwm", Value: 30.0},
			}},
			// A program outside the agent: no state, no counters.
			{Function: "display", External: true, Outputs: []services.Interface{
				{Name: "brightness", Type: "number", Unit: "%", Mode: "output", Value: 80.0},
				{Name: "brightness", Type: "number", Unit: "%", Mode: "output", Value: 10.0}, // a second of one name
			}},
		}}),
		Services: []services.Service{dht, gpio},
		Session:  fakeSession{Connected: true, Connects: 2, Losses: 1, Failures: 3, Published: 100, PublishErrors: 1, Received: 50},
		Monitor:  fakeMonitor{Received: 9, Published: 5, Republished: 1, Acked: 4, Dropped: map[string]uint64{discovery.DropRateLimited: 2, discovery.DropMalformed: 1, discovery.AckFailed: 1, "new_reason": 1}},
	}
}

func newTestRegistry(t *testing.T, o Options) textGatherer {
	t.Helper()
	reg, err := NewRegistry(o)
	if err != nil {
		t.Fatal(err)
	}
	return textGatherer{reg}
}

// A textGatherer gathers a registry's metrics as a scraper sees them: its
// text, read by Prometheus's own parser, so that client_golang's test
// helpers (testutil, promlint) check what is served. WriteText's error
// comes back with whatever was written.
type textGatherer struct{ reg *Registry }

func (g textGatherer) Gather() ([]*dto.MetricFamily, error) {
	var b bytes.Buffer
	werr := g.reg.WriteText(&b)
	p := expfmt.NewTextParser(model.LegacyValidation)
	byName, err := p.TextToMetricFamilies(&b)
	if err != nil {
		return nil, fmt.Errorf("the text does not parse: %w", err)
	}
	mfs := make([]*dto.MetricFamily, 0, len(byName))
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		mfs = append(mfs, byName[name])
	}
	return mfs, werr
}

func TestCollector(t *testing.T) {
	reg := newTestRegistry(t, testHost(false))
	want := `
# HELP rollcall_dht22_temperature_celsius Current temperature of the dht22 service's interfaces, in celsius, from its description.
# TYPE rollcall_dht22_temperature_celsius gauge
rollcall_dht22_temperature_celsius{host="simpi",name="air_temperature"} 18.5
# HELP rollcall_dht22_humidity_ratio Current humidity of the dht22 service's interfaces, as a ratio (1 is 100%), from its description.
# TYPE rollcall_dht22_humidity_ratio gauge
rollcall_dht22_humidity_ratio{host="simpi",name="air_humidity"} 0.45
# HELP rollcall_gpio_input_level Current input of the gpio service's interfaces, as a level (1 high, 0 low), from its description.
# TYPE rollcall_gpio_input_level gauge
rollcall_gpio_input_level{host="simpi",name="button"} 1
# HELP rollcall_gpio_output_level Current output of the gpio service's interfaces, as a level (1 high, 0 low), from its description.
# TYPE rollcall_gpio_output_level gauge
rollcall_gpio_output_level{host="simpi",name="lamp"} 0
# HELP rollcall_gpio_pwm_duty_ratio Current pwm duty of the gpio service's interfaces, as a ratio (1 is 100%), from its description.
# TYPE rollcall_gpio_pwm_duty_ratio gauge
rollcall_gpio_pwm_duty_ratio{host="simpi",name="fan"} 0.3
# HELP rollcall_display_output_ratio Current output of the display service's interfaces, as a ratio (1 is 100%), from its description.
# TYPE rollcall_display_output_ratio gauge
rollcall_display_output_ratio{host="simpi",name="brightness"} 0.8
# HELP rollcall_service_healthy 1 while the service's description says its health is ok, 0 when it reports an error.
# TYPE rollcall_service_healthy gauge
rollcall_service_healthy{host="simpi",service="dht22"} 1
rollcall_service_healthy{host="simpi",service="display"} 1
rollcall_service_healthy{host="simpi",service="gpio"} 1
# HELP rollcall_service_halted 1 while the service is halted (emergency stop, or a saved state it could not use): outputs at failsafe, setups and sets refused.
# TYPE rollcall_service_halted gauge
rollcall_service_halted{host="simpi",service="dht22"} 0
rollcall_service_halted{host="simpi",service="gpio"} 1
# HELP rollcall_requests_total Requests answered, by service, op and outcome: the result's error code, or ok.
# TYPE rollcall_requests_total counter
rollcall_requests_total{code="invalid",host="simpi",op="setup",service="dht22"} 1
rollcall_requests_total{code="ok",host="simpi",op="setup",service="dht22"} 2
rollcall_requests_total{code="ok",host="simpi",op="set",service="gpio"} 5
# HELP rollcall_read_errors_total Failed reads of an input channel since it was set up.
# TYPE rollcall_read_errors_total counter
rollcall_read_errors_total{channel="air",host="simpi",service="dht22"} 3
# HELP rollcall_service_messages_dropped_total Messages the service could not queue for publishing because its queue was full.
# TYPE rollcall_service_messages_dropped_total counter
rollcall_service_messages_dropped_total{host="simpi",service="dht22"} 0
rollcall_service_messages_dropped_total{host="simpi",service="gpio"} 4
# HELP rollcall_description_version Version of the host's retained description; it goes up on every change.
# TYPE rollcall_description_version gauge
rollcall_description_version{host="simpi"} 42
# HELP rollcall_host_name_conflicts Other machines seen publishing under this host's name.
# TYPE rollcall_host_name_conflicts gauge
rollcall_host_name_conflicts{host="simpi"} 1
# HELP rollcall_mqtt_connected 1 while the agent's MQTT session is connected, 0 otherwise.
# TYPE rollcall_mqtt_connected gauge
rollcall_mqtt_connected{host="simpi"} 1
# HELP rollcall_mqtt_connects_total Connections made to the broker, the first included.
# TYPE rollcall_mqtt_connects_total counter
rollcall_mqtt_connects_total{host="simpi"} 2
# HELP rollcall_discovery_probes_received_total Datagrams the discovery monitor received.
# TYPE rollcall_discovery_probes_received_total counter
rollcall_discovery_probes_received_total{host="simpi"} 9
# HELP rollcall_discovery_acks_skipped_total Acknowledgements not sent for probes that were answered, by reason.
# TYPE rollcall_discovery_acks_skipped_total counter
rollcall_discovery_acks_skipped_total{host="simpi",reason="ack_failed"} 1
rollcall_discovery_acks_skipped_total{host="simpi",reason="ack_too_large"} 0
`
	names := []string{
		"rollcall_dht22_temperature_celsius", "rollcall_dht22_humidity_ratio", "rollcall_gpio_input_level",
		"rollcall_gpio_output_level", "rollcall_gpio_pwm_duty_ratio", "rollcall_display_output_ratio",
		"rollcall_service_healthy", "rollcall_service_halted", "rollcall_requests_total", "rollcall_read_errors_total",
		"rollcall_service_messages_dropped_total", "rollcall_description_version", "rollcall_host_name_conflicts",
		"rollcall_mqtt_connected", "rollcall_mqtt_connects_total", "rollcall_discovery_probes_received_total",
		"rollcall_discovery_acks_skipped_total",
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	lint(t, reg)
}

// TestCollectorDrops checks that every drop reason the monitor knows is
// there from the start, and one it adds later shows as well.
func TestCollectorDrops(t *testing.T) {
	reg := newTestRegistry(t, testHost(false))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "rollcall_discovery_probes_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	for _, tc := range []struct {
		name   string
		reason string
		want   float64
	}{
		{"rate limited", discovery.DropRateLimited, 2},
		{"malformed", discovery.DropMalformed, 1},
		{"never seen", discovery.DropReplay, 0},
		{"unsigned", discovery.DropUnsigned, 0},
		{"off subnet", discovery.DropOffSubnet, 0},
		{"a reason added later", "new_reason", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := got[tc.reason]
			if !ok || v != tc.want {
				t.Errorf("reason %q: %v (present %v), want %v", tc.reason, v, ok, tc.want)
			}
		})
	}
	if _, ok := got[discovery.AckFailed]; ok {
		t.Error("an acknowledgement not sent is counted as a dropped probe")
	}
}

// TestCollectorStale: a channel whose reads fail shows its errors, not
// its last good reading.
func TestCollectorStale(t *testing.T) {
	for _, tc := range []struct {
		name    string
		failing bool
		want    int // dht22 reading gauges
		healthy float64
	}{
		{"reading", false, 2, 1},
		{"failing", true, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newTestRegistry(t, testHost(tc.failing))
			n, err := testutil.GatherAndCount(reg, "rollcall_dht22_temperature_celsius", "rollcall_dht22_humidity_ratio")
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.want {
				t.Errorf("%d dht22 readings, want %d", n, tc.want)
			}
			want := `
# HELP rollcall_read_failing 1 while the channel's reads are failing (and its readings are not shown), 0 otherwise.
# TYPE rollcall_read_failing gauge
rollcall_read_failing{channel="air",host="simpi",service="dht22"} ` + map[bool]string{true: "1", false: "0"}[tc.failing] + "\n"
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rollcall_read_failing"); err != nil {
				t.Error(err)
			}
			if n, _ := testutil.GatherAndCount(reg, "rollcall_gpio_input_level"); n != 1 {
				t.Errorf("gpio's reading went with dht22's: %d", n)
			}
		})
	}
}

// TestCollectorBadNames: readings that would clash with the agent's own
// metrics, or that cannot be labelled, cost only themselves.
func TestCollectorBadNames(t *testing.T) {
	o := Options{Host: "h", Describe: describing(services.HostDescription{Host: "h", Services: []services.Description{
		// rollcall_mqtt_connected is the agent's own.
		{Function: "mqtt", Inputs: []services.Interface{{Name: "x", Type: "number", Mode: "connected", Value: 1.0}}},
		{Function: "ain", Inputs: []services.Interface{
			{Name: "bad\xff", Type: "number", Unit: "V", Mode: "channel", Value: 1.0},
			{Name: "good", Type: "number", Unit: "V", Mode: "channel", Value: 2.0},
		}},
	}})}
	reg := newTestRegistry(t, o)
	mfs, err := reg.Gather()
	if err == nil {
		t.Error("an invalid label value went unreported")
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	want := `
# HELP rollcall_ain_volts Current value of the ain service's interfaces, in volts, from its description.
# TYPE rollcall_ain_volts gauge
rollcall_ain_volts{host="h",name="good"} 2
`
	// What the handler serves: what could be gathered, the error logged.
	served := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, _ := reg.Gather()
		return mfs, nil
	})
	if err := testutil.GatherAndCompare(served, strings.NewReader(want), "rollcall_ain_volts"); err != nil {
		t.Error(err)
	}
	for _, n := range names {
		if n == "rollcall_mqtt_connected" {
			t.Error("a reading took the name of the agent's own rollcall_mqtt_connected")
		}
	}
}

// lint fails the test for every problem promlint, and promtool where it
// is installed, find in reg's metrics.
func lint(t *testing.T, reg prometheus.Gatherer) {
	t.Helper()
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	b, err := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain)
	if err != nil {
		t.Fatal(err)
	}
	promtool(t, b, "check", "metrics")
}

func TestNewRegistryHost(t *testing.T) {
	for _, tc := range []struct {
		name string
		host string
		ok   bool
	}{
		{"a host name", "pi-zero-3", true},
		{"UTF-8", "gewächshaus", true},
		{"not UTF-8", "pi\xff", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRegistry(Options{Host: tc.host})
			if (err == nil) != tc.ok {
				t.Errorf("NewRegistry(host %q): %v", tc.host, err)
			}
		})
	}
}
