package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/gpio"
	"github.com/rollcall/rollcall/services"
)

// The .deb installs systemd/rollcall.yaml as /etc/rollcall/rollcall.yaml. It
// must be valid as shipped, name no broker that may not exist and drive no
// pin of hardware nobody has described yet.
func TestPackagedConfig(t *testing.T) {
	got, err := load(t, "--config", "../../systemd/rollcall.yaml")
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ = strings.Cut(host, ".")
	want := agent.DefaultConfig()
	want.Host = host
	want.Blocks[gpio.Name] = &gpio.Config{Driver: "periph", FailsafeAfter: services.Duration(60 * time.Second)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("systemd/rollcall.yaml:\n got %#v\nwant %#v", got, want)
	}
	for name, b := range want.Blocks {
		if !reflect.DeepEqual(got.Blocks[name], b) {
			t.Errorf("%s:\n got %#v\nwant %#v", name, got.Blocks[name], b)
		}
	}
}
