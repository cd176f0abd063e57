package services

import (
	"encoding/json"
	"fmt"
)

// Operations of a request, as they appear in a Result's "op".
const (
	OpSetup   = "setup"
	OpSet     = "set"
	OpControl = "control"
	OpGet     = "get"
	// OpRead is the op of the results a service publishes unasked when
	// reading an input fails (see Scan).
	OpRead = "read"
)

// Error codes of a Result.
const (
	CodeMalformed = "malformed" // the payload is not valid JSON (or YAML) of the right shape
	CodeInvalid   = "invalid"   // a field has a bad value
	CodeTooLarge  = "too_large" // the payload is over the size limit
	CodeNotFound  = "not_found" // no such interface
	CodeConflict  = "conflict"  // a pin or name is held by something else
	CodeHalted    = "halted"    // the service is emergency-stopped
	CodeHardware  = "hardware"  // the driver failed
	CodeStorage   = "storage"   // the state directory could not keep a change
	CodeBusy      = "busy"      // too many requests queued; nothing was done
	CodeInternal  = "internal"  // anything else
)

// MaxPayload is the largest request payload a service reads; larger ones
// get a too_large error and change nothing.
const MaxPayload = 64 << 10

// Error is one problem with a request.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return e.Code + ": " + e.Message
}

// Errors is every problem found with one request.
type Errors []Error

func (es Errors) Error() string {
	switch len(es) {
	case 0:
		return "no error"
	case 1:
		return es[0].Error()
	}
	return fmt.Sprintf("%s (and %d more)", es[0].Error(), len(es)-1)
}

// Result is the answer to a request, published on <host>/<service>/result.
type Result struct {
	// ID echoes the request's id verbatim; absent when the request had none.
	ID     json.RawMessage `json:"id,omitempty"`
	Op     string          `json:"op"`
	Status string          `json:"status"`
	Data   any             `json:"data,omitempty"`
	Error  *Error          `json:"error,omitempty"`
	Errors []Error         `json:"errors,omitempty"`
}

// OK builds a successful result.
func OK(id json.RawMessage, op string, data any) Result {
	return Result{ID: id, Op: op, Status: "ok", Data: data}
}

// Fail builds a failed result from err: an Error, Errors, or any error
// (reported as internal).
func Fail(id json.RawMessage, op string, err error) Result {
	r := Result{ID: id, Op: op, Status: "error"}
	switch e := err.(type) {
	case Error:
		r.Error = &e
	case *Error:
		r.Error = e
	case Errors:
		if len(e) > 0 {
			first := e[0]
			r.Error = &first
		}
		if len(e) > 1 {
			r.Errors = e
		}
	default:
		r.Error = &Error{Code: CodeInternal, Message: err.Error()}
	}
	return r
}

// RequestID extracts the "id" member of a JSON object payload, or nil. It
// never fails: a payload that is not an object has no id.
func RequestID(payload []byte) json.RawMessage {
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(payload, &v) != nil || len(v.ID) == 0 || string(v.ID) == "null" {
		return nil
	}
	return v.ID
}

// Errorf builds an Error.
func Errorf(code, field, format string, a ...any) Error {
	return Error{Code: code, Field: field, Message: fmt.Sprintf(format, a...)}
}

// Prefix returns es with prefix before every field ("gpio" + "output[0].pin"
// gives "gpio.output[0].pin"), for errors found in a block of a larger
// document.
func (es Errors) Prefix(prefix string) Errors {
	out := make(Errors, len(es))
	for i, e := range es {
		e.Field = join(prefix, e.Field)
		out[i] = e
	}
	return out
}
