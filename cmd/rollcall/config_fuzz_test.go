package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rollcall/rollcall/agent"
)

// FuzzConfig feeds the configuration file decoder and the validation the
// agent runs at start: neither may panic, every problem carries a code, a
// message and (but for a file that is not a map) the key it is about, and
// a file that passes yields a configuration the agent accepts.
func FuzzConfig(f *testing.F) {
	// The simulated host's file: pi.yaml is run by TestConfigsLoad, and
	// as a seed its size makes the fuzzer spend its time minimising.
	if b, err := os.ReadFile(filepath.Join("..", "..", "configs", "sim.yaml")); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		``, `{}`, "host: pi1\n", "host: \"a/b\"\n", "gpio:\n  output:\n    - {name: a, pin: 4.7}\n",
		"discovery: {port: 99999999999999999999}\n", "a: &a [*a]\n", "- 1\n", "mqtt: {broker: 'tcp://x:1883', keepalive: -1s}\n",
		"Host: pi1\n", "sonar: {rangers: [{name: f, trigger: 5, echo: 5}]}\n", "dht22: {sensors: [{name: air, pin: 4, interval: 1ms}]}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := agent.DefaultConfig()
		errs := decodeFile(b, &cfg)
		if len(errs) == 0 {
			errs = cfg.Validate()
		}
		for _, e := range errs {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("problem without code or message: %+v", e)
			}
		}
	})
}
