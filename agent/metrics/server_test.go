package metrics

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestGzipAccepted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []string
		want   bool
	}{
		{"none", nil, false},
		{"Prometheus and Go's transport", []string{"gzip"}, true},
		{"a browser", []string{"gzip, deflate, br, zstd"}, true},
		{"weighed", []string{"identity;q=0.5, gzip;q=0.8"}, true},
		{"identity preferred", []string{"gzip;q=0.5, identity"}, false},
		{"gzip refused", []string{"gzip;q=0"}, false},
		{"anything, no encoding first", []string{"*"}, false},
		{"upper case", []string{"GZIP"}, true},
		{"two headers", []string{"br", "gzip"}, true},
		{"only others", []string{"br, zstd"}, false},
		{"bad weight skipped", []string{"gzip;q=x"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/metrics", nil)
			for _, h := range tc.header {
				req.Header.Add("Accept-Encoding", h)
			}
			if got := gzipAccepted(req); got != tc.want {
				t.Errorf("Accept-Encoding %q: gzip %v, want %v", tc.header, got, tc.want)
			}
		})
	}
}

// get scrapes url with the headers given (name, value, ...) and returns
// the response and its body, gunzipped if it came gzipped.
func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// A transport of its own, which leaves gzip to the test.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = gz
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestHandler(t *testing.T) {
	reg, err := NewRegistry(Options{Host: "h", Version: "1.0"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(reg, nil))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name     string
		header   []string
		url      string
		encoding string
		has      []string
		hasNot   []string
	}{
		{
			name:   "Prometheus",
			header: []string{"Accept", "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", "Accept-Encoding", "gzip"},
			url:    "/", encoding: "gzip",
			has: []string{"# TYPE go_goroutines gauge\n", "\nrollcall_build_info{", "\nprocess_start_time_seconds "},
		},
		{
			name: "curl", url: "/",
			has: []string{"# TYPE go_goroutines gauge\n", "\nrollcall_build_info{"},
		},
		{
			name: "some families", url: "/?name[]=go_goroutines&name[]=go_threads",
			has:    []string{"# TYPE go_goroutines gauge\n", "# TYPE go_threads gauge\n"},
			hasNot: []string{"rollcall_build_info", "process_"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+tc.url, tc.header...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s\n%s", resp.Status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != textContentType {
				t.Errorf("Content-Type %q", ct)
			}
			if ce := resp.Header.Get("Content-Encoding"); ce != tc.encoding {
				t.Errorf("Content-Encoding %q, want %q", ce, tc.encoding)
			}
			if v := resp.Header.Values("Vary"); strings.Join(v, ",") != "Accept,Accept-Encoding" {
				t.Errorf("Vary %q", v)
			}
			p := expfmt.NewTextParser(model.LegacyValidation)
			if _, err := p.TextToMetricFamilies(strings.NewReader(body)); err != nil {
				t.Errorf("does not parse: %v", err)
			}
			for _, s := range tc.has {
				if !strings.Contains(body, s) {
					t.Errorf("no %q", s)
				}
			}
			for _, s := range tc.hasNot {
				if strings.Contains(body, s) {
					t.Errorf("%q, which was not asked for", s)
				}
			}
		})
	}
	_, body := get(t, srv.URL+"/?name[]=promhttp_metric_handler_requests_total&name[]=promhttp_metric_handler_requests_in_flight")
	want := `# HELP promhttp_metric_handler_requests_in_flight Current number of scrapes being served.
# TYPE promhttp_metric_handler_requests_in_flight gauge
promhttp_metric_handler_requests_in_flight 1
# HELP promhttp_metric_handler_requests_total Total number of scrapes by HTTP status code.
# TYPE promhttp_metric_handler_requests_total counter
promhttp_metric_handler_requests_total{code="200"} 3
promhttp_metric_handler_requests_total{code="500"} 0
promhttp_metric_handler_requests_total{code="503"} 0
`
	if body != want {
		t.Errorf("the handler's own count:\n%s\nwant\n%s", body, want)
	}
}

// TestHandlerBusy: a scrape beyond two at once is turned away at once
// (503), not queued, and counted.
func TestHandlerBusy(t *testing.T) {
	inside, release := make(chan struct{}), make(chan struct{})
	slow := func(s *scrape) { // until released
		select {
		case inside <- struct{}{}:
			<-release
		case <-release:
		}
	}
	reg := &Registry{collectors: []func(*scrape){slow}}
	srv := httptest.NewServer(Handler(reg, nil))
	t.Cleanup(srv.Close)

	done := make(chan int, maxScrapesInFlight)
	for range maxScrapesInFlight {
		go func() {
			resp, err := http.Get(srv.URL)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		<-inside
	}
	resp, body := get(t, srv.URL)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a third scrape at once: %s %s", resp.Status, body)
	}
	close(release)
	for range maxScrapesInFlight {
		if code := <-done; code != http.StatusOK {
			t.Errorf("a scrape let in: %d", code)
		}
	}
	_, body = get(t, srv.URL)
	for _, s := range []string{`requests_total{code="200"} 2`, `requests_total{code="503"} 1`} {
		if !strings.Contains(body, s) {
			t.Errorf("no %s in\n%s", s, body)
		}
	}
}
