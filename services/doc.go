// Package services defines what a rollcall service is and how it talks.
//
// A service is one capability of a host (gpio, ain, dac, dht22, sonar). The
// agent runs every service with a Bus, its view of the host's MQTT session,
// and asks it for a Description whenever the host's description is
// published or a sweep asks who is there.
//
// # Topics
//
// Every topic of a service hangs under <host>/<service>:
//
//	<host>/<service>/setup         replace (or merge) the service's configuration
//	<host>/<service>/set/<name>    drive one output
//	<host>/<service>/control       service-wide commands (estop, recover, ...)
//	<host>/<service>/get[/...]     fetcher: republish description and values
//	<host>/<service>/result        results of every request above
//	<host>/<service>/input/<name>  input values (retained)
//	<host>/<service>/output/<name> output values (retained)
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
package services
