package simcluster

// The services a simulated host runs: every kind registered, as in
// cmd/rollcall/services.go. Keep the two lists alike, so that a simulated
// host answers a sweep with as many replies as a real one. Without a
// block of their own, the sensor services run with nothing configured:
// they answer, describe themselves and read nothing.
import (
	_ "github.com/rollcall/rollcall/gpio"
	_ "github.com/rollcall/rollcall/sensors/ain"
	_ "github.com/rollcall/rollcall/sensors/dac"
	_ "github.com/rollcall/rollcall/sensors/dht22"
	_ "github.com/rollcall/rollcall/sensors/sonar"
)
