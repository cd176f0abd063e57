package main

// The services an agent can run. Adding a service to rollcall is one
// package that registers itself with services.Register, and one line here.
import (
	_ "github.com/rollcall/rollcall/gpio"
	_ "github.com/rollcall/rollcall/sensors/ain"
	_ "github.com/rollcall/rollcall/sensors/dac"
	_ "github.com/rollcall/rollcall/sensors/dht22"
	_ "github.com/rollcall/rollcall/sensors/sonar"
)
