package metrics

import (
	"cmp"
	"maps"
	"runtime"
	"runtime/debug"
	"slices"

	"github.com/rollcall/rollcall/agent/session"
	"github.com/rollcall/rollcall/discovery"
	"github.com/rollcall/rollcall/services"
)

// Options are what the collector reads at every scrape. Everything but
// Describe may be left out; its metrics are then absent.
type Options struct {
	// Host is the host's name: the host label of every rollcall metric.
	Host string
	// Version is rollcall's version as the host's description gives it.
	Version string
	// Describe returns the host's description now (agent.Agent.Describe):
	// health, readings, version. It must not wait for hardware.
	Describe func() services.HostDescription
	// Services are the host's own services. Those with a Stats method
	// (every service on a services.Runtime) give request and read counts,
	// and say which readings are stale.
	Services []services.Service
	// Session and Monitor give the MQTT session's and the discovery
	// monitor's counters (*session.Session, *discovery.Monitor).
	Session interface{ Stats() session.Stats }
	Monitor interface{ Stats() discovery.MonitorStats }
}

// statser is a service that counts what it does.
type statser interface{ Stats() services.Stats }

// Drop reasons of the discovery monitor, exposed at zero before the first
// drop so that rate() and alerts see them from the start.
var dropReasons = []string{
	discovery.DropTooLarge, discovery.DropMalformed, discovery.DropInvalid, discovery.DropUnsigned,
	discovery.DropUnknownKey, discovery.DropBadMAC, discovery.DropStale, discovery.DropReplay,
	discovery.DropOffSubnet, discovery.DropReplyTopic, discovery.DropRateLimited, discovery.DropHeard,
	discovery.DropDuplicate, discovery.DropPublish,
}

// Acknowledgements not sent, by reason: the monitor counts them with its
// drops, but their probes were answered.
var ackReasons = map[string]bool{discovery.AckTooLarge: true, discovery.AckFailed: true}

// fixed are the names of the agent's own metrics, which readings must
// not take.
var fixed = map[string]bool{}

// own describes one of the agent's own metric families. Its metrics
// carry the host label after their own.
func own(k kind, name, help string, labels ...string) *desc {
	fixed[name] = true
	return &desc{name: name, help: help, kind: k, labels: append(labels, "host")}
}

func ownGauge(name, help string, labels ...string) *desc {
	return own(gaugeKind, name, help, labels...)
}
func ownCounter(name, help string, labels ...string) *desc {
	return own(counterKind, name, help, labels...)
}

// The metrics every agent has; readings are named at scrape time.
var (
	buildInfo = ownGauge("rollcall_build_info",
		"Always 1; the labels say which rollcall build the agent runs.",
		"version", "revision", "goversion", "goos", "goarch", "goarm")
	descriptionVersion = ownGauge("rollcall_description_version",
		"Version of the host's retained description; it goes up on every change.")
	nameConflicts = ownGauge("rollcall_host_name_conflicts",
		"Other machines seen publishing under this host's name.")

	serviceHealthy = ownGauge("rollcall_service_healthy",
		"1 while the service's description says its health is ok, 0 when it reports an error.",
		"service")
	serviceHalted = ownGauge("rollcall_service_halted",
		"1 while the service is halted (emergency stop, or a saved state it could not use): outputs at failsafe, setups and sets refused.",
		"service")
	serviceFailsafe = ownGauge("rollcall_service_failsafe",
		"1 while the service's outputs are at failsafe for want of a broker.",
		"service")
	requests = ownCounter("rollcall_requests_total",
		"Requests answered, by service, op and outcome: the result's error code, or ok.",
		"service", "op", "code")
	reads = ownCounter("rollcall_reads_total",
		"Successful reads of an input channel since it was set up.",
		"service", "channel")
	readErrors = ownCounter("rollcall_read_errors_total",
		"Failed reads of an input channel since it was set up.",
		"service", "channel")
	readFailing = ownGauge("rollcall_read_failing",
		"1 while the channel's reads are failing (and its readings are not shown), 0 otherwise.",
		"service", "channel")
	serviceDropped = ownCounter("rollcall_service_messages_dropped_total",
		"Messages the service could not queue for publishing because its queue was full.",
		"service")

	mqttConnected = ownGauge("rollcall_mqtt_connected",
		"1 while the agent's MQTT session is connected, 0 otherwise.")
	mqttConnects = ownCounter("rollcall_mqtt_connects_total",
		"Connections made to the broker, the first included.")
	mqttLosses = ownCounter("rollcall_mqtt_connection_losses_total",
		"Connections to the broker lost.")
	mqttFailures = ownCounter("rollcall_mqtt_connect_failures_total",
		"Connection attempts that failed.")
	mqttPublished = ownCounter("rollcall_mqtt_messages_published_total",
		"Messages the MQTT client took to publish.")
	mqttPublishErrors = ownCounter("rollcall_mqtt_publish_errors_total",
		"Messages the MQTT client refused (while not connected, say) or failed to publish, as far as the agent learnt.")
	mqttReceived = ownCounter("rollcall_mqtt_messages_received_total",
		"Messages received on the agent's subscriptions.")

	probesReceived = ownCounter("rollcall_discovery_probes_received_total",
		"Datagrams the discovery monitor received.")
	reportsPublished = ownCounter("rollcall_discovery_reports_published_total",
		"Probes answered: reports published, repeated answers included.")
	reportsRepublished = ownCounter("rollcall_discovery_reports_republished_total",
		"Reports published again because a retransmitted probe had not heard this host.")
	probesDropped = ownCounter("rollcall_discovery_probes_dropped_total",
		"Datagrams the discovery monitor did not answer, by reason.",
		"reason")
	acksSent = ownCounter("rollcall_discovery_acks_sent_total",
		"UDP acknowledgements sent to sweeps.")
	acksSkipped = ownCounter("rollcall_discovery_acks_skipped_total",
		"Acknowledgements not sent for probes that were answered, by reason.",
		"reason")
)

// A collector reads the agent's state at every scrape: nothing is kept
// between scrapes, so a value is never older than what the agent knows.
// The readings' names come from the services' descriptions as they are
// at the scrape; the scrape checks them for consistency as it takes them.
type collector struct {
	o     Options
	build []string // buildInfo's label values
}

func newCollector(o Options) *collector {
	c := &collector{o: o}
	revision, goarm := "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "GOARM":
				goarm = s.Value
			}
		}
	}
	c.build = []string{o.Version, revision, runtime.Version(), runtime.GOOS, runtime.GOARCH, goarm}
	return c
}

// collect adds the agent's metrics to s.
func (c *collector) collect(s *scrape) {
	add := func(d *desc, v float64, labels ...string) {
		s.add(d, v, append(slices.Clip(labels), c.o.Host)...)
	}
	count := func(d *desc, v uint64, labels ...string) { add(d, float64(v), labels...) }
	add(buildInfo, 1, c.build...)

	stats := map[string]services.Stats{}
	for _, svc := range c.o.Services {
		if st, ok := svc.(statser); ok {
			stats[svc.Name()] = st.Stats()
		}
	}
	if c.o.Describe != nil {
		d := c.o.Describe()
		add(descriptionVersion, float64(d.Version))
		add(nameConflicts, float64(len(d.Conflicts)))
		for _, sd := range d.Services {
			add(serviceHealthy, bool01(sd.Health == "ok" || sd.Health == ""), sd.Function)
			if st, ok := sd.State.(services.State); ok {
				add(serviceHalted, bool01(st.Halted), sd.Function)
				add(serviceFailsafe, bool01(st.Failsafe), sd.Function)
			}
		}
		c.readings(s, d, stats)
	}
	for _, name := range slices.Sorted(maps.Keys(stats)) {
		st := stats[name]
		for _, k := range slices.SortedFunc(maps.Keys(st.Requests), func(a, b services.RequestOutcome) int {
			return cmp.Or(cmp.Compare(a.Op, b.Op), cmp.Compare(a.Code, b.Code))
		}) {
			count(requests, st.Requests[k], name, k.Op, k.Code)
		}
		for _, ch := range st.Channels {
			count(reads, uint64(ch.Reads), name, ch.Name)
			count(readErrors, uint64(ch.Errors), name, ch.Name)
			add(readFailing, bool01(ch.Failing), name, ch.Name)
		}
		count(serviceDropped, st.Dropped, name)
	}
	if c.o.Session != nil {
		st := c.o.Session.Stats()
		add(mqttConnected, bool01(st.Connected))
		count(mqttConnects, st.Connects)
		count(mqttLosses, st.Losses)
		count(mqttFailures, st.Failures)
		count(mqttPublished, st.Published)
		count(mqttPublishErrors, st.PublishErrors)
		count(mqttReceived, st.Received)
	}
	if c.o.Monitor != nil {
		st := c.o.Monitor.Stats()
		count(probesReceived, st.Received)
		count(reportsPublished, st.Published)
		count(reportsRepublished, st.Republished)
		count(acksSent, st.Acked)
		for reason := range ackReasons {
			count(acksSkipped, st.Dropped[reason], reason)
		}
		seen := map[string]bool{}
		for _, reason := range dropReasons {
			seen[reason] = true
			count(probesDropped, st.Dropped[reason], reason)
		}
		for _, reason := range slices.Sorted(maps.Keys(st.Dropped)) {
			if !seen[reason] && !ackReasons[reason] {
				count(probesDropped, st.Dropped[reason], reason)
			}
		}
	}
}

// readings adds a gauge for every input and output of d whose current
// value is a number, but not those of channels whose reads are failing:
// their value is the last good one, and the failure shows in
// rollcall_read_errors_total and rollcall_read_failing instead.
func (c *collector) readings(s *scrape, d services.HostDescription, stats map[string]services.Stats) {
	descs := map[string]*desc{}
	sent := map[[2]string]bool{}
	for _, sd := range d.Services {
		stale := map[string]bool{}
		for _, chs := range stats[sd.Function].Channels {
			if chs.Failing {
				for _, in := range chs.Inputs {
					stale[in] = true
				}
			}
		}
		add := func(it services.Interface, input bool) {
			v, ok := number(it.Value)
			if !ok || (input && stale[it.Name]) {
				return
			}
			r := readingOf(sd.Function, it)
			if fixed[r.name] || sent[[2]string{r.name, it.Name}] {
				return // a name the agent's own metrics use, or a second interface of one name
			}
			sent[[2]string{r.name, it.Name}] = true
			dsc := descs[r.name]
			if dsc == nil {
				dsc = &desc{name: r.name, help: r.help, kind: gaugeKind, labels: []string{"name", "host"}}
				descs[r.name] = dsc
			}
			s.add(dsc, r.unit.base(v), it.Name, c.o.Host)
		}
		for _, it := range sd.Inputs {
			add(it, true)
		}
		for _, it := range sd.Outputs {
			add(it, false)
		}
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
