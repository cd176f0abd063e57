package metrics

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// A Registry is what the agent's /metrics shows: the Go runtime's and the
// process's metrics, rollcall's own, and the handler's count of scrapes,
// all read afresh at every scrape.
type Registry struct {
	collectors []func(*scrape)

	mu      sync.Mutex
	scrapes *scrapeStats // set by the first Handler
}

// NewRegistry returns a registry of the agent's own: the Go runtime's and
// the process's metrics, and rollcall's, each of the latter with a host
// label naming the host as its topics do (the scrape target's address
// does not).
func NewRegistry(o Options) (*Registry, error) {
	if !utf8.ValidString(o.Host) {
		return nil, fmt.Errorf("metrics: host %q is not UTF-8, which a label value must be", o.Host)
	}
	return &Registry{collectors: []func(*scrape){goMetrics, liveProc.collect, newCollector(o).collect}}, nil
}

func (r *Registry) gather() *scrape {
	s := newScrape()
	for _, collect := range r.collectors {
		collect(s)
	}
	r.mu.Lock()
	st := r.scrapes
	r.mu.Unlock()
	if st != nil {
		st.collect(s)
	}
	return s
}

// WriteText writes the registry's metrics to w in Prometheus's text
// format, version 0.0.4. A metric that cannot be shown (a label value
// that is not UTF-8, a second metric of one name and labels) is left out
// and named in the error; the rest is written.
func (r *Registry) WriteText(w io.Writer) error {
	s := r.gather()
	return errors.Join(s.err(), s.writeText(w, nil))
}

// How /metrics is served: as promhttp served it, so that scrapers see no
// difference.
const (
	// textContentType is the text format's, every metric name being one
	// that needs no escaping.
	textContentType = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
	// A Pi Zero has one core: scrapes wait, they do not pile up.
	maxScrapesInFlight = 2
	scrapeTimeout      = 10 * time.Second
)

// Handler serves reg's metrics in the text format, gzipped if the scraper
// accepts it (Prometheus does). A metric that cannot be gathered is logged
// and left out; the rest is served. The handler counts its own scrapes
// under promhttp's names (promhttp_metric_handler_requests_total and
// _in_flight), as node_exporter's does, so that dashboards watching them
// keep working.
func Handler(reg *Registry, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sem := make(chan struct{}, maxScrapesInFlight)
	serve := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		default:
			http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", cap(sem)), http.StatusServiceUnavailable)
			return
		}
		s := reg.gather()
		if err := s.err(); err != nil {
			log.Warn("metrics left out of a scrape", "err", err)
			if len(s.families) == 0 {
				http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		h := w.Header()
		h.Add("Vary", "Accept")
		h.Add("Vary", "Accept-Encoding")
		h.Set("Content-Type", textContentType)
		out := io.Writer(w)
		if gzipAccepted(req) {
			h.Set("Content-Encoding", "gzip")
			gz := gzipPool.Get().(*gzip.Writer)
			gz.Reset(w)
			defer func() {
				gz.Close()
				gzipPool.Put(gz)
			}()
			out = gz
		}
		if err := s.writeText(out, nameFilter(req)); err != nil {
			log.Warn("metrics: write", "err", err)
		}
	})
	return reg.scrapeStats().instrument(http.TimeoutHandler(serve, scrapeTimeout,
		fmt.Sprintf("Exceeded configured timeout of %v.\n", scrapeTimeout)))
}

// A gzip writer holds about 800 KB of compressor state: scrapes share a
// few rather than each making its own.
var gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// gzipAccepted says whether req's Accept-Encoding prefers gzip to no
// encoding at all: the highest q wins, "*" stands for either, and of two
// with one q no encoding comes first; a q of 0 refuses.
func gzipAccepted(req *http.Request) bool {
	best, bestQ := "identity", -1.0
	for _, offer := range []string{"identity", "gzip"} {
		for _, v := range req.Header.Values("Accept-Encoding") {
			for spec := range strings.SplitSeq(v, ",") {
				coding, params, _ := strings.Cut(spec, ";")
				coding = strings.ToLower(strings.TrimSpace(coding))
				q := 1.0
				if p := strings.TrimSpace(params); p != "" {
					v, ok := strings.CutPrefix(p, "q=")
					f, err := strconv.ParseFloat(v, 64)
					if !ok || err != nil || f < 0 || f > 1 {
						continue // not an encoding one can weigh
					}
					q = f
				}
				if q > bestQ && (coding == offer || coding == "*") {
					best, bestQ = offer, q
				}
			}
		}
	}
	return best == "gzip" && bestQ > 0
}

// nameFilter is what ?name[]=a&name[]=b asks for, as promhttp reads it:
// only the families named, or all (nil) without the parameter.
func nameFilter(req *http.Request) func(string) bool {
	names := req.URL.Query()["name[]"]
	if len(names) == 0 {
		return nil
	}
	return func(name string) bool { return slices.Contains(names, name) }
}

// scrapeStats count the scrapes of a registry's handlers.
type scrapeStats struct {
	inFlight atomic.Int64
	mu       sync.Mutex
	byCode   map[int]uint64
}

var (
	scrapesInFlight = newDesc("promhttp_metric_handler_requests_in_flight",
		"Current number of scrapes being served.", gaugeKind)
	scrapesByCode = newDesc("promhttp_metric_handler_requests_total",
		"Total number of scrapes by HTTP status code.", counterKind, "code")
)

// scrapeStats returns reg's scrape counts, made by the first handler and
// shared by the next, as promhttp shares them.
func (r *Registry) scrapeStats() *scrapeStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.scrapes == nil {
		// The likeliest codes, at 0 from the start.
		r.scrapes = &scrapeStats{byCode: map[int]uint64{http.StatusOK: 0, http.StatusInternalServerError: 0, http.StatusServiceUnavailable: 0}}
	}
	return r.scrapes
}

func (st *scrapeStats) collect(s *scrape) {
	s.add(scrapesInFlight, float64(st.inFlight.Load()))
	st.mu.Lock()
	defer st.mu.Unlock()
	for code, n := range st.byCode {
		s.add(scrapesByCode, float64(n), strconv.Itoa(code))
	}
}

// instrument counts the scrapes in flight through next, and those done by
// status code: a scrape shows itself in flight, and is counted once done.
func (st *scrapeStats) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		st.inFlight.Add(1)
		func() {
			defer st.inFlight.Add(-1)
			next.ServeHTTP(rec, req)
		}()
		st.mu.Lock()
		st.byCode[rec.code]++
		st.mu.Unlock()
	})
}

// A statusRecorder remembers the status code of a response.
type statusRecorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.code, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// A Server serves /metrics over HTTP.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen binds addr for the metrics of reg; Serve serves them.
func Listen(addr string, reg *Registry, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", Handler(reg, log))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "rollcall agent: metrics at /metrics")
	})
	return &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// Addr is the address the server is bound to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until ctx ends, then closes the listener and returns nil.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.srv.Close() })
	defer stop()
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve %s: %w", s.ln.Addr(), err)
	}
	return nil
}
