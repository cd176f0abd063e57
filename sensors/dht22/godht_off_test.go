//go:build !godht || !cgo

package dht22_test

import (
	"strings"
	"testing"

	"github.com/rollcall/rollcall/sensors/dht22"
)

func TestOpenGoDHTNotBuilt(t *testing.T) {
	_, err := dht22.Open(dht22.Options{Driver: dht22.DriverGoDHT, Pin: 4})
	if err == nil || !strings.Contains(err.Error(), "build with -tags godht and CGO_ENABLED=1") {
		t.Errorf("Open godht in a default build: %v, want a hint to build with -tags godht and cgo", err)
	}
}
