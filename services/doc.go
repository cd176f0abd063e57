// Package services is what every rollcall service is made of: the Service
// contract, the description format, the request and result envelope, the
// topic scheme, and the runtime each service is a client of.
//
// A service is one capability of a host (gpio, ain, dac, dht22, sonar).
// The agent builds every registered kind (see Register) with an Env, runs
// it with a Bus, its view of the host's MQTT session, and asks it for a
// Description whenever the host's description is published or a sweep
// asks who is there.
//
// # Topics
//
// Every topic of a service hangs under <host>/<service>:
//
//	<host>/<service>/setup         replace (or merge) the service's configuration
//	<host>/<service>/set/<name>    drive one output
//	<host>/<service>/control       estop, recover
//	<host>/<service>/get[/...]     republish values; a plain get also answers with the description
//	<host>/<service>/result        results of every request above
//	<host>/<service>/input/<name>  input values (retained)
//	<host>/<service>/output/<name> output values (retained)
//
// With mqtt.topic_prefix, <host> is preceded by the prefix's levels
// (site1/<host>/<service>/setup): Env.TopicPrefix reaches the runtime's
// Topics, and a Prefix builds and reads every other topic of rollcall's.
// Under a prefix, the topics rollcall reserves are the prefixed ones
// (Prefix.Reserved); the unprefixed ones are the other systems' on the
// broker.
//
// A sensor service publishes each reading as a JSON object,
// {"value":…,"unit":"…","raw":…,"ts":"<RFC 3339>"}, on input/<name>, and
// the value alone, a plain number, on input/<name>/value, both retained
// (Values.PublishEach keeps the two together).
//
// Requests that arrive retained (a message the broker kept from the past)
// are ignored with a warning: a stored setup or recover would otherwise
// replay itself over what was done since, on every restart.
//
// # Requests and results
//
// Every request may carry an "id". Its result is published on the result
// topic as
//
//	{"id":7,"op":"setup","status":"ok","data":{...}}
//	{"id":8,"op":"set","status":"error","error":{"code":"invalid","message":"...","field":"output[0].pin"},"errors":[...]}
//
// The id is echoed verbatim, whatever JSON value it was. "error" is the
// first problem; "errors" lists every problem when there are several.
//
// A service that reads inputs on its own reports a failed read there too,
// rate-limited, as a result nobody asked for:
//
//	{"op":"read","status":"error","error":{"code":"hardware","message":"...","field":"channels[0]"}}
//
// # The runtime
//
// A service is a Device (the hardware side: Apply a configuration all or
// nothing, drive outputs to Failsafe, describe its Interfaces, Close) plus
// a Runtime, which does everything else the same way for every service:
//
//   - the setup transaction: size bound, JSON or YAML (aliases bounded),
//     strict decoding with the failing field named (Decode), the
//     configuration's own Check, its Claims against the host's (pins,
//     buses, I2C addresses, SPI chip selects; an address two services
//     share by agreement, SharedI2CClaim), Apply with rollback, an
//     atomic save (Store), the result, the description's version;
//   - estop and recover, kept in the state file; a state file that cannot
//     be read, parsed or checked starts the service halted with outputs
//     at failsafe, the file kept aside, and health saying why;
//   - failsafe after the configuration's delay without a broker, counted
//     from start as well as from a lost connection;
//   - one goroutine serving requests by priority (control first, then the
//     device's timers, set and get, then setups, several saved at once);
//     a full queue answers busy;
//   - the retained values of inputs and outputs (Values), republished on
//     get and after every reconnect, cleared when a pin or channel goes;
//   - a description taken from a snapshot, never waiting for hardware;
//   - for inputs read at an interval, a Scan per channel: reads off the
//     runtime's goroutine, read errors counted, reported on the result
//     topic with op "read" (rate-limited) and in the health (ScanHealth),
//     failing channels retried with backoff.
//
// Fakes for tests are in servicestest: a Bus, a Clock and Claims.
package services
