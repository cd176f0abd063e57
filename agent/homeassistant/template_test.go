package homeassistant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// renderScript renders templates the way Home Assistant's MQTT
// integration does: value is the payload, value_json the payload parsed
// as JSON when it parses.
const renderScript = `
import json, sys, jinja2
env = jinja2.Environment()
out = []
for case in json.load(sys.stdin):
    v = {"value": case["payload"]}
    try:
        v["value_json"] = json.loads(case["payload"])
    except ValueError:
        pass
    out.append(env.from_string(case["template"]).render(v))
json.dump(out, sys.stdout)
`

// TestTemplatesRender renders every template the configs carry with
// Jinja2, Home Assistant's template engine, on payloads the services
// really publish (captured from the sim agent).
func TestTemplatesRender(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(python, "-c", "import jinja2").Run()
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 with jinja2 is needed (.ci/run installs python3-jinja2)")
		}
		t.Skip("python3 with jinja2 is not installed: apt-get install python3-jinja2")
	}
	summary, err := os.ReadFile(filepath.Join("testdata", "simpi.services.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The same summary with gpio unhealthy, as after a failed read.
	var doc map[string]any
	if err := json.Unmarshal(summary, &doc); err != nil {
		t.Fatal(err)
	}
	marked := false
	for _, s := range doc["services"].([]any) {
		if s := s.(map[string]any); s["function"] == "gpio" && s["health"] == "ok" {
			s["health"], s["error"], marked = "error", "pin 17: busy", true
		}
	}
	if !marked {
		t.Fatal("testdata/simpi.services.json has no healthy gpio service")
	}
	b, _ := json.Marshal(doc)
	unhealthy := string(b)
	gpioHealth := fmt.Sprintf(healthTemplate, jinjaString("gpio"))
	tests := []struct {
		name, template, payload, want string
	}{
		{name: "dht22 reading", template: ReadingTemplate, payload: `{"value":18.5,"unit":"°C","raw":18500,"ts":"2026-11-23T15:42:22Z"}`, want: "18.5"},
		{name: "sonar reading", template: ReadingTemplate, payload: `{"value":0.483,"unit":"m","raw":2821,"ts":"2026-11-23T15:42:23Z","celsius":18.5}`, want: "0.483"},
		{name: "ain reading", template: ReadingTemplate, payload: `{"value":50.3855859,"unit":"%","raw":129,"volts":1.66289063,"ts":"2026-11-23T15:46:25.175Z"}`, want: "50.3855859"},
		{name: "dac output", template: ReadingTemplate, payload: `{"value":1.10859375,"unit":"V","raw":86,"volts":1.10859375,"ts":"2026-11-23T15:46:27.175Z"}`, want: "1.10859375"},
		{name: "gpio level 1", template: ReadingTemplate, payload: "1", want: "1"},
		{name: "gpio level 0", template: ReadingTemplate, payload: "0", want: "0"},
		{name: "plain number", template: ReadingTemplate, payload: "42.5", want: "42.5"},
		{name: "not JSON", template: ReadingTemplate, payload: "open", want: "open"},
		{name: "pwm off", template: lightStateTemplate, payload: "0", want: "OFF"},
		{name: "pwm at 40 %", template: lightStateTemplate, payload: "40", want: "ON"},
		{name: "pwm at 0.5 %", template: lightStateTemplate, payload: "0.5", want: "ON"},
		{name: "pwm as JSON", template: lightStateTemplate, payload: `{"value":0}`, want: "OFF"},
		{name: "duty as brightness", template: ReadingTemplate, payload: "40", want: "40"},
		{name: "healthy service", template: gpioHealth, payload: string(summary), want: "online"},
		{name: "unhealthy service", template: gpioHealth, payload: unhealthy, want: "offline"},
		{name: "service gone", template: fmt.Sprintf(healthTemplate, jinjaString("ain")), payload: string(summary), want: "offline"},
		{name: "quoted name", template: fmt.Sprintf(healthTemplate, jinjaString(`o'neil\`)), payload: `{"services":[{"function":"o'neil\\","health":"ok"}]}`, want: "online"},
	}
	type tcase struct {
		Template string `json:"template"`
		Payload  string `json:"payload"`
	}
	var in []tcase
	for _, tc := range tests {
		in = append(in, tcase{tc.template, tc.payload})
	}
	b, _ = json.Marshal(in)
	cmd := exec.Command(python, "-c", renderScript)
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("render: %v\n%s", err, stderr.String())
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(tests) {
		t.Fatalf("render: %v: %s", err, out)
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got[i] != tc.want {
				t.Errorf("%s on %s rendered %q, want %q", tc.template, tc.payload, got[i], tc.want)
			}
		})
	}
}
