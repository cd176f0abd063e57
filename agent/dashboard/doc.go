// Package dashboard is `rollcall dashboard`: a small web page of the
// cluster, live, from any host that can reach the broker. It needs no
// agent: like the CLI verbs it is an MQTT client, and everything it shows
// comes from what the hosts keep retained.
//
// # What it shows
//
// The picture is cluster.ReadInventory's (every host, its status and its
// services, from the retained descriptions), kept live by
// cluster.Client.Watch (every input, output and host status as it is
// published), and, for what the inventory leaves out, each host's
// description read again when its version goes up: whether a service is
// halted, its setup payload's JSON Schema and the setup in force.
//
// Each input and output is shown by its description alone (type, unit,
// mode, min/max) through a table of classes (classes.go): a bool output
// is a switch, a PWM duty or a number output with a range a slider, a
// reading with a range a gauge. A new service gets fitting widgets
// without a line of code here; the table only refines labels and
// decimals.
//
// # API
//
//	GET  /                                   the page (embedded; no CDN, no build step)
//	GET  /api/state                          State: hosts, services, interfaces and their values
//	GET  /api/events                         server-sent events: "state" (a State), "value" (a Value), "log" (an Entry, or every Entry at first)
//	GET  /api/log                            the event log ([]Entry, oldest first)
//	GET  /api/setup/{host}/{service}         SetupForm: the setup's JSON Schema and the setup in force
//	POST /api/set/{host}/{service}/{name}    {"value": 1, "for": "500ms"} to <host>/<service>/set/<name>
//	POST /api/setup/{host}/{service}         a setup object to <host>/<service>/setup
//	POST /api/control/{host}/{service}       {"cmd": "estop"|"recover"} to <host>/<service>/control
//	POST /api/control/{host}                 the same to every service of the host
//
// A write goes through cluster.Client.Do, the path `rollcall set`,
// `setup`, `estop` and `recover` take: a request id, and the service's own
// result awaited on its result topic. It answers an Answer: 200 and the
// result when the service took it, 422 and the result (its errors, each
// with its field) when the service refused it, 504 when no answer came;
// the dashboard's own refusals carry an error with one of the Code*
// codes. Every outcome also goes to the event log.
//
// # Safety
//
// The dashboard is read-only unless allow_control is set: the API refuses
// every write (403, read_only) and the page shows no control. With a
// password file, every request needs the password (HTTP basic
// authentication, any user name; compared in constant time, never
// logged). Writes must carry a JSON body and come from the dashboard's
// own page (Origin, Sec-Fetch-Site), so that another site open in the
// same browser cannot use the saved password to drive outputs (a reverse
// proxy in front must pass the Host header on). Listening beyond loopback
// without a password is warned about.
//
// # Live updates
//
// Server-sent events rather than a websocket: updates flow one way,
// EventSource reconnects by itself, and the standard library serves
// them. A slow reader gets the latest value of each interface rather
// than a queue of old ones (see events.go).
package dashboard
