package servicestest

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// A BadRequest is one case of a service's part of the project's corpus of
// bad input (testdata/bad-requests.json): a request, and the error it
// must get.
type BadRequest struct {
	Name string `json:"name"`
	// Topic is under <host>/<service>/; "" is "setup".
	Topic   string `json:"topic"`
	Payload string `json:"payload"`
	Code    string `json:"code"`
	Field   string `json:"field"`
	// Says is part of the error's message.
	Says string `json:"says"`
}

// LoadBadRequests reads a corpus of BadRequests from a JSON file, plus
// extra cases too large to keep in it.
func LoadBadRequests(t testing.TB, file string, extra ...BadRequest) []BadRequest {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cases []BadRequest
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return append(cases, extra...)
}

// Refuses sends the request of tc and fails t unless it gets an error
// with a problem of tc's code at tc's field, whose message says tc.Says.
// It returns the result, for a test to look further.
func (h *Harness[S]) Refuses(t testing.TB, tc BadRequest) Result {
	t.Helper()
	topic := tc.Topic
	if topic == "" {
		topic = "setup"
	}
	r := h.request(t, topic, tc.Payload)
	if r.Status != "error" || r.Error == nil {
		t.Fatalf("result %+v, want an error", r)
	}
	for _, e := range r.Problems() {
		if e.Code == tc.Code && e.Field == tc.Field {
			if !strings.Contains(e.Message, tc.Says) {
				t.Errorf("%q does not say %q", e.Message, tc.Says)
			}
			return r
		}
	}
	t.Fatalf("problems %+v, want %s at %q", r.Problems(), tc.Code, tc.Field)
	return r
}
