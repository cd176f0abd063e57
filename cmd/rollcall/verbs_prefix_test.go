package main_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestVerbsTopicPrefix runs an agent under --topic-prefix site1 and
// drives it with the verbs: with the same prefix (flag or environment)
// they reach it, without one they see no such host.
func TestVerbsTopicPrefix(t *testing.T) {
	bin := buildRollcall(t)
	broker := plainMosquitto(t)
	dir := t.TempDir()
	config := filepath.Join(dir, "rollcall.yaml")
	os.WriteFile(config, []byte(killConfig), 0o644)
	common := []string{"--config", config, "--broker", broker}
	port := fmt.Sprint(freePort(t, "udp"))
	startProc(t, bin, append([]string{"agent", "--sim", "--host", "v1", "--state-dir", filepath.Join(dir, "state"),
		"--port", port, "--topic-prefix", "site1"}, common...)...)
	w := watchHost(t, broker, "site1/v1")
	w.awaitGPIO(t)

	sweep := []string{"sweep", "--interface", "lo", "--port", port, "--expect", "1", "--timeout", "1s"}
	tests := []struct {
		name string
		args []string
		env  string // ROLLCALL_MQTT_TOPIC_PREFIX
		code int
		says []string
		not  []string
	}{
		{name: "get a host", args: []string{"get", "v1", "--topic-prefix", "site1"}, says: []string{`"machine"`, `"site1/v1/gpio/setup"`}},
		{name: "get a host, prefix from the environment", args: []string{"get", "v1"}, env: "site1", says: []string{`"site1/v1/gpio/setup"`}},
		{name: "get a host without the prefix", args: []string{"get", "v1"}, code: 2, says: []string{"no description"}},
		{name: "get a service", args: []string{"get", "v1", "gpio", "--topic-prefix", "site1"}, says: []string{"lamp", "output"}},
		{name: "setup query", args: []string{"setup", "v1", "gpio", "-", "--topic-prefix", "site1"}, says: []string{"v1/gpio setup is", `"lamp"`}},
		{name: "set", args: []string{"set", "v1", "gpio", "lamp", "on", "--topic-prefix", "site1"}, says: []string{"v1/gpio/lamp = 1"}},
		{name: "set without the prefix", args: []string{"set", "v1", "gpio", "lamp", "on"}, code: 1, says: []string{"no answer"}},
		{name: "estop", args: []string{"estop", "v1", "--topic-prefix", "site1"}, says: []string{"v1/gpio: halted"}},
		{name: "estop without the prefix", args: []string{"estop", "v1"}, code: 2, says: []string{"not an online rollcall host"}},
		{name: "recover all", args: []string{"recover", "--all", "--topic-prefix", "site1"}, says: []string{"v1/gpio: running"}},
		{name: "inventory", args: []string{"inventory", "--topic-prefix", "site1"}, says: []string{"v1", "online", "gpio["}},
		{name: "inventory without the prefix", args: []string{"inventory"}, not: []string{"v1"}},
		{name: "sweep", args: slices.Concat(sweep, []string{"--topic-prefix", "site1"}), says: []string{"v1", "gpio["}},
		{name: "sweep without the prefix", args: sweep, code: 2, not: []string{"v1 "}},
		{name: "forget an online host", args: []string{"forget", "v1", "--topic-prefix", "site1"}, code: 2, says: []string{"online"}},
		{name: "a bad prefix", args: []string{"get", "v1", "--topic-prefix", "site1/#"}, code: 1, says: []string{"mqtt.topic_prefix:", "wildcard"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, slices.Concat(tt.args, common)...)
			cmd.Env = append(os.Environ(), "ROLLCALL_MQTT_TOPIC_PREFIX="+tt.env)
			cmd.Stdin = strings.NewReader("")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d:\n%s", code, tt.code, out.String())
			}
			for _, s := range tt.says {
				if !strings.Contains(out.String(), s) {
					t.Errorf("does not say %q:\n%s", s, out.String())
				}
			}
			for _, s := range tt.not {
				if strings.Contains(out.String(), s) {
					t.Errorf("says %q:\n%s", s, out.String())
				}
			}
		})
	}
	w.awaitValue(t, 0, "site1/v1/gpio/output/lamp", "1")
}
