package services_test

import (
	"testing"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

func TestEnvWithDefaults(t *testing.T) {
	got := services.Env{}.WithDefaults()
	if _, real := got.Clock.(services.RealClock); !real || got.Sysfs != "/sys" || got.Dev != "/dev" || got.Logger == nil || got.Claims == nil {
		t.Errorf("defaults %+v", got)
	}
	clock, claims := servicestest.NewClock(), services.NewClaims()
	given := services.Env{Host: "pi1", StateDir: "/var/lib/rollcall", Sim: true, Sysfs: "testdata/sys", Dev: "testdata/dev", Claims: claims, Clock: clock}
	kept := given.WithDefaults()
	if kept.Host != "pi1" || kept.StateDir != given.StateDir || !kept.Sim || kept.Sysfs != "testdata/sys" || kept.Dev != "testdata/dev" ||
		kept.Claims != claims || kept.Clock != services.Clock(clock) {
		t.Errorf("given %+v, kept %+v", given, kept)
	}
}
