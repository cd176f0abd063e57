package services

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type decodeInner struct {
	Name string `json:"name" rollcall:"required"`
	N    int    `json:"n"`
}

type decodeDoc struct {
	Port   int               `json:"port"`
	Addr   uint16            `json:"addr"`
	Ratio  float64           `json:"ratio"`
	On     bool              `json:"on"`
	Tags   []string          `json:"tags"`
	Keys   map[string]string `json:"keys"`
	Wait   time.Duration     `json:"wait"`
	Every  Duration          `json:"every"`
	Items  []decodeInner     `json:"items"`
	Inner  *decodeInner      `json:"inner"`
	Any    any               `json:"any"`
	Hidden string            `json:"-"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, in string
		field    string // of the first error, "" for success
		message  string
		check    func(t *testing.T, d decodeDoc)
	}{
		{name: "json", in: `{"port":1883,"addr":72,"ratio":0.5,"on":true,"tags":["a"],"keys":{"k1":"v"},"wait":"30s","every":20,"items":[{"name":"x","n":2}],"inner":{"name":"y"},"any":[1,"two"]}`,
			check: func(t *testing.T, d decodeDoc) {
				if d.Port != 1883 || d.Addr != 72 || !d.On || d.Wait != 30*time.Second || d.Every.D() != 20*time.Millisecond || d.Items[0].N != 2 || d.Inner.Name != "y" || d.Keys["k1"] != "v" {
					t.Errorf("%+v", d)
				}
			}},
		{name: "yaml", in: "port: 1883\naddr: 0x48\nwait: 1m\nevery: 1s\nitems:\n  - {name: x}\n",
			check: func(t *testing.T, d decodeDoc) {
				if d.Addr != 0x48 || d.Wait != time.Minute || d.Every.D() != time.Second || d.Port != 1883 {
					t.Errorf("%+v", d)
				}
			}},
		{name: "integral float is an integer", in: `{"port":1883.0}`, check: func(t *testing.T, d decodeDoc) {
			if d.Port != 1883 {
				t.Errorf("port %d", d.Port)
			}
		}},
		{name: "defaults kept", in: `{}`, check: func(t *testing.T, d decodeDoc) {
			if d.Port != 4747 {
				t.Errorf("the default was lost: %d", d.Port)
			}
		}},
		{name: "fraction for int", in: `{"port":4.7}`, field: "port", message: "integer"},
		{name: "bool for int", in: `{"port":true}`, field: "port", message: "integer, not true"},
		{name: "string for int", in: `{"port":"1883"}`, field: "port"},
		{name: "overflow", in: `{"port":99999999999999999999}`, field: "port", message: "out of range"},
		{name: "uint overflow", in: `{"addr":70000}`, field: "addr", message: "out of range"},
		{name: "negative uint", in: `{"addr":-1}`, field: "addr", message: "negative"},
		{name: "int for bool", in: `{"on":1}`, field: "on"},
		{name: "map for list", in: `{"tags":{"a":1}}`, field: "tags", message: "list"},
		{name: "list for map", in: `{"keys":["a"]}`, field: "keys"},
		{name: "null for int", in: `{"port":null}`, field: "port"},
		{name: "wrong case", in: `{"Port":1}`, field: "Port", message: "unknown field"},
		{name: "hidden field", in: `{"Hidden":"x"}`, field: "Hidden"},
		{name: "missing required", in: `{"items":[{"n":1}]}`, field: "items[0].name", message: "required"},
		{name: "duration as number", in: `{"wait":30}`, field: "wait", message: "duration"},
		{name: "bad duration", in: `{"every":"soon"}`, field: "every"},
		{name: "nan", in: "ratio: .nan\n", message: "finite"},
		{name: "yaml duplicate key", in: "port: 1\nport: 2\n", message: "twice"},
		{name: "yaml merge key", in: "a: &a {port: 1}\n<<: *a\n", message: "merge"},
		{name: "trailing data", in: `{"port":1} {"port":2}`, message: "after the document"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decodeDoc{Port: 4747}
			errs := Decode([]byte(tc.in), 1<<20, &d)
			if tc.field == "" && tc.message == "" {
				if errs != nil {
					t.Fatalf("errors %v", errs)
				}
				tc.check(t, d)
				return
			}
			if len(errs) == 0 || errs[0].Field != tc.field || !strings.Contains(errs[0].Message, tc.message) {
				t.Fatalf("errors %v, want field %q mentioning %q", errs, tc.field, tc.message)
			}
		})
	}
}

func TestDecodeReportsEveryProblem(t *testing.T) {
	var d decodeDoc
	errs := Decode([]byte(`{"port":"x","on":3,"tags":1,"nope":2,"items":[{"n":"y"}]}`), 0, &d)
	fields := map[string]bool{}
	for _, e := range errs {
		fields[e.Field] = true
	}
	for _, f := range []string{"port", "on", "tags", "nope", "items[0].n", "items[0].name"} {
		if !fields[f] {
			t.Errorf("no error at %s in %v", f, errs)
		}
	}
}

func TestParseYAMLAliases(t *testing.T) {
	bomb := "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
	if _, err := Parse([]byte(bomb), MaxPayload); err == nil || !strings.Contains(err.Error(), "expand") {
		t.Errorf("alias bomb: %v", err)
	}
	if _, err := Parse([]byte("a: &x 1\nb: *x\n"), 0); err == nil || !strings.Contains(err.Error(), "not accepted") {
		t.Errorf("aliases with no limit: %v", err)
	}
	// A 13-byte alias inside its own anchor took seconds of CPU (found
	// by dht22's FuzzSetup), as did deep nesting.
	for _, p := range []string{"s: &s [*s,*s]", "s: &s {a: *s}"} {
		if _, err := Parse([]byte(p), MaxPayload); err == nil {
			t.Errorf("%.20q parsed", p)
		}
	}
	if _, err := Parse([]byte(strings.Repeat("- ", 65)+"x"), MaxPayload); err == nil || !strings.Contains(err.Error(), "deeper than 64 levels") {
		t.Errorf("65 levels of YAML: %v", err)
	}
	v, err := Parse([]byte("a: &x {n: 1}\nb: *x\n"), MaxPayload)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(v); string(b) != `{"a":{"n":1},"b":{"n":1}}` {
		t.Errorf("small alias: %s", b)
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want time.Duration
		bad  bool
	}{
		{name: "string", in: `"20ms"`, want: 20 * time.Millisecond},
		{name: "number is ms", in: `20`, want: 20 * time.Millisecond},
		{name: "fraction of ms", in: `0.5`, want: 500 * time.Microsecond},
		{name: "numeric string", in: `"1500"`, want: 1500 * time.Millisecond},
		{name: "compound", in: `"1m30s"`, want: 90 * time.Second},
		{name: "garbage", in: `"soon"`, bad: true},
		{name: "huge", in: `1e300`, bad: true},
		{name: "bool", in: `true`, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(tc.in), &d)
			if tc.bad != (err != nil) || (!tc.bad && d.D() != tc.want) {
				t.Fatalf("%s: %v, %v", tc.in, d, err)
			}
		})
	}
	b, _ := json.Marshal(struct{ D Duration }{Duration(20 * time.Millisecond)})
	if string(b) != `{"D":"20ms"}` {
		t.Errorf("marshal: %s", b)
	}
}

func TestReservedTopics(t *testing.T) {
	own := Topics{Host: "pizero2", Service: "gpio"}
	tests := []struct {
		topic    string
		reserved bool
		onChange bool // allowed as an on_change target
	}{
		{"/stat/data", false, true},
		{"sensors/door", false, true},
		{"otherpi/status", true, false},
		{"otherpi/description", true, false},
		{"otherpi/get", true, false},
		{"otherpi/services", true, false},
		{"otherpi/display/description", true, false},
		{"otherpi/display/status", true, false},
		{"rollcall/inventory", true, false},
		{"rollcall", true, false},
		{"otherpi/gpio/setup", true, false},
		{"otherpi/gpio/control", true, false},
		{"otherpi/gpio/result", true, false},
		{"otherpi/gpio/get/input", true, false},
		{"otherpi/gpio/input/button", true, false},
		{"otherpi/gpio/output/lamp", true, false},
		{"otherpi/gpio/set/lamp", true, true},
		{"pizero2/dac/set/level", true, true},
		{"pizero2/gpio/set/lamp", true, false},
		{"pizero2/gpio/get", true, false},
		{"otherpi/gpio/setup/extra", false, true},
		{"a/+/b", false, false},
	}
	for _, tc := range tests {
		if got := Reserved(tc.topic); got != tc.reserved {
			t.Errorf("Reserved(%q) = %v", tc.topic, got)
		}
		if got := CheckOnChange(own, tc.topic) == ""; got != tc.onChange {
			t.Errorf("CheckOnChange(%q) allowed = %v: %s", tc.topic, got, CheckOnChange(own, tc.topic))
		}
	}
}

func TestCheckFollow(t *testing.T) {
	own := Topics{Host: "pizero2", Service: "dac"}
	tests := []struct {
		topic string
		ok    bool
	}{
		{"otherpi/ain/input/soil", true},
		{"otherpi/ain/input/soil/value", true},
		{"otherpi/gpio/output/fan", true},
		{"pizero2/gpio/output/fan/value", true},
		{"pizero2/dac/input/x", true},
		{"pizero2/dac/input/x/value", true},
		{"pizero2/dac/output/level", false},
		{"pizero2/dac/output/level/value", false},
		{"pizero2/dac/set/level", false},
		{"otherpi/dac/set/level", false},
		{"otherpi/gpio/setup", false},
		{"otherpi/status", false},
		{"otherpi/ain/input/soil/raw", false},
		{"rollcall/inventory", false},
		{"sensors/door", true},
		{"a/+/b", false},
		{"$SYS/broker/load", false},
	}
	for _, tc := range tests {
		msg := CheckFollow(own, tc.topic)
		if (msg == "") != tc.ok {
			t.Errorf("CheckFollow(%q) = %q, want allowed %v", tc.topic, msg, tc.ok)
		}
	}
}

// FuzzDecode holds the decoder to its promise on any input: no panic,
// every error with a code and a message, and what decodes marshals back
// to something that decodes the same.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{}`, `{"port":1,"items":[{"name":"a"}]}`, "port: 0x10\nitems: [{name: a}]\n", `{"port":4.7}`,
		"a: &a [1]\nb: *a\n", `[`, "\x00", `{"keys":{"a":"b"},"any":{"x":[null]}}`, "- 1\n- 2", "port: .inf"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var d decodeDoc
		errs := Decode(in, MaxPayload, &d)
		for _, e := range errs {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("error without code or message: %+v", e)
			}
		}
		if errs != nil {
			return
		}
		// encoding/json writes a time.Duration as nanoseconds; documents
		// write it as "30s", the only form the decoder takes.
		wait := d.Wait
		d.Wait = 0
		b, err := json.Marshal(d)
		if err != nil {
			return // a value JSON cannot hold (an "any" the decoder kept)
		}
		b = []byte(strings.Replace(string(b), `"wait":0`, `"wait":"`+wait.String()+`"`, 1))
		var again decodeDoc
		if errs := Decode(b, 0, &again); errs != nil {
			t.Fatalf("re-decode of %s: %v", b, errs)
		}
	})
}
