package metrics_test

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/services"

	_ "github.com/rollcall/rollcall/gpio"
	_ "github.com/rollcall/rollcall/sensors/ain"
	_ "github.com/rollcall/rollcall/sensors/dac"
	_ "github.com/rollcall/rollcall/sensors/dht22"
	"github.com/rollcall/rollcall/sensors/sonar"
)

// Loopback ports of this package's tests.
const (
	brokerPort = 27310
	udpPort    = 27410
)

// simAgent runs the agent of configs/sim.yaml, simulated hardware on its
// embedded broker, with metrics on a free loopback port, until the test
// ends.
func simAgent(t testing.TB) *agent.Agent {
	t.Helper()
	cfg := agent.DefaultConfig()
	b, err := os.ReadFile("../../configs/sim.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tree, err := services.Parse(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	rest := map[string]any{}
	for k, v := range tree.(map[string]any) {
		if _, ok := services.LookupKind(k); ok {
			if errs := services.DecodeTree(v, cfg.Blocks[k], k); errs != nil {
				t.Fatal(errs)
			}
			continue
		}
		rest[k] = v
	}
	if errs := services.DecodeTree(rest, &cfg, ""); errs != nil {
		t.Fatal(errs)
	}
	cfg.Host = "simpi"
	cfg.StateDir = t.TempDir()
	cfg.MQTT.EmbeddedBroker = fmt.Sprintf("127.0.0.1:%d", brokerPort)
	cfg.Discovery.Port = udpPort
	cfg.Metrics.Listen = "127.0.0.1:0"
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	a, err := agent.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("agent not ready after 10s")
	}
	return a
}

// scrape gets the agent's /metrics as Prometheus would, in the text
// format, and parses it.
func scrape(t testing.TB, a *agent.Agent) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+a.MetricsAddr().String()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return mfs, body
}

// sample returns the value of the sample of name whose labels include
// want, and whether there is one.
func sample(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		case dto.MetricType_UNTYPED:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// await scrapes until ok says the figures are there, for 10s at most.
func await(t *testing.T, a *agent.Agent, what string, ok func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mfs, _ := scrape(t, a)
		if ok(mfs) {
			return mfs
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestScrapeSimAgent(t *testing.T) {
	a := simAgent(t)
	h := map[string]string{"host": "simpi"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"host": "simpi"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	// The sensors' first readings come from their scans: wait for them.
	mfs := await(t, a, "the dht22's and the sonar's first readings", func(mfs map[string]*dto.MetricFamily) bool {
		_, t1 := sample(mfs, "rollcall_dht22_temperature_celsius", with("name", "air_temperature"))
		_, d1 := sample(mfs, "rollcall_sonar_distance_meters", with("name", "front"))
		_, a1 := sample(mfs, "rollcall_ain_volts", with("name", "light"))
		_, a2 := sample(mfs, "rollcall_ain_ratio", with("name", "soil"))
		return t1 && d1 && a1 && a2
	})

	t.Run("names and labels", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			metric string
			labels map[string]string
			min    float64
			max    float64
		}{
			{"build info", "rollcall_build_info", with("version", agent.Version), 1, 1},
			{"description version", "rollcall_description_version", h, 1, 1e9},
			{"gpio healthy", "rollcall_service_healthy", with("service", "gpio"), 1, 1},
			{"dht22 healthy", "rollcall_service_healthy", with("service", "dht22"), 1, 1},
			{"sonar healthy", "rollcall_service_healthy", with("service", "sonar"), 1, 1},
			{"not halted", "rollcall_service_halted", with("service", "gpio"), 0, 0},
			{"gpio input", "rollcall_gpio_input_level", with("name", "float_switch"), 0, 1},
			{"gpio button", "rollcall_gpio_input_level", with("name", "button"), 0, 1},
			{"gpio output", "rollcall_gpio_output_level", with("name", "pump_drive"), 0, 1},
			{"temperature", "rollcall_dht22_temperature_celsius", with("name", "air_temperature"), -40, 80},
			{"humidity as a ratio", "rollcall_dht22_humidity_ratio", with("name", "air_humidity"), 0, 1},
			{"distance", "rollcall_sonar_distance_meters", with("name", "front"), 0, 4},
			{"ain volts", "rollcall_ain_volts", with("name", "light"), 0, 3.3},
			{"ain scaled to percent, as a ratio", "rollcall_ain_ratio", with("name", "soil"), 0, 1.01},
			{"dac volts", "rollcall_dac_output_volts", with("name", "led"), 0, 3.3},
			{"ain healthy", "rollcall_service_healthy", with("service", "ain"), 1, 1},
			{"dac healthy", "rollcall_service_healthy", with("service", "dac"), 1, 1},
			{"ain reads", "rollcall_reads_total", with("service", "ain", "channel", "light"), 1, 1e9},
			{"reads counted", "rollcall_reads_total", with("service", "dht22", "channel", "air"), 1, 1e9},
			{"read errors counted", "rollcall_read_errors_total", with("service", "sonar", "channel", "front"), 0, 1e9},
			{"mqtt connected", "rollcall_mqtt_connected", h, 1, 1},
			{"mqtt connects", "rollcall_mqtt_connects_total", h, 1, 1},
			{"mqtt published", "rollcall_mqtt_messages_published_total", h, 1, 1e9},
			{"probes received", "rollcall_discovery_probes_received_total", h, 0, 1e9},
			{"probes dropped", "rollcall_discovery_probes_dropped_total", with("reason", "rate_limited"), 0, 0},
			{"go runtime", "go_goroutines", nil, 1, 1e6},
			{"process", "process_resident_memory_bytes", nil, 1, 1e12},
		} {
			t.Run(tc.name, func(t *testing.T) {
				v, ok := sample(mfs, tc.metric, tc.labels)
				if !ok {
					t.Fatalf("no %s%v", tc.metric, tc.labels)
				}
				if v < tc.min || v > tc.max {
					t.Errorf("%s%v = %v, want %v..%v", tc.metric, tc.labels, v, tc.min, tc.max)
				}
			})
		}
		for name, mf := range mfs {
			if strings.HasPrefix(name, "rollcall_") {
				for _, m := range mf.GetMetric() {
					if !hasLabel(m, "host", "simpi") {
						t.Errorf("%s without host=\"simpi\"", name)
					}
				}
			}
		}
	})

	t.Run("lint", func(t *testing.T) {
		body := scrapeAsPrometheus(t, a)
		p := expfmt.NewTextParser(model.LegacyValidation)
		if _, err := p.TextToMetricFamilies(strings.NewReader(string(body))); err != nil {
			t.Fatalf("/metrics does not parse: %v", err)
		}
		problems, err := promlint.New(strings.NewReader(string(body))).Lint()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
		promtoolCheck(t, body)
		checkGrouped(t, body)
	})

	t.Run("the families shown before", func(t *testing.T) {
		want := map[string]string{}
		for line := range strings.Lines(strings.TrimSpace(simFamilies)) {
			name, typ, _ := strings.Cut(strings.TrimSpace(line), " ")
			want[name] = typ
		}
		mfs, _ := scrape(t, a)
		got := map[string]string{}
		for name, mf := range mfs {
			got[name] = strings.ToLower(mf.GetType().String())
		}
		for name, typ := range want {
			if got[name] != typ {
				t.Errorf("%s: %q, want a %s", name, got[name], typ)
			}
		}
		for name, typ := range got {
			if _, ok := want[name]; !ok {
				t.Errorf("%s (%s): new", name, typ)
			}
		}
	})

	t.Run("a set changes the value", func(t *testing.T) {
		c := mqttClient(t)
		before, _ := sample(mfs, "rollcall_requests_total", with("service", "gpio", "op", "set", "code", "ok"))
		if tok := c.Publish("simpi/gpio/set/lamp", 1, false, "1"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		mfs := await(t, a, "the lamp at 1", func(mfs map[string]*dto.MetricFamily) bool {
			v, _ := sample(mfs, "rollcall_gpio_output_level", with("name", "lamp"))
			return v == 1
		})
		if v, _ := sample(mfs, "rollcall_requests_total", with("service", "gpio", "op", "set", "code", "ok")); v != before+1 {
			t.Errorf("requests_total{op=set,code=ok} %v, want %v", v, before+1)
		}
		// The simulated ranger's target follows the lamp: 2.5 m away.
		await(t, a, "the sonar's target moved away", func(mfs map[string]*dto.MetricFamily) bool {
			v, _ := sample(mfs, "rollcall_sonar_distance_meters", with("name", "front"))
			return v > 2
		})
		if tok := c.Publish("simpi/gpio/set/nothing", 1, false, "1"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		await(t, a, "a refused set counted", func(mfs map[string]*dto.MetricFamily) bool {
			_, ok := sample(mfs, "rollcall_requests_total", with("service", "gpio", "op", "set", "code", "not_found"))
			return ok
		})
	})

	t.Run("a failing ranger shows its errors, not its last distance", func(t *testing.T) {
		svc, ok := a.Service("sonar").(interface{ Ranger(string) sonar.Ranger })
		if !ok {
			t.Fatal("no sonar service with rangers")
		}
		sim, ok := svc.Ranger("front").(*sonar.Sim)
		if !ok {
			t.Fatalf("ranger front is %T, not simulated", svc.Ranger("front"))
		}
		sim.Fail(errors.New("echo wire cut"))
		mfs := await(t, a, "the ranger failing", func(mfs map[string]*dto.MetricFamily) bool {
			v, _ := sample(mfs, "rollcall_read_failing", with("service", "sonar", "channel", "front"))
			return v == 1
		})
		if v, ok := sample(mfs, "rollcall_sonar_distance_meters", with("name", "front")); ok {
			t.Errorf("the last distance, %v, still shown while the ranger fails", v)
		}
		if v, _ := sample(mfs, "rollcall_read_errors_total", with("service", "sonar", "channel", "front")); v < 1 {
			t.Errorf("read errors %v", v)
		}
		if v, _ := sample(mfs, "rollcall_service_healthy", with("service", "sonar")); v != 0 {
			t.Errorf("sonar healthy %v while failing", v)
		}
		if _, ok := sample(mfs, "rollcall_dht22_temperature_celsius", with("name", "air_temperature")); !ok {
			t.Error("the dht22's reading went with the ranger's")
		}
		sim.Fail(nil)
		await(t, a, "the ranger reading again", func(mfs map[string]*dto.MetricFamily) bool {
			_, ok := sample(mfs, "rollcall_sonar_distance_meters", with("name", "front"))
			v, _ := sample(mfs, "rollcall_read_failing", with("service", "sonar", "channel", "front"))
			return ok && v == 0
		})
	})

	t.Run("a dropped probe is counted", func(t *testing.T) {
		conn, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", udpPort))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte("not a probe")); err != nil {
			t.Fatal(err)
		}
		mfs := await(t, a, "a malformed probe dropped", func(mfs map[string]*dto.MetricFamily) bool {
			v, _ := sample(mfs, "rollcall_discovery_probes_dropped_total", with("reason", "malformed"))
			return v == 1
		})
		if v, _ := sample(mfs, "rollcall_discovery_probes_received_total", h); v != 1 {
			t.Errorf("probes received %v, want 1", v)
		}
	})
}

// simFamilies are the metric families, and their types, that the sim
// agent showed once its sensors had read, when it served them through
// Prometheus's Go client (client_golang 1.25, its default Go and process
// collectors and its instrumented handler), before rollcall wrote the
// text format itself.
const simFamilies = `
go_gc_duration_seconds summary
go_gc_gogc_percent gauge
go_gc_gomemlimit_bytes gauge
go_goroutines gauge
go_info gauge
go_memstats_alloc_bytes gauge
go_memstats_alloc_bytes_total counter
go_memstats_buck_hash_sys_bytes gauge
go_memstats_frees_total counter
go_memstats_gc_sys_bytes gauge
go_memstats_heap_alloc_bytes gauge
go_memstats_heap_idle_bytes gauge
go_memstats_heap_inuse_bytes gauge
go_memstats_heap_objects gauge
go_memstats_heap_released_bytes gauge
go_memstats_heap_sys_bytes gauge
go_memstats_last_gc_time_seconds gauge
go_memstats_mallocs_total counter
go_memstats_mcache_inuse_bytes gauge
go_memstats_mcache_sys_bytes gauge
go_memstats_mspan_inuse_bytes gauge
go_memstats_mspan_sys_bytes gauge
go_memstats_next_gc_bytes gauge
go_memstats_other_sys_bytes gauge
go_memstats_stack_inuse_bytes gauge
go_memstats_stack_sys_bytes gauge
go_memstats_sys_bytes gauge
go_sched_gomaxprocs_threads gauge
go_threads gauge
process_cpu_seconds_total counter
process_max_fds gauge
process_network_receive_bytes_total counter
process_network_transmit_bytes_total counter
process_open_fds gauge
process_resident_memory_bytes gauge
process_start_time_seconds gauge
process_virtual_memory_bytes gauge
process_virtual_memory_max_bytes gauge
promhttp_metric_handler_requests_in_flight gauge
promhttp_metric_handler_requests_total counter
rollcall_ain_ratio gauge
rollcall_ain_volts gauge
rollcall_build_info gauge
rollcall_dac_output_volts gauge
rollcall_description_version gauge
rollcall_dht22_humidity_ratio gauge
rollcall_dht22_temperature_celsius gauge
rollcall_discovery_acks_sent_total counter
rollcall_discovery_acks_skipped_total counter
rollcall_discovery_probes_dropped_total counter
rollcall_discovery_probes_received_total counter
rollcall_discovery_reports_published_total counter
rollcall_discovery_reports_republished_total counter
rollcall_gpio_input_level gauge
rollcall_gpio_output_level gauge
rollcall_host_name_conflicts gauge
rollcall_mqtt_connect_failures_total counter
rollcall_mqtt_connected gauge
rollcall_mqtt_connection_losses_total counter
rollcall_mqtt_connects_total counter
rollcall_mqtt_messages_published_total counter
rollcall_mqtt_messages_received_total counter
rollcall_mqtt_publish_errors_total counter
rollcall_read_errors_total counter
rollcall_read_failing gauge
rollcall_reads_total counter
rollcall_service_failsafe gauge
rollcall_service_halted gauge
rollcall_service_healthy gauge
rollcall_service_messages_dropped_total counter
rollcall_sonar_distance_meters gauge
`

// scrapeAsPrometheus gets /metrics as Prometheus 3 asks for it (its
// default scrape_protocols and gzip), checks that it came gzipped in the
// text format, and returns it unzipped.
func scrapeAsPrometheus(t *testing.T, a *agent.Agent) []byte {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+a.MetricsAddr().String()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, not the text format", ct)
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", ce)
	}
	gz, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(gz)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// checkGrouped checks that body's families come sorted by name, each
// with one HELP and one TYPE before its samples, which follow one another.
func checkGrouped(t *testing.T, body []byte) {
	t.Helper()
	var family, kind string
	seen := map[string]bool{}
	for line := range strings.Lines(string(body)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "#" && f[1] == "HELP":
			if seen[f[2]] {
				t.Errorf("%s: a second HELP", f[2])
			}
			if f[2] < family {
				t.Errorf("%s after %s: families not sorted", f[2], family)
			}
			family, kind = f[2], ""
			seen[family] = true
		case len(f) >= 4 && f[0] == "#" && f[1] == "TYPE":
			if f[2] != family || kind != "" {
				t.Errorf("TYPE of %s under %s's HELP", f[2], family)
			}
			kind = f[3]
		default:
			name, _, _ := strings.Cut(f[0], "{")
			if kind == "" {
				t.Errorf("%s: a sample before its TYPE", name)
			}
			if name != family && !(kind == "summary" && (name == family+"_sum" || name == family+"_count")) {
				t.Errorf("%s: a sample under %s's HELP and TYPE", name, family)
			}
		}
	}
	if len(seen) == 0 {
		t.Error("no families")
	}
}

// BenchmarkScrape is one scrape of the sim agent over loopback HTTP, in
// the text format, as Prometheus makes it every scrape_interval.
func BenchmarkScrape(b *testing.B) {
	a := simAgent(b)
	url := "http://" + a.MetricsAddr().String() + "/metrics"
	var size int64
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		size, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET /metrics: %v %v", resp.Status, err)
		}
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

func mqttClient(t *testing.T) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", brokerPort)).SetClientID("metrics-test")
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// promtoolCheck runs Prometheus's promtool over an exposition, where it
// is installed.
func promtoolCheck(t *testing.T, body []byte) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed (apt-get install prometheus): only promlint checked the metrics")
		return
	}
	path := filepath.Join(t.TempDir(), "metrics.prom")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
