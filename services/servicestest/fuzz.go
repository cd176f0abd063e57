package servicestest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
)

// FuzzSetup is the body of a service's FuzzSetup: it feeds the setup
// decoder arbitrary payloads, starting from seeds, and checks them as the
// runtime does, for the service whose topics are topics, on a host
// holding what Claims gives every test and holds. Payloads must not
// panic, every error must carry a code and a message, and a setup that
// passes must survive a marshal and a parse unchanged, as the state file
// makes it do (an empty list and none being alike).
func FuzzSetup[C services.Setup](f *testing.F, topics services.Topics, holds map[string][]services.Claim, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	claims := Claims(f, holds)
	f.Fuzz(func(t *testing.T, payload []byte) {
		// A payload that never finishes would hang a service's goroutine
		// for good; the fuzzer only sees its workers go quiet. This makes
		// it a crash, which the fuzzer saves with its input.
		hang := time.AfterFunc(fuzzHang, func() { panic(fmt.Sprintf("setup still not decoded and checked after %v: %q", fuzzHang, payload)) })
		defer hang.Stop()
		var cfg C
		errs := services.Decode(payload, services.MaxPayload, &cfg)
		if errs == nil {
			errs = append(cfg.Check(services.Checker{Topics: topics}), claims.Check(topics.Service, cfg.Claims())...)
		}
		for _, e := range errs {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("error without code or message: %+v", e)
			}
		}
		if errs != nil {
			return
		}
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var again C
		if errs := services.Decode(b, 0, &again); errs != nil {
			t.Fatalf("re-parse of %s: %v", b, errs)
		}
		if !reflect.DeepEqual(emptyListsNil(again), emptyListsNil(cfg)) {
			t.Fatalf("round trip:\n%+v\n%+v", cfg, again)
		}
	})
}

// fuzzHang is how long one payload may take: a few hundred microseconds
// is usual, so this is a hang on any machine.
const fuzzHang = 5 * time.Second

// emptyListsNil returns c with its empty lists nil: a setup's "[]" and
// a list left out read back alike.
func emptyListsNil[C any](c C) C {
	v := reflect.ValueOf(&c).Elem()
	if v.Kind() != reflect.Struct {
		return c
	}
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice && f.Len() == 0 && f.CanSet() {
			f.SetZero()
		}
	}
	return c
}
