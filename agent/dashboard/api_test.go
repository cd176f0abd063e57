package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/agent/cluster"
	"github.com/rollcall/rollcall/agent/dashboard"
)

func getJSON(t testing.TB, url string, header http.Header, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if v != nil && res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, b)
		}
	}
	return res.StatusCode
}

// post sends a JSON body as the page does.
func post(t testing.TB, url string, body string, header http.Header) (int, dashboard.Answer) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var a dashboard.Answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("POST %s: %s: not an Answer: %v: %s", url, res.Status, err, b)
	}
	return res.StatusCode, a
}

func findHost(st dashboard.State, host string) *dashboard.Host {
	for i := range st.Hosts {
		if st.Hosts[i].Host == host {
			return &st.Hosts[i]
		}
	}
	return nil
}

func findService(st dashboard.State, host, service string) *dashboard.Service {
	h := findHost(st, host)
	if h == nil {
		return nil
	}
	for i := range h.Services {
		if h.Services[i].Function == service {
			return &h.Services[i]
		}
	}
	return nil
}

func findInterface(ifs []dashboard.Interface, name string) *dashboard.Interface {
	for i := range ifs {
		if ifs[i].Name == name {
			return &ifs[i]
		}
	}
	return nil
}

// TestInventoryAndEvents reads the cluster through the API and follows a
// change and a host going offline over the event stream, on both brokers.
func TestInventoryAndEvents(t *testing.T) {
	for _, tc := range []struct {
		name   string
		broker func(testing.TB) string
	}{
		{name: "embedded", broker: embeddedBroker},
		{name: "mosquitto", broker: mosquitto},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSimCluster(t, tc.broker(t), "pi1", "pi2", "pi3")
			_, hs := dashboardServer(t, c, dashboard.DefaultConfig())

			var st dashboard.State
			if code := getJSON(t, hs.URL+"/api/state", nil, &st); code != http.StatusOK {
				t.Fatalf("GET /api/state: %d", code)
			}
			var hosts []string
			for _, h := range st.Hosts {
				hosts = append(hosts, h.Host+":"+h.Status)
			}
			if want := []string{"pi1:online", "pi2:online", "pi3:online"}; !slices.Equal(hosts, want) {
				t.Fatalf("hosts %v, want %v", hosts, want)
			}
			var fns []string
			for _, s := range findHost(st, "pi1").Services {
				fns = append(fns, s.Function)
			}
			slices.Sort(fns)
			if want := []string{"ain", "dac", "dht22", "gpio", "sonar"}; !slices.Equal(fns, want) {
				t.Errorf("pi1 services %v, want %v", fns, want)
			}
			if st.Control {
				t.Error("a dashboard without allow_control says control")
			}
			g := findService(st, "pi1", "gpio")
			if !g.Setup || !g.Control || g.Halted {
				t.Errorf("pi1/gpio: setup %v control %v halted %v, want a schema, a control topic, running", g.Setup, g.Control, g.Halted)
			}
			for _, w := range []struct {
				ifs    []dashboard.Interface
				name   string
				widget string
			}{
				{g.Outputs, "lamp", "switch"},
				{g.Outputs, "dimmer", "slider"},
				{g.Inputs, "float_switch", "lamp"},
				{findService(st, "pi1", "dht22").Inputs, "air_temperature", "gauge"},
				{findService(st, "pi1", "sonar").Inputs, "front", "gauge"},
				{findService(st, "pi1", "ain").Inputs, "light", "gauge"},
				{findService(st, "pi1", "dac").Outputs, "level", "slider"},
			} {
				it := findInterface(w.ifs, w.name)
				if it == nil {
					t.Errorf("pi1: no interface %s", w.name)
					continue
				}
				if it.Class.Widget != w.widget {
					t.Errorf("pi1 %s: widget %q, want %q", w.name, it.Class.Widget, w.widget)
				}
				if it.Value == nil {
					t.Errorf("pi1 %s: no value", w.name)
				}
			}
			var form dashboard.SetupForm
			if code := getJSON(t, hs.URL+"/api/setup/pi1/gpio", nil, &form); code != http.StatusOK || !bytes.Contains(form.Schema, []byte(`"output"`)) || !bytes.Contains(form.Config, []byte(`"dimmer"`)) {
				t.Errorf("GET /api/setup/pi1/gpio: %d, schema %.80s, config %s", code, form.Schema, form.Config)
			}

			evs := events(t, hs.URL, nil)
			first := waitEvent(t, evs, 5*time.Second, "state", func(e event) bool { return e.name == "state" })
			var st2 dashboard.State
			if err := json.Unmarshal(first.data, &st2); err != nil || len(st2.Hosts) != 3 {
				t.Fatalf("first event: %v, %d hosts", err, len(st2.Hosts))
			}

			// A change made as `rollcall set` makes it reaches the page.
			cl := c.client(t, "set")
			if _, err := cl.Do(context.Background(), "pi2", "gpio", "set/dimmer", cluster.SetPayload("37", 0)); err != nil {
				t.Fatal(err)
			}
			waitEvent(t, evs, 5*time.Second, "value pi2/gpio/output/dimmer = 37", func(e event) bool {
				var v dashboard.Value
				return e.name == "value" && json.Unmarshal(e.data, &v) == nil &&
					v.Host == "pi2" && v.Service == "gpio" && v.Kind == "output" && v.Name == "dimmer" && jsonNumber(v.Value) == 37
			})

			// A host that stops says so.
			c.stop("pi3")
			waitEvent(t, evs, 10*time.Second, "pi3 offline", func(e event) bool {
				var v dashboard.Value
				return e.name == "value" && json.Unmarshal(e.data, &v) == nil && v.Host == "pi3" && v.Kind == "status" && v.Value == "offline"
			})
			waitEvent(t, evs, 10*time.Second, "a state with pi3 offline", func(e event) bool {
				var s dashboard.State
				return e.name == "state" && json.Unmarshal(e.data, &s) == nil && findHost(s, "pi3") != nil && findHost(s, "pi3").Status == "offline"
			})
			var log []dashboard.Entry
			getJSON(t, hs.URL+"/api/log", nil, &log)
			if !slices.ContainsFunc(log, func(e dashboard.Entry) bool {
				return e.Host == "pi3" && e.Op == "status" && e.What == "offline" && !e.OK
			}) {
				t.Errorf("log %+v has no pi3 offline", log)
			}
		})
	}
}

func jsonNumber(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case json.Number:
		f, _ := x.Float64()
		return f
	}
	return -1
}

// TestWrites drives outputs, setups and controls through the API, the
// same request path as the CLI verbs, and reads the outcome on the broker.
func TestWrites(t *testing.T) {
	c := newSimCluster(t, embeddedBroker(t), "pi1", "pi2")
	cfg := dashboard.DefaultConfig()
	cfg.AllowControl = true
	srv, hs := dashboardServer(t, c, cfg)
	if !srv.State().Control {
		t.Error("allow_control: the state does not say control")
	}

	for _, tc := range []struct {
		name   string
		path   string
		body   string
		header http.Header
		status int
		field  string // of the service's error
		code   string // of the service's or the dashboard's error
		topic  string // retained afterwards
		want   string
	}{
		{name: "switch on", path: "/api/set/pi1/gpio/lamp", body: `{"value": 1}`, status: 200, topic: "pi1/gpio/output/lamp", want: "1"},
		{name: "switch off by word", path: "/api/set/pi1/gpio/lamp", body: `{"value": "off"}`, status: 200, topic: "pi1/gpio/output/lamp", want: "0"},
		{name: "duty", path: "/api/set/pi1/gpio/dimmer", body: `{"value": 42.5}`, status: 200, topic: "pi1/gpio/output/dimmer", want: "42.5"},
		{name: "bad value", path: "/api/set/pi1/gpio/lamp", body: `{"value": 7}`, status: 422, field: "value", code: "invalid", topic: "pi1/gpio/output/lamp", want: "0"},
		{name: "no such output", path: "/api/set/pi1/gpio/nothing", body: `{"value": 1}`, status: 422, code: "not_found"},
		{name: "setup bad pin", path: "/api/setup/pi1/gpio", body: `{"output": [{"name": "lamp", "pin": 99}]}`, status: 422, field: "output[0].pin", code: "invalid"},
		{name: "setup pin held", path: "/api/setup/pi1/gpio", body: `{"output": [{"name": "lamp", "pin": 4}]}`, status: 422, field: "output[0].pin", code: "conflict"},
		{name: "no value", path: "/api/set/pi1/gpio/lamp", body: `{}`, status: 400, code: dashboard.CodeBadRequest},
		{name: "setup not an object", path: "/api/setup/pi1/gpio", body: `[1]`, status: 400, code: dashboard.CodeBadRequest},
		{name: "bad control", path: "/api/control/pi1/gpio", body: `{"cmd": "reboot"}`, status: 400, code: dashboard.CodeBadRequest},
		{name: "bad pulse", path: "/api/set/pi1/gpio/lamp", body: `{"value": 1, "for": "soon"}`, status: 400, code: dashboard.CodeBadRequest},
		{name: "another site's page", path: "/api/set/pi1/gpio/lamp", body: `{"value": 1}`, header: http.Header{"Origin": {"http://evil.example"}}, status: 403, code: dashboard.CodeCrossOrigin, topic: "pi1/gpio/output/lamp", want: "0"},
		{name: "cross-site fetch", path: "/api/set/pi1/gpio/lamp", body: `{"value": 1}`, header: http.Header{"Sec-Fetch-Site": {"cross-site"}}, status: 403, code: dashboard.CodeCrossOrigin},
		{name: "form body", path: "/api/set/pi1/gpio/lamp", body: `value=1`, header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, status: 415, code: dashboard.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, a := post(t, hs.URL+tc.path, tc.body, tc.header)
			if status != tc.status || a.OK != (tc.status == 200) {
				t.Fatalf("%s: %d ok=%v, want %d: %+v", tc.path, status, a.OK, tc.status, a)
			}
			if tc.code != "" {
				var got []string
				if a.Error != nil {
					got = append(got, a.Error.Code+" "+a.Error.Field)
				}
				if a.Result != nil {
					for _, p := range a.Result.Problems() {
						got = append(got, p.Code+" "+p.Field)
					}
				}
				if want := strings.TrimSpace(tc.code + " " + tc.field); !slices.ContainsFunc(got, func(s string) bool { return strings.TrimSpace(s) == want }) {
					t.Errorf("errors %q, want %q", got, want)
				}
			}
			if tc.topic != "" {
				if got := c.retained(t, tc.topic); got != tc.want {
					t.Errorf("%s retained %q, want %q", tc.topic, got, tc.want)
				}
			}
		})
	}

	// An estop shows in the state (its description says halted), refuses
	// sets, and recover lifts it; a host's estop reaches each service.
	if status, a := post(t, hs.URL+"/api/control/pi1/gpio", `{"cmd": "estop"}`, nil); status != 200 || !a.OK {
		t.Fatalf("estop: %d %+v", status, a)
	}
	eventually(t, 5*time.Second, "pi1/gpio halted in the state", func() bool { return findService(srv.State(), "pi1", "gpio").Halted })
	if status, a := post(t, hs.URL+"/api/set/pi1/gpio/lamp", `{"value": 1}`, nil); status != 422 || a.Result == nil || a.Result.Problems()[0].Code != "halted" {
		t.Errorf("set while halted: %d %+v", status, a)
	}
	if status, a := post(t, hs.URL+"/api/control/pi1/gpio", `{"cmd": "recover"}`, nil); status != 200 || !a.OK {
		t.Fatalf("recover: %d %+v", status, a)
	}
	eventually(t, 5*time.Second, "pi1/gpio running in the state", func() bool { return !findService(srv.State(), "pi1", "gpio").Halted })

	status, a := post(t, hs.URL+"/api/control/pi1", `{"cmd": "estop"}`, nil)
	var svcs []string
	for _, r := range a.Results {
		svcs = append(svcs, r.Service+":"+r.Status)
	}
	if want := []string{"ain:ok", "dac:ok", "dht22:ok", "gpio:ok", "sonar:ok"}; status != 200 || !a.OK || !slices.Equal(svcs, want) {
		t.Errorf("host estop: %d ok=%v results %v, want %v", status, a.OK, svcs, want)
	}
	eventually(t, 5*time.Second, "pi1's services halted", func() bool {
		return findService(srv.State(), "pi1", "sonar").Halted && findService(srv.State(), "pi1", "dht22").Halted
	})
	if status, a := post(t, hs.URL+"/api/control/pi1", `{"cmd": "recover"}`, nil); status != 200 || !a.OK {
		t.Errorf("host recover: %d %+v", status, a)
	}
	if status, _ := post(t, hs.URL+"/api/control/nohost", `{"cmd": "estop"}`, nil); status != 404 {
		t.Errorf("estop of an unknown host: %d, want 404", status)
	}

	var log []dashboard.Entry
	getJSON(t, hs.URL+"/api/log", nil, &log)
	if !slices.ContainsFunc(log, func(e dashboard.Entry) bool {
		return e.Op == "setup" && !e.OK && len(e.Problems) > 0 && e.Problems[0].Field == "output[0].pin"
	}) {
		t.Errorf("the log has no refused setup with its field: %+v", log)
	}
}

// TestReadOnly: without allow_control every write is refused and nothing
// reaches the hosts.
func TestReadOnly(t *testing.T) {
	c := newSimCluster(t, embeddedBroker(t), "pi1")
	srv, hs := dashboardServer(t, c, dashboard.DefaultConfig())
	if srv.State().Control {
		t.Fatal("a read-only dashboard says control")
	}
	for _, tc := range []struct{ name, path, body string }{
		{name: "set", path: "/api/set/pi1/gpio/lamp", body: `{"value": 1}`},
		{name: "setup", path: "/api/setup/pi1/gpio", body: `{"output": [{"name": "x", "pin": 5}]}`},
		{name: "service estop", path: "/api/control/pi1/gpio", body: `{"cmd": "estop"}`},
		{name: "host estop", path: "/api/control/pi1", body: `{"cmd": "estop"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, a := post(t, hs.URL+tc.path, tc.body, nil)
			if status != http.StatusForbidden || a.OK || a.Error == nil || a.Error.Code != dashboard.CodeReadOnly || !strings.Contains(a.Error.Message, "allow_control") {
				t.Errorf("%d %+v, want 403 read_only naming allow_control", status, a)
			}
		})
	}
	if got := c.retained(t, "pi1/gpio/output/lamp"); got != "0" {
		t.Errorf("lamp %q after refused writes, want 0", got)
	}
	if s := findService(srv.State(), "pi1", "gpio"); s.Halted {
		t.Error("a refused estop halted the service")
	}
	// A host seen going online may be logged; a refused write may not.
	for _, e := range srv.Log() {
		if e.Op != "status" {
			t.Errorf("a refused write was logged as a request: %+v", e)
		}
	}
}

// TestPassword: with a password file every request needs the password.
func TestPassword(t *testing.T) {
	c := newSimCluster(t, embeddedBroker(t), "pi1")
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := dashboard.DefaultConfig()
	cfg.PasswordFile = pw
	cfg.AllowControl = true
	_, hs := dashboardServer(t, c, cfg)

	auth := func(user, pass string) http.Header {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header
	}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		header http.Header
		status int
	}{
		{name: "page without", method: "GET", path: "/", status: 401},
		{name: "state without", method: "GET", path: "/api/state", status: 401},
		{name: "events without", method: "GET", path: "/api/events", status: 401},
		{name: "set without", method: "POST", path: "/api/set/pi1/gpio/lamp", status: 401},
		{name: "wrong password", method: "GET", path: "/api/state", header: auth("admin", "correct horse "), status: 401},
		{name: "prefix of it", method: "GET", path: "/api/state", header: auth("admin", "correct"), status: 401},
		{name: "page", method: "GET", path: "/", header: auth("admin", "correct horse"), status: 200},
		{name: "script", method: "GET", path: "/app.js", header: auth("", "correct horse"), status: 200},
		{name: "state", method: "GET", path: "/api/state", header: auth("anyone", "correct horse"), status: 200},
		{name: "set", method: "POST", path: "/api/set/pi1/gpio/lamp", header: auth("anyone", "correct horse"), status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, hs.URL+tc.path, strings.NewReader(`{"value": 1}`))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tc.header {
				req.Header[k] = v
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Errorf("%s %s: %d, want %d", tc.method, tc.path, res.StatusCode, tc.status)
			}
			if res.StatusCode == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without a Basic challenge: %q", res.Header.Get("WWW-Authenticate"))
			}
		})
	}
	evs := events(t, hs.URL, auth("admin", "correct horse"))
	waitEvent(t, evs, 5*time.Second, "state", func(e event) bool { return e.name == "state" })
}

func TestNewPasswordFile(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\nsecond line\n"), 0o600)
	for _, tc := range []struct {
		name string
		file string
		want string
	}{
		{name: "missing", file: filepath.Join(dir, "nothing"), want: "nothing: no such file"},
		{name: "empty first line", file: empty, want: "the first line is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := dashboard.DefaultConfig()
			cfg.PasswordFile = tc.file
			_, err := dashboard.New(dashboard.Options{Config: cfg})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
