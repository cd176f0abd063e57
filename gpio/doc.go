// Package gpio is rollcall's GPIO service: digital outputs, PWM outputs
// and inputs on a Raspberry Pi header, configured live over MQTT.
//
// # Pins
//
// Pins are BCM GPIO numbers 0–27, grouped by kind as in the configuration
// file:
//
//	output:
//	  - {name: pump_drive, pin: 25, init: 0, pull: down, failsafe: 0}
//	pwm:
//	  - {name: servo, pin: 18, init: 20, period: 1000, pol: normal}
//	input:
//	  - {name: button, pin: 22, pull: down, edge: both, debounce: 20ms, on_change: pizero1/gpio/set/lamp}
//	failsafe_after: 30s
//
// output: init and failsafe are logical levels (0 or 1); active_low makes
// 1 drive the line low; failsafe is the level taken on shutdown, on estop
// and when the broker has been unreachable for failsafe_after. pull is
// accepted but has no electrical effect on periph: the kernel's character
// device does not bias output lines.
//
// pwm: init and failsafe are duties in percent; period is in microseconds
// (1000 µs = 1 kHz, the default); pol is normal or inverted. Pins 12, 13,
// 18 and 19 use the kernel's hardware PWM through /sys/class/pwm (enable
// it with dtoverlay=pwm-2chan; 12 and 18 share channel 0, 13 and 19
// channel 1). Every other pin gets software PWM from a goroutine: at
// least 1 ms period, jitter of tens to hundreds of µs, a few percent of
// duty resolution; good for LEDs, not for servos.
//
// input: pull (up, down, none), edge (rising, falling, both: which changes
// are published), debounce (the level must hold this long; a duration
// "20ms" or a number of milliseconds), scan (also publish at this
// interval), on_change (the topic to publish to; default
// <host>/gpio/input/<name>). Values are published retained, as "1" or
// "0".
//
// # Linking devices without a rule engine
//
// on_change may be any topic, including another host's set topic:
//
//	input:
//	  - {name: button, pin: 22, pull: down, on_change: pizero1/gpio/set/lamp}
//
// makes the button on this host drive the lamp on pizero1, through the
// broker, with nothing else running. Because input values are retained,
// pizero1 takes the button's last value again when it reconnects.
//
// # Topics
//
//	<host>/gpio/setup          JSON (or YAML) Config, plus optional "id" and
//	                           "merge": true (merge pins by name); an empty
//	                           payload returns the current setup
//	<host>/gpio/set/<name>     1, 0, on, off, true, false, a duty 0–100 for
//	                           pwm, or {"value":1,"for":"5s","period":…,"id":…}
//	<host>/gpio/control        estop | recover, or {"cmd":"estop","id":…}
//	<host>/gpio/get[/input|/output[/<name>]]  republish values; a plain
//	                           get's result also carries the description
//	<host>/gpio/result         the result of every request above
//	<host>/gpio/output/<name>  output level or duty, retained
//	<host>/gpio/input/<name>   input level, retained (unless on_change)
//
// A setup is checked completely (the header, pins held by other services
// or buses in the services.PinRegistry, unique names and pins, every enum
// and range) before anything changes; on any problem the result lists
// them all, each with its field, and nothing changes. A valid setup is
// applied whole: pins whose settings did not change stay untouched, and if
// opening a new one fails every change is rolled back. It is then saved
// atomically in <state dir>/gpio.json and restored at the next start.
//
// A set with "for" is a pulse: the output returns to its previous value
// after that long; any later set cancels it. estop drives every output to
// its failsafe value and refuses set and setup until recover; the halted
// flag survives restarts and is in the description and in every refusal.
//
// # Description
//
// Describe lists every pin as an input or output interface with its mode,
// topics and value. Its State is a State: driver, halted, the pins, the
// applied Config, and under "schema" the JSON Schemas of the setup and set
// payloads (see Schemas).
//
// # Drivers
//
// "periph" drives real pins through periph.io's host drivers (gpioioctl
// character-device lines on current Raspberry Pi OS); see Periph. "sim"
// is an in-memory board whose outputs can be wired to its inputs; see Sim.
package gpio
