package dashboard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/services"
)

//go:embed static
var static embed.FS

// Codes of the dashboard's own errors, beside the services' codes (see
// services.Code*).
const (
	CodeReadOnly     = "read_only"     // allow_control is not set
	CodeUnauthorized = "unauthorized"  // no password, or a wrong one
	CodeCrossOrigin  = "cross_origin"  // a write from another site's page
	CodeUnavailable  = "unavailable"   // not connected to the broker
	CodeNoAnswer     = "no_answer"     // the service did not answer in time
	CodeBadRequest   = "bad_request"   // the body is not what the endpoint takes
	CodeNotDescribed = "not_described" // no such host or service in the inventory
)

// Answer is what a write returns: the service's result (or every
// service's, for a host's estop), or why the dashboard sent nothing.
type Answer struct {
	OK      bool             `json:"ok"`
	Result  *cluster.Result  `json:"result,omitempty"`
	Results []cluster.Result `json:"results,omitempty"`
	Error   *services.Error  `json:"error,omitempty"`
}

// SetupForm is what the page builds a setup form from: the setup
// payload's JSON Schema and the setup in force, from the description.
type SetupForm struct {
	Host    string          `json:"host"`
	Service string          `json:"service"`
	Schema  json.RawMessage `json:"schema"`
	Config  json.RawMessage `json:"config,omitempty"`
	Halted  bool            `json:"halted"`
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	files, _ := fs.Sub(static, "static")
	assets := http.FileServerFS(files)
	mux.Handle("GET /{$}", assets)
	mux.Handle("GET /app.js", assets)
	mux.Handle("GET /app.css", assets)
	mux.Handle("GET /icon.svg", assets)
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.State()) })
	mux.HandleFunc("GET /api/log", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Log()) })
	mux.HandleFunc("GET /api/events", s.events)
	mux.HandleFunc("GET /api/setup/{host}/{service}", s.setupForm)
	mux.HandleFunc("POST /api/setup/{host}/{service}", s.write(s.setup))
	mux.HandleFunc("POST /api/set/{host}/{service}/{name}", s.write(s.set))
	mux.HandleFunc("POST /api/control/{host}/{service}", s.write(s.control))
	mux.HandleFunc("POST /api/control/{host}", s.write(s.control))
	return s.guard(mux)
}

// guard asks for the password (when there is one) and sets the headers
// every answer carries: the page runs only its own script, in no frame.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if !s.authorized(r) {
			h.Set("WWW-Authenticate", `Basic realm="rollcall dashboard", charset="UTF-8"`)
			fail(w, http.StatusUnauthorized, CodeUnauthorized, "this dashboard asks for its password")
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Cache-Control", "no-cache")
		}
		next.ServeHTTP(w, r)
	})
}

// authorized checks the basic-auth password, whatever the user name,
// comparing digests in constant time so that neither the password's
// content nor its length shows in the time taken.
func (s *Server) authorized(r *http.Request) bool {
	if s.passSum == nil {
		return true
	}
	_, pw, ok := r.BasicAuth()
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(pw))
	return subtle.ConstantTimeCompare(sum[:], s.passSum[:]) == 1
}

// write wraps a handler that sends a request: it refuses writes when the
// dashboard is read-only, writes from another site's page (a browser
// sends the saved password along with them), and bodies that are not
// JSON, which no plain HTML form can send.
func (s *Server) write(h func(http.ResponseWriter, *http.Request, *cluster.Client)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.AllowControl {
			fail(w, http.StatusForbidden, CodeReadOnly, "this dashboard is read-only: set dashboard.allow_control: true (or --allow-control) to drive outputs, send setups and estop")
			return
		}
		if !sameOrigin(r) {
			fail(w, http.StatusForbidden, CodeCrossOrigin, "a write must come from the dashboard's own page")
			return
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			fail(w, http.StatusUnsupportedMediaType, CodeBadRequest, "a write's body is JSON (Content-Type: application/json)")
			return
		}
		c := s.requests()
		if c == nil {
			fail(w, http.StatusServiceUnavailable, CodeUnavailable, "the dashboard is not connected to the broker yet")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, services.MaxPayload)
		h(w, r, c)
	}
}

// sameOrigin reports whether a request comes from a page of this
// dashboard, or from no page at all (curl): browsers say where a request
// comes from in Sec-Fetch-Site and Origin.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	sub := s.hub.subscribe()
	if sub == nil {
		fail(w, http.StatusServiceUnavailable, CodeUnavailable, fmt.Sprintf("the dashboard is stopping, or already serves %d pages", maxStreams))
		return
	}
	defer s.hub.unsubscribe(sub)
	// Subscribed first, then the picture: a change in between is sent
	// twice rather than lost.
	first := append(frame("state", s.State()), frame("log", s.Log())...)
	sub.stream(w, r, first)
}

func (s *Server) setupForm(w http.ResponseWriter, r *http.Request) {
	host, service := r.PathValue("host"), r.PathValue("service")
	s.mu.Lock()
	sd, ok := s.details[host].services[service]
	s.mu.Unlock()
	if !ok || sd.schema == nil {
		fail(w, http.StatusNotFound, CodeNotDescribed, fmt.Sprintf("%s/%s: no setup schema in its description", host, service))
		return
	}
	writeJSON(w, http.StatusOK, SetupForm{Host: host, Service: service, Schema: sd.schema, Config: sd.config, Halted: sd.halted})
}

// setup sends the body, a setup object, to <host>/<service>/setup.
func (s *Server) setup(w http.ResponseWriter, r *http.Request, c *cluster.Client) {
	host, service := r.PathValue("host"), r.PathValue("service")
	var payload map[string]any
	if err := decodeBody(r, &payload); err != nil {
		fail(w, http.StatusBadRequest, CodeBadRequest, "a setup is a JSON object: "+err.Error())
		return
	}
	res, err := c.Do(r.Context(), host, service, "setup", payload)
	s.answer(w, Entry{Host: host, Service: service, Op: services.OpSetup}, res, err)
}

// set drives one output, as `rollcall set` does: the body is
// {"value": 1} (a number, true/false, or a word such as "on"), with an
// optional pulse {"for": "500ms"}.
func (s *Server) set(w http.ResponseWriter, r *http.Request, c *cluster.Client) {
	host, service, name := r.PathValue("host"), r.PathValue("service"), r.PathValue("name")
	var body struct {
		Value json.RawMessage `json:"value"`
		For   string          `json:"for"`
	}
	if err := decodeBody(r, &body); err != nil || len(body.Value) == 0 {
		if err == nil {
			err = errors.New(`no "value"`)
		}
		fail(w, http.StatusBadRequest, CodeBadRequest, `a set is {"value": ...}: `+err.Error())
		return
	}
	var pulse time.Duration
	if body.For != "" {
		d, err := time.ParseDuration(body.For)
		if err != nil || d <= 0 {
			fail(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("for: %q is not a duration such as 500ms", body.For))
			return
		}
		pulse = d
	}
	value := string(body.Value)
	var word string
	if json.Unmarshal(body.Value, &word) == nil {
		value = word
	}
	if !services.ValidTopicName(name) {
		fail(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("%q is not an output name", name))
		return
	}
	res, err := c.Do(r.Context(), host, service, "set/"+name, cluster.SetPayload(value, pulse))
	s.answer(w, Entry{Host: host, Service: service, Op: services.OpSet, What: name}, res, err)
}

// control sends {"cmd": "estop"} or {"cmd": "recover"} to one service,
// or to every service of a host at once.
func (s *Server) control(w http.ResponseWriter, r *http.Request, c *cluster.Client) {
	host, service := r.PathValue("host"), r.PathValue("service")
	var body struct {
		Cmd string `json:"cmd"`
	}
	if err := decodeBody(r, &body); err != nil || (body.Cmd != "estop" && body.Cmd != "recover") {
		fail(w, http.StatusBadRequest, CodeBadRequest, `a control is {"cmd": "estop"} or {"cmd": "recover"}`)
		return
	}
	if service != "" {
		res, err := c.Do(r.Context(), host, service, "control", map[string]any{"cmd": body.Cmd})
		s.answer(w, Entry{Host: host, Service: service, Op: services.OpControl, What: body.Cmd}, res, err)
		return
	}
	svcs := s.servicesOf(host)
	if len(svcs) == 0 {
		fail(w, http.StatusNotFound, CodeNotDescribed, fmt.Sprintf("%s: no such host, or it has no service with a control topic", host))
		return
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ans = Answer{OK: true}
		hs  = http.StatusOK
	)
	for _, svc := range svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Do(r.Context(), host, svc, "control", map[string]any{"cmd": body.Cmd})
			e, status := s.outcome(Entry{Host: host, Service: svc, Op: services.OpControl, What: body.Cmd}, res, err)
			mu.Lock()
			defer mu.Unlock()
			res.Host, res.Service = host, svc
			ans.Results = append(ans.Results, res)
			if !e.OK {
				ans.OK = false
				if hs == http.StatusOK {
					hs = status
				}
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(ans.Results, func(a, b cluster.Result) int { return strings.Compare(a.Service, b.Service) })
	writeJSON(w, hs, ans)
}

// servicesOf lists the services of a host that take controls.
func (s *Server) servicesOf(host string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, h := range s.inv.Hosts {
		if h.Host != host {
			continue
		}
		for _, svc := range h.Services {
			if svc.Control != "" {
				out = append(out, svc.Function)
			}
		}
	}
	return out
}

// answer logs a request's outcome and writes it.
func (s *Server) answer(w http.ResponseWriter, e Entry, res cluster.Result, err error) {
	e, status := s.outcome(e, res, err)
	ans := Answer{OK: e.OK}
	switch {
	case err == nil || res.Op != "":
		ans.Result = &res
	default:
		ans.Error = &services.Error{Code: codeOf(err), Message: e.Message}
	}
	writeJSON(w, status, ans)
}

// outcome makes the log entry of a request's outcome and its HTTP status:
// 200 done, 422 refused by the service, 504 no answer, 502 anything else.
func (s *Server) outcome(e Entry, res cluster.Result, err error) (Entry, int) {
	e.Time = time.Now()
	status := http.StatusOK
	var refused *cluster.RefusedError
	switch {
	case err == nil:
		e.OK = true
		e.Message = okMessage(e, res)
	case errors.As(err, &refused):
		e.Problems = res.Problems()
		status = http.StatusUnprocessableEntity
	case errors.Is(err, cluster.ErrNoAnswer) || errors.Is(err, context.DeadlineExceeded):
		e.Message = err.Error()
		status = http.StatusGatewayTimeout
	default:
		e.Message = err.Error()
		status = http.StatusBadGateway
	}
	s.record(e)
	return e, status
}

func codeOf(err error) string {
	if errors.Is(err, cluster.ErrNoAnswer) || errors.Is(err, context.DeadlineExceeded) {
		return CodeNoAnswer
	}
	return CodeUnavailable
}

// okMessage says what a request that worked did.
func okMessage(e Entry, res cluster.Result) string {
	switch e.Op {
	case services.OpSet:
		var d struct {
			Value any `json:"value"`
		}
		if json.Unmarshal(res.Data, &d) == nil && d.Value != nil {
			return fmt.Sprintf("%s = %v", e.What, d.Value)
		}
	case services.OpSetup:
		return "applied"
	case services.OpControl:
		if e.What == "estop" {
			return "halted, outputs at failsafe"
		}
		return "running"
	}
	return ""
}

// decodeBody reads one JSON value from the body, numbers kept as written.
func decodeBody(r *http.Request, v any) error {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return err
	}
	d := json.NewDecoder(&buf)
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"ok":false,"error":{"code":"internal","message":"encoding the answer failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, Answer{Error: &services.Error{Code: code, Message: msg}})
}
