package discovery

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rollcall/rollcall/services"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got with testdata/name.golden, or rewrites the file
// when -update is given.
func golden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(bytes.TrimSpace(got), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	want = bytes.TrimSpace(want)
	if !bytes.Equal(bytes.TrimSpace(got), want) {
		t.Errorf("%s mismatch\n got: %s\nwant: %s", path, got, want)
	}
	return want
}

const machineA = "4f1c2d3e5a6b7c8d9e0f1a2b3c4d5e6f"

func TestWireGolden(t *testing.T) {
	report := Report{
		Hostname: "pibot01", ReplyTo: "pibot01", Cmd: CmdGetStatus,
		IPAddr: "192.168.1.50", Topic: "/stat/data", ExtAddr: "173.95.174.120",
		ID: 1234, Machine: machineA, V: 1,
	}
	desc := services.Topics{Host: "pibot01", Service: "gpio"}.Base()
	desc.Outputs = []services.Interface{{Name: "led", Topic: "pibot01/gpio/output/led", Type: "bool", Mode: "output", Set: "pibot01/gpio/set/led"}}
	desc.State = []byte(`{"secret":"not in replies"}`)

	tests := []struct {
		name  string
		msg   interface{ Marshal() ([]byte, error) }
		parse func([]byte) (any, error)
	}{
		{"probe_seed", Probe{Cmd: "status", ReplyTo: "pibot01", Topic: "/stat/data", ID: 1241},
			func(b []byte) (any, error) { return ParseProbe(b) }},
		{"probe_full", Probe{Cmd: "status", ReplyTo: "pibot01", Topic: "/stat/data", ID: 1241, V: 1,
			Heard: []string{"0a1b2c3d", "4f1c2d3e"}, JitterMS: 20, TS: 1700000000000,
			Nonce: "00112233445566778899aabbccddeeff", KID: "k2025", MAC: "0123456789abcdef0123456789abcdef"},
			func(b []byte) (any, error) { return ParseProbe(b) }},
		{"report", report,
			func(b []byte) (any, error) { return ParseReport(b) }},
		{"reply", NewReply(report, desc, []string{"gpio", "ain"}),
			func(b []byte) (any, error) { return ParseReply(b) }},
		{"reply_external", Reply{Report: Report{Hostname: "pibot02", ReplyTo: "pibot01", Cmd: CmdGetStatus, ID: 1234, Machine: "python-script-1"},
			ServiceInfo: ServiceInfo{Function: "camera"}},
			func(b []byte) (any, error) { return ParseReply(b) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.msg.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			want := golden(t, tt.name, b)
			got, err := tt.parse(want)
			if err != nil {
				t.Fatalf("parse golden: %v", err)
			}
			if !reflect.DeepEqual(got, tt.msg) {
				t.Errorf("parse(golden) = %+v, want %+v", got, tt.msg)
			}
		})
	}
}

// The seed messages of the original scripts must keep parsing and
// re-marshal to the same bytes.
func TestSeedBytes(t *testing.T) {
	probe := `{"cmd":"status","replyto":"pibot01","topic":"/stat/data","id":1241}`
	p, err := ParseProbe([]byte(probe))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := p.Marshal(); string(b) != probe {
		t.Errorf("probe re-marshalled as %s", b)
	}
	report := `{"hostname":"pibot01","replyto":"pibot01","cmd":"getstatus","ipaddr":"192.168.1.50","topic":"/stat/data","extaddr":"173.95.174.120","id":1234,"machine":"` + machineA + `","v":1}`
	r, err := ParseReport([]byte(report))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := r.Marshal(); string(b) != report {
		t.Errorf("report re-marshalled as %s", b)
	}
}

func TestParseProbeRejects(t *testing.T) {
	const ok = `"cmd":"status","replyto":"pibot01","topic":"/stat/data","id":1`
	tests := []struct {
		name  string
		in    string
		field string // "" for errors that are not about one field
		want  error
	}{
		{"not json", `cmd=status`, "", ErrMalformed},
		{"array", `[1,2]`, "", ErrMalformed},
		{"truncated", `{` + ok, "", ErrMalformed},
		{"too large", `{` + ok + `,"pad":"` + strings.Repeat("x", MaxDatagram) + `"}`, "", ErrTooLarge},
		{"empty object", `{}`, "id", nil},
		{"missing id", `{"cmd":"status","replyto":"a","topic":"/t"}`, "id", nil},
		{"null id", `{"cmd":"status","replyto":"a","topic":"/t","id":null}`, "id", nil},
		{"negative id", `{"cmd":"status","replyto":"a","topic":"/t","id":-1}`, "id", nil},
		{"fractional id", `{"cmd":"status","replyto":"a","topic":"/t","id":1.5}`, "id", nil},
		{"string id", `{"cmd":"status","replyto":"a","topic":"/t","id":"1"}`, "id", nil},
		{"huge id", `{"cmd":"status","replyto":"a","topic":"/t","id":99999999999999999999}`, "id", nil},
		{"missing cmd", `{"replyto":"a","topic":"/t","id":1}`, "cmd", nil},
		{"unknown cmd", `{"cmd":"reboot","replyto":"a","topic":"/t","id":1}`, "cmd", nil},
		{"missing replyto", `{"cmd":"status","topic":"/t","id":1}`, "replyto", nil},
		{"replyto wildcard +", `{"cmd":"status","replyto":"a+","topic":"/t","id":1}`, "replyto", nil},
		{"replyto slash", `{"cmd":"status","replyto":"a/b","topic":"/t","id":1}`, "replyto", nil},
		{"replyto dollar", `{"cmd":"status","replyto":"$SYS","topic":"/t","id":1}`, "replyto", nil},
		{"replyto newline", `{"cmd":"status","replyto":"a\nb","topic":"/t","id":1}`, "replyto", nil},
		{"replyto too long", `{"cmd":"status","replyto":"` + strings.Repeat("a", 65) + `","topic":"/t","id":1}`, "replyto", nil},
		{"missing topic", `{"cmd":"status","replyto":"a","id":1}`, "topic", nil},
		{"topic wildcard #", `{"cmd":"status","replyto":"a","topic":"/stat/#","id":1}`, "topic", nil},
		{"topic wildcard +", `{"cmd":"status","replyto":"a","topic":"/+/data","id":1}`, "topic", nil},
		{"topic NUL", `{"cmd":"status","replyto":"a","topic":"/t\u0000","id":1}`, "topic", nil},
		{"topic dollar", `{"cmd":"status","replyto":"a","topic":"$SYS/x","id":1}`, "topic", nil},
		{"topic too long", `{"cmd":"status","replyto":"a","topic":"/` + strings.Repeat("t", 256) + `","id":1}`, "topic", nil},
		{"version 2", `{` + ok + `,"v":2}`, "v", nil},
		{"version string", `{` + ok + `,"v":"1"}`, "v", nil},
		{"heard not list", `{` + ok + `,"heard":"0a1b2c3d"}`, "heard", nil},
		{"heard upper case", `{` + ok + `,"heard":["0A1B2C3D"]}`, "heard[0]", nil},
		{"heard short", `{` + ok + `,"heard":["0a1b"]}`, "heard[0]", nil},
		{"heard hostname", `{` + ok + `,"heard":["0a1b2c3d","pibot01x"]}`, "heard[1]", nil},
		{"negative jitter", `{` + ok + `,"jitter_ms":-5}`, "jitter_ms", nil},
		{"negative ts", `{` + ok + `,"ts":-5}`, "ts", nil},
		{"nonce not hex", `{` + ok + `,"nonce":"xyz"}`, "nonce", nil},
		{"kid with comma", `{` + ok + `,"kid":"a,b"}`, "kid", nil},
		{"mac short", `{` + ok + `,"mac":"abcd"}`, "mac", nil},
		{"mac not hex", `{` + ok + `,"mac":"` + strings.Repeat("z", 32) + `"}`, "mac", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseProbe([]byte(tt.in))
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if tt.field != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tt.field {
					t.Errorf("error %v, want a FieldError on %q", err, tt.field)
				}
			}
			if !strings.HasPrefix(err.Error(), "probe: ") {
				t.Errorf("error %q does not say what failed", err)
			}
		})
	}
}

func TestParseProbeAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Probe
	}{
		{"unknown fields ignored", `{"cmd":"status","replyto":"a","topic":"/t","id":0,"future":{"x":[1]}}`,
			Probe{Cmd: "status", ReplyTo: "a", Topic: "/t"}},
		{"empty heard is no heard", `{"cmd":"status","replyto":"a","topic":"/t","id":3,"heard":[]}`,
			Probe{Cmd: "status", ReplyTo: "a", Topic: "/t", ID: 3}},
		{"jitter above cap kept", `{"cmd":"status","replyto":"a","topic":"/t","id":3,"jitter_ms":5000}`,
			Probe{Cmd: "status", ReplyTo: "a", Topic: "/t", ID: 3, JitterMS: 5000}},
		{"largest id", `{"cmd":"status","replyto":"a","topic":"/t","id":9223372036854775807}`,
			Probe{Cmd: "status", ReplyTo: "a", Topic: "/t", ID: 1<<63 - 1}},
		{"exactly MaxDatagram", `{"cmd":"status","replyto":"a","topic":"/t","id":1,"pad":"` + strings.Repeat("x", MaxDatagram-59) + `"}`,
			Probe{Cmd: "status", ReplyTo: "a", Topic: "/t", ID: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProbe([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseReplyRejects(t *testing.T) {
	tests := []struct {
		name, in, field string
	}{
		{"missing function", `{"hostname":"h","machine":"m","id":1}`, "function"},
		{"missing machine", `{"hostname":"h","function":"f","id":1}`, "machine"},
		{"missing hostname", `{"machine":"m","function":"f","id":1}`, "hostname"},
		{"missing id", `{"hostname":"h","machine":"m","function":"f"}`, "id"},
		{"bad host service", `{"hostname":"h","machine":"m","function":"f","id":1,"host_services":["a/b"]}`, "host_services[0]"},
		{"inputs not list", `{"hostname":"h","machine":"m","function":"f","id":1,"inputs":{}}`, "inputs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseReply([]byte(tt.in))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("error %v, want a FieldError on %q", err, tt.field)
			}
		})
	}
}

func TestParseReportRejects(t *testing.T) {
	const base = `"hostname":"h","replyto":"s","topic":"/t","machine":"m","id":1`
	tests := []struct {
		name, in, field string
	}{
		{"wrong cmd", `{` + base + `,"cmd":"status"}`, "cmd"},
		{"bad ipaddr", `{` + base + `,"cmd":"getstatus","ipaddr":"pibot"}`, "ipaddr"},
		{"topic wildcard", `{"hostname":"h","replyto":"s","topic":"#","machine":"m","id":1,"cmd":"getstatus"}`, "topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseReport([]byte(tt.in))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("error %v, want a FieldError on %q", err, tt.field)
			}
		})
	}
}

func TestShortID(t *testing.T) {
	tests := []struct {
		name, machine, want string
	}{
		{"machine-id", machineA, "4f1c2d3e"},
		{"upper case", "4F1C2D3E5A6B", "4f1c2d3e"},
		{"uuid", "4f1c-2d3e-5a6b", "4f1c2d3e"},
		{"not hex", "python-script-1", ShortID("python-script-1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ShortID(tt.machine)
			if got != tt.want || !isShortID(got) {
				t.Errorf("ShortID(%q) = %q, want %q (8 lowercase hex)", tt.machine, got, tt.want)
			}
		})
	}
	if ShortID("host-a") == ShortID("host-b") {
		t.Error("hashed short ids collide")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"cmd":"status","replyto":"pibot01","topic":"/stat/data","id":1241}`))
	f.Add([]byte(`{"cmd":"status","replyto":"p","topic":"/t","id":0,"v":1,"heard":["0a1b2c3d"],"jitter_ms":20,"ts":1,"nonce":"ab","kid":"k","mac":"0123456789abcdef0123456789abcdef"}`))
	f.Add([]byte(`{"cmd":"status","replyto":"p\u00e9","topic":"/t<&>","id":1,"heard":[]}`))
	f.Add([]byte(`{"CMD":"status","Replyto":"p","topic":"/t","id":1,"id":2}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProbe(b)
		if err != nil {
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("accepted probe does not marshal: %v", err)
		}
		p2, err := ParseProbe(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip changed the probe:\n%+v\n%+v", p, p2)
		}
	})
}

func ExampleParseProbe() {
	p, err := ParseProbe([]byte(`{"cmd":"status","replyto":"pibot01","topic":"/stat/data","id":1241}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.ReplyTo, p.Topic, p.ID)

	_, err = ParseProbe([]byte(`{"cmd":"status","replyto":"pibot01","topic":"/stat/#","id":1241}`))
	fmt.Println(err)
	// Output:
	// pibot01 /stat/data 1241
	// probe: topic: not a valid topic: "/stat/#"
}

func BenchmarkParseProbe(b *testing.B) {
	in := []byte(`{"cmd":"status","replyto":"pibot01","topic":"/stat/data","id":1241,"v":1,"heard":["0a1b2c3d","4f1c2d3e"],"jitter_ms":20}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := ParseProbe(in); err != nil {
			b.Fatal(err)
		}
	}
}
