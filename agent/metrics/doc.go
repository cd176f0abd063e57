// Package metrics exposes a rollcall agent to Prometheus: an HTTP
// /metrics endpoint (metrics.listen in the agent's configuration, off by
// default), and the sweep's figures as a file for node_exporter's
// textfile collector (rollcall sweep --textfile).
//
// # Read at scrape time
//
// Nothing is counted twice and nothing is cached: at every scrape one
// collector reads the host's description (as a sweep or `rollcall
// inventory` would see it) and the counters the agent's parts keep anyway
// (services.Runtime.Stats, session.Session.Stats,
// discovery.Monitor.Stats), and turns them into metrics. The registry is
// the agent's own: the Go runtime's and the process's metrics, and
// rollcall's, whose every metric carries a host label naming the host as
// its MQTT topics do (the scrape target's address does not).
//
// # The text format, written here
//
// The package writes Prometheus's text exposition format (version 0.0.4)
// itself: Prometheus's Go client, with the protocol buffers runtime,
// client_model, prometheus/common and procfs it links, was 2.1 MB of the
// Pi Zero's 14.2 MB binary for a few hundred lines' worth of work. What a
// scraper sees is what the client served: families sorted by name, each
// under one HELP and TYPE, its metrics sorted by label values; label
// values escaped (backslash, double quote, line feed); numbers written as
// the client writes them; gzip when the scraper accepts it (Prometheus
// does). A metric that cannot be shown (a label value that is not UTF-8,
// a second metric of one name and labels) is left out and logged, and
// the rest is served. The Go runtime's and the process's metrics are
// those of the client's default collectors, names, HELP and values alike
// (go_goroutines, go_threads, go_gc_duration_seconds, go_memstats_* read
// from runtime/metrics, go_info, go_gc_gogc_percent,
// go_gc_gomemlimit_bytes, go_sched_gomaxprocs_threads; process_* from
// /proc), and the handler counts its scrapes under promhttp's names
// (promhttp_metric_handler_requests_total and _in_flight), so that
// dashboards and alerts made for any Go program keep working. Only text
// is served: a scraper asking for protocol buffers (Prometheus with
// native histograms on) gets text, which it reads as well. The tests
// check the output with the client's own parser, linter and collectors.
//
// # Readings
//
// Every input and output of every service, built-in or a program of its
// own announced on <host>/<service>/description, shows as a gauge whose
// value is the interface's current value in the description, named from
// the description alone, so a new service needs no code here:
//
//	rollcall_<service>_[<quantity>_]<unit>{host, name}
//
// The quantity is the interface's mode (temperature, humidity, distance,
// input, output, pwm), except "channel", which names none; a pwm is a
// duty. The unit is the description's, turned into Prometheus's base unit
// by a table (V and mV to volts, °C, °F and K to celsius, % and %RH to a
// ratio from 0 to 1, m, cm and mm to meters, ...) and the value converted
// with it; a bool is a level (1 or 0). A unit the table does not know is
// kept in the name, made fit for one ("ppm", "uS_per_cm"), and the value
// is left as it is. name is the interface's name, the last level of its
// topic. For example:
//
//	rollcall_gpio_input_level{name="float_switch"}    1
//	rollcall_gpio_output_level{name="lamp"}           0
//	rollcall_gpio_pwm_duty_ratio{name="fan"}          0.25   (25 %)
//	rollcall_dht22_temperature_celsius{name="air_temperature"} 18.5
//	rollcall_dht22_humidity_ratio{name="air_humidity"}         0.452  (45.2 %RH)
//	rollcall_sonar_distance_meters{name="front"}      0.552
//	rollcall_ain_volts{name="light"}                  1.65
//	rollcall_dac_output_volts{name="led"}             3.3
//
// Humidity is a ratio, not a percentage: Prometheus's naming guide asks
// for ratios from 0 to 1, so that every relative figure reads the same
// way in queries and alerts.
//
// An interface whose value is not a number (none yet, a string) is left
// out. So are the inputs of a channel whose reads are failing: their
// value is the last good reading, which a gauge would show as the
// present; the failure shows as rollcall_read_failing 1 and in
// rollcall_read_errors_total instead.
//
// # The agent's own metrics
//
// Service health, halt and failsafe (gauges, per service); requests
// answered by service, op and code (rollcall_requests_total, code "ok" or
// the result's error code); reads and read errors per input channel; the
// MQTT session (connected, connects, losses, failed attempts, messages
// published, refused, received); the discovery monitor (datagrams
// received, reports published, drops by reason, acknowledgements); the
// build (rollcall_build_info) and the description's version. The README's
// Prometheus section lists them all with their labels.
//
// # The sweep's textfile
//
// WriteSweep writes a sweep's figures (success, hosts answered and
// missing, complete and how fast, duration, probes, conflicts, when)
// atomically, readable by node_exporter, for a timer that runs
// `rollcall sweep --textfile /var/lib/node_exporter/textfile/rollcall_sweep.prom`.
package metrics
