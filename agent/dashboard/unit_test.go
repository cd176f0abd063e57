package dashboard

import (
	"encoding/json"
	"net"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
)

func f(v float64) *float64 { return &v }

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		output bool
		it     services.Interface
		want   Class
	}{
		{name: "gpio output", output: true, it: services.Interface{Type: "bool", Mode: "output"}, want: Class{Widget: "switch"}},
		{name: "gpio input", it: services.Interface{Type: "bool", Mode: "input"}, want: Class{Widget: "lamp"}},
		{name: "pwm duty", output: true, it: services.Interface{Type: "pwm", Mode: "pwm"},
			want: Class{Widget: "slider", Label: "duty", Unit: "%", Min: f(0), Max: f(100), Step: 1}},
		{name: "dac volts", output: true, it: services.Interface{Type: "number", Unit: "V", Mode: "output", Min: f(0), Max: f(3.3)},
			want: Class{Widget: "slider", Label: "voltage", Unit: "V", Min: f(0), Max: f(3.3), Step: 0.01, Decimals: 3}},
		{name: "dac without a range", output: true, it: services.Interface{Type: "number", Unit: "V"},
			want: Class{Widget: "number", Label: "voltage", Unit: "V", Step: 0.01, Decimals: 3}},
		{name: "dac in percent", output: true, it: services.Interface{Type: "number", Unit: "%"},
			want: Class{Widget: "slider", Label: "percent", Unit: "%", Min: f(0), Max: f(100), Step: 1, Decimals: 1}},
		{name: "ain channel", it: services.Interface{Type: "number", Unit: "V", Mode: "channel", Min: f(0), Max: f(4.096)},
			want: Class{Widget: "gauge", Label: "voltage", Unit: "V", Min: f(0), Max: f(4.096), Decimals: 3}},
		{name: "ain scaled", it: services.Interface{Type: "number", Unit: "lux", Mode: "channel", Min: f(0), Max: f(1000)},
			want: Class{Widget: "gauge", Unit: "lux", Min: f(0), Max: f(1000), Decimals: 2}},
		{name: "temperature", it: services.Interface{Type: "number", Unit: "°C", Mode: "temperature", Min: f(-40), Max: f(80)},
			want: Class{Widget: "gauge", Label: "temperature", Unit: "°C", Min: f(-40), Max: f(80), Decimals: 1}},
		{name: "distance", it: services.Interface{Type: "number", Unit: "m", Mode: "distance", Min: f(0), Max: f(4)},
			want: Class{Widget: "gauge", Label: "distance", Unit: "m", Min: f(0), Max: f(4), Decimals: 3}},
		{name: "reading without a range", it: services.Interface{Type: "number", Unit: "ppm"},
			want: Class{Widget: "value", Unit: "ppm", Decimals: 2}},
		{name: "inverted range", it: services.Interface{Type: "number", Min: f(5), Max: f(1)},
			want: Class{Widget: "value", Min: f(5), Max: f(1), Decimals: 2}},
		{name: "an external program's text output", output: true, it: services.Interface{Type: "string"}, want: Class{Widget: "text"}},
		{name: "an external program's text input", it: services.Interface{Type: "string"}, want: Class{Widget: "value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.output, tc.it); !reflect.DeepEqual(got, tc.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(tc.want)
				t.Errorf("classify = %s, want %s", g, w)
			}
		})
	}
}

func TestPayloadValue(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload string
		want    any
	}{
		{name: "gpio level", payload: "1", want: json.Number("1")},
		{name: "reading", payload: `{"value":21.5,"unit":"°C","raw":21500}`, want: json.Number("21.5")},
		{name: "no target", payload: `{"value":null,"unit":"m"}`, want: nil},
		{name: "word", payload: "on", want: "on"},
		{name: "JSON string", payload: `"ready"`, want: "ready"},
		{name: "object without value", payload: `{"a":1}`, want: `{"a":1}`},
		{name: "empty", payload: "", want: nil},
		{name: "two values", payload: "1 2", want: "1 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := payloadValue([]byte(tc.payload)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("payloadValue(%q) = %#v, want %#v", tc.payload, got, tc.want)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // fields
	}{
		{name: "default", cfg: DefaultConfig()},
		{name: "all interfaces", cfg: Config{Listen: ":8080", AllowControl: true, PasswordFile: "/etc/rollcall/dashboard.password"}},
		{name: "ipv6", cfg: Config{Listen: "[::1]:4748"}},
		{name: "no port", cfg: Config{Listen: "127.0.0.1"}, want: []string{"listen"}},
		{name: "port out of range", cfg: Config{Listen: "127.0.0.1:70000"}, want: []string{"listen"}},
		{name: "named port", cfg: Config{Listen: "127.0.0.1:http"}, want: []string{"listen"}},
		{name: "empty", cfg: Config{}, want: []string{"listen"}},
		{name: "spaces round the file", cfg: Config{Listen: ":1", PasswordFile: " /x "}, want: []string{"password_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range tc.cfg.Check() {
				got = append(got, e.Field)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Check fields %v, want %v", got, tc.want)
			}
		})
	}
}

func TestExposed(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr string
		want bool
	}{
		{name: "loopback", addr: "127.0.0.1:4748", want: false},
		{name: "loopback v6", addr: "[::1]:4748", want: false},
		{name: "all interfaces", addr: "0.0.0.0:4748", want: true},
		{name: "all v6", addr: "[::]:4748", want: true},
		{name: "lan", addr: "10.0.0.2:4748", want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := net.ResolveTCPAddr("tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			if got := exposed(a); got != tc.want {
				t.Errorf("exposed(%s) = %v, want %v", tc.addr, got, tc.want)
			}
		})
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header map[string]string
		want   bool
	}{
		{name: "curl", want: true},
		{name: "own page", header: map[string]string{"Origin": "http://pi.local:4748", "Sec-Fetch-Site": "same-origin"}, want: true},
		{name: "other port", header: map[string]string{"Origin": "http://pi.local:8080"}, want: false},
		{name: "other site", header: map[string]string{"Origin": "https://evil.example"}, want: false},
		{name: "cross-site without origin", header: map[string]string{"Sec-Fetch-Site": "cross-site"}, want: false},
		{name: "same-site is not same-origin", header: map[string]string{"Sec-Fetch-Site": "same-site"}, want: false},
		{name: "null origin", header: map[string]string{"Origin": "null"}, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "http://pi.local:4748/api/set/a/b/c", nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			if got := sameOrigin(r); got != tc.want {
				t.Errorf("sameOrigin = %v, want %v", got, tc.want)
			}
		})
	}
}

// A stream that is not read keeps the latest value of each interface,
// in the order they first came, after the events queued before them.
func TestSubscriberCoalesces(t *testing.T) {
	h := newHub()
	s := h.subscribe()
	h.send("state", State{})
	t0 := time.Unix(0, 0).UTC()
	for i := range 1000 {
		h.value(Value{Host: "pi1", Service: "ain", Kind: "input", Name: "light", Value: i, Time: t0})
		h.value(Value{Host: "pi1", Service: "gpio", Kind: "output", Name: "lamp", Value: i % 2, Time: t0})
	}
	got := string(s.take())
	want := "event: state\ndata: " + `{"control":false,"hosts":null,"conflicts":null}` + "\n\n" +
		"event: value\ndata: " + `{"host":"pi1","service":"ain","kind":"input","name":"light","value":999,"time":"1970-01-01T00:00:00Z"}` + "\n\n" +
		"event: value\ndata: " + `{"host":"pi1","service":"gpio","kind":"output","name":"lamp","value":1,"time":"1970-01-01T00:00:00Z"}` + "\n\n"
	if got != want {
		t.Errorf("pending:\n%s\nwant:\n%s", got, want)
	}
	if rest := s.take(); len(rest) != 0 {
		t.Errorf("taken twice: %q", rest)
	}
}

// A stream that falls eventQueue state events behind is dropped, so its
// browser reconnects to a fresh state instead of the dashboard queueing.
func TestSubscriberDropped(t *testing.T) {
	h := newHub()
	slow, quick := h.subscribe(), h.subscribe()
	for range eventQueue + 1 {
		h.send("log", Entry{})
		quick.take()
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("a stream that fell behind was kept")
	}
	select {
	case <-quick.gone:
		t.Fatal("a stream that kept up was dropped")
	default:
	}
	for i := 1; i < maxStreams; i++ { // quick is the one left
		if h.subscribe() == nil {
			t.Fatalf("stream %d refused, under the %d allowed", i+1, maxStreams)
		}
	}
	if h.subscribe() != nil {
		t.Errorf("more than %d streams taken", maxStreams)
	}
	h.close()
	if h.subscribe() != nil {
		t.Error("a closed hub took a stream")
	}
	if !strings.Contains(string(frame("x", make(chan int))), "data: null") {
		t.Error("an event that cannot be encoded is not sent as null")
	}
}
