package simcluster

// The services a simulated host runs: every kind registered, as in
// cmd/rollcall/services.go. Keep the two lists alike, so that a simulated
// host answers a sweep with as many replies as a real one.
import (
	_ "github.com/rollcall/rollcall/gpio"
)
