package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/gpio"
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
	want := agent.Config{
		Host:     host,
		StateDir: "/var/lib/rollcall",
		LogLevel: "info",
		MQTT:     agent.MQTTConfig{Keepalive: 30 * time.Second},
		Discovery: agent.DiscoveryConfig{
			Port: 4747, ReportTopic: "/udp/report", ReplyTopic: "/stat/data",
			KeyID: "k1", ReplayWindow: 30 * time.Second, InventoryTopic: "rollcall/inventory",
			Interfaces: []string{}, Targets: []string{},
		},
		GPIO: gpio.Config{Driver: "periph", FailsafeAfter: gpio.Duration(60 * time.Second)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("systemd/rollcall.yaml:\n got %#v\nwant %#v", got, want)
	}
}
