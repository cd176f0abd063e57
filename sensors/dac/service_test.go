package dac

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// TestServiceSetupSet: outputs start at init; a set in volts, in the
// output's unit or as a raw code drives the chip and is published,
// retained, as JSON and as a plain number.
func TestServiceSetupSet(t *testing.T) {
	h := start(t, Config{}, t.TempDir())
	from := h.Bus.Mark()
	r := h.OK("setup", `{"id":"s","chips":[{"name":"sim","chip":"sim"},{"name":"big","chip":"sim","vref":5}],
		"outputs":[{"name":"level","init":1},{"name":"heat","chip":"big","scale":20,"unit":"%","init":10,"failsafe":0}]}`)
	if string(r.ID) != `"s"` {
		t.Errorf("id %s", r.ID)
	}
	h.Bus.Expect(t, from, hostName+"/dac/output/level/value", plain(rawOf(t, 1), 3.3, 1))
	h.Bus.Expect(t, from, hostName+"/dac/output/heat/value", plain(410, 5, 20))
	if got := h.code("level"); got != rawOf(t, 1) {
		t.Errorf("level at init: code %d, want %d", got, rawOf(t, 1))
	}
	if got := h.code("heat"); got != 410 { // 0.5 V of 5 V: 409.6
		t.Errorf("heat at init: code %d, want 410", got)
	}

	tests := []struct {
		name, output, payload string
		raw                   int
		value                 string // the plain value published
	}{
		{"volts, bare", "level", "1.5", 1862, plain(1862, 3.3, 1)},
		{"volts, object", "level", `{"value":2,"id":4}`, 2482, plain(2482, 3.3, 1)},
		{"raw", "level", `{"raw":4095}`, 4095, "3.29919434"},
		{"zero", "level", "0", 0, "0"},
		{"in the output's unit", "heat", "50", 2048, "50"},
		{"raw in the output's unit", "heat", `{"raw":1024}`, 1024, "25"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from := h.Bus.Mark()
			r := h.OK("set/"+tc.output, tc.payload)
			var res SetResult
			if err := json.Unmarshal(r.Data, &res); err != nil || res.Raw != tc.raw || res.Name != tc.output {
				t.Errorf("set result %s (%v)", r.Data, err)
			}
			if got := h.code(tc.output); got != tc.raw {
				t.Errorf("code %d, want %d", got, tc.raw)
			}
			h.Bus.Expect(t, from, hostName+"/dac/output/"+tc.output+"/value", tc.value)
			if v := h.retained(tc.output); v.Raw != tc.raw || v.TS != h.Clock.Now().UTC().Format(tsLayout) {
				t.Errorf("retained %+v", v)
			}
		})
	}
	if v := h.retained("heat"); v.Unit != "%" || v.Value != 25 || v.Volts != 1.25 {
		t.Errorf("heat retained %+v", v)
	}
}

// TestServiceRestoresLastValue: the last value set is kept in its own
// file and comes back after a restart, though shutdown drove the output
// to failsafe; while halted, outputs come back at failsafe.
func TestServiceRestoresLastValue(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Outputs: []OutputConfig{{Name: "level", Init: 0.5, Failsafe: 0.1}, {Name: "bias", Channel: 1, Init: 1}}}
	h := start(t, cfg, dir)
	h.OK("set/level", "2.5")
	if sv := h.savedValues(); sv["level"].Raw != rawOf(t, 2.5) || sv["bias"].Raw != rawOf(t, 1) || sv["level"].Chip != "sim" {
		t.Errorf("%s after a set: %+v", ValuesFile, sv)
	}
	sim, _ := h.Svc.Sim("level")
	h.Stop()
	if sim.Value() != rawOf(t, 0.1) {
		t.Errorf("level after shutdown: code %d, want failsafe %d", sim.Value(), rawOf(t, 0.1))
	}

	h = start(t, cfg, dir)
	if got := h.code("level"); got != rawOf(t, 2.5) {
		t.Errorf("level after restart: code %d, want the last set %d", got, rawOf(t, 2.5))
	}
	h.Bus.Expect(t, 0, hostName+"/dac/output/level/value", plain(rawOf(t, 2.5), 3.3, 1))
	if got := h.code("bias"); got != rawOf(t, 1) {
		t.Errorf("bias after restart: code %d, want %d", got, rawOf(t, 1))
	}

	// Halted: the restart comes back at failsafe, and stays there after
	// recover until a set.
	h.OK("control", "estop")
	h.Stop()
	h = start(t, cfg, dir)
	if !h.state().Halted || h.code("level") != rawOf(t, 0.1) || h.code("bias") != 0 {
		t.Errorf("halted restart: halted %v level %d bias %d", h.state().Halted, h.code("level"), h.code("bias"))
	}
	h.OK("control", "recover")
	h.Stop()
	h = start(t, cfg, dir)
	if h.code("level") != rawOf(t, 0.1) {
		t.Errorf("after estop, recover and restart: level %d, want failsafe", h.code("level"))
	}

	// A value the output can no longer take (another chip) is not
	// restored: init is.
	h.Stop()
	other := Config{Chips: []ChipConfig{{Name: "p", Chip: "pcf8591"}}, Outputs: []OutputConfig{{Name: "level", Init: 1}}}
	os.Remove(filepath.Join(dir, Name+".json"))
	h = start(t, other, dir)
	if got := h.code("level"); got != 78 { // 1 V of 3.3 V in 8 bits: 77.6
		t.Errorf("level on a pcf8591 after a restart: %d, want its init 78", got)
	}
}

// TestServiceValuesFileUnreadable: a damaged values file is set aside
// and the outputs start at init.
func TestServiceValuesFileUnreadable(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ValuesFile), []byte(`{"outputs":`), 0o600)
	h := start(t, Config{Outputs: []OutputConfig{{Name: "level", Init: 1}}}, dir)
	if got := h.code("level"); got != rawOf(t, 1) {
		t.Errorf("level %d, want init", got)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, ValuesFile+".bad-*"))
	if len(aside) != 1 {
		t.Errorf("damaged file not kept aside: %v", aside)
	}
	if sv := h.savedValues(); sv["level"].Raw != rawOf(t, 1) {
		t.Errorf("values file not rewritten: %+v", sv)
	}
}

// TestServiceEstopFailsafeAfter: estop and a lost broker drive outputs
// to failsafe; sets are refused while halted.
func TestServiceEstopFailsafeAfter(t *testing.T) {
	cfg := Config{FailsafeAfter: services.Duration(30 * time.Second), Outputs: []OutputConfig{{Name: "level", Init: 1, Failsafe: 0.2}}}
	h := start(t, cfg, t.TempDir())
	h.Connected(true)
	h.OK("set/level", "3")
	from := h.Bus.Mark()
	h.OK("control", `{"cmd":"estop"}`)
	h.Bus.Expect(t, from, hostName+"/dac/output/level/value", plain(rawOf(t, 0.2), 3.3, 1))
	if r := h.Request("set/level", "1"); r.Error == nil || r.Error.Code != services.CodeHalted {
		t.Errorf("set while halted: %+v", r)
	}
	if h.code("level") != rawOf(t, 0.2) {
		t.Error("driven while halted")
	}
	h.OK("control", "recover")
	h.OK("set/level", "3")
	h.Connected(false)
	h.Advance(29 * time.Second)
	if h.code("level") != rawOf(t, 3) {
		t.Fatal("failsafe before failsafe_after")
	}
	h.Advance(time.Second)
	if h.code("level") != rawOf(t, 0.2) || !h.state().Failsafe {
		t.Errorf("after 30 s without a broker: code %d failsafe %v", h.code("level"), h.state().Failsafe)
	}
}

// TestServiceFollow: an output follows an ain reading, the retained one
// first, through its scale, clamped to its range; what it takes is
// published and kept, the file written at most once a second.
func TestServiceFollow(t *testing.T) {
	dir := t.TempDir()
	bus := servicestest.NewBus()
	bus.Retain("pi1/ain/input/soil", `{"value":1.2,"unit":"V","raw":1489,"volts":1.2,"ts":"2025-01-01T00:00:00.000Z"}`)
	cfg := Config{Outputs: []OutputConfig{
		{Name: "mirror", Follow: "pi1/ain/input/soil"},
		{Name: "duty", Channel: 1, Follow: "pi1/gpio/output/fan", Scale: 100 / 3.3, Unit: "%"},
	}}
	h := startWith(t, cfg, dir, env{bus: bus})
	servicestest.WaitUntil(t, "mirror to take the retained reading", func() bool { return h.code("mirror") == rawOf(t, 1.2) })
	tests := []struct {
		name, topic, payload string
		output               string
		raw                  int
	}{
		{"plain number", "pi1/ain/input/soil", "2.0", "mirror", rawOf(t, 2)},
		{"reading", "pi1/ain/input/soil", `{"value":0.5,"unit":"V"}`, "mirror", rawOf(t, 0.5)},
		{"clamped high", "pi1/ain/input/soil", "9", "mirror", 4095},
		{"clamped low", "pi1/ain/input/soil", "-1", "mirror", 0},
		{"a PWM duty through scale", "pi1/gpio/output/fan", "50", "duty", 2048},
		{"not a number changes nothing", "pi1/gpio/output/fan", "fast", "duty", 2048},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bus.Send(tc.topic, tc.payload)
			h.Do(func() {})
			if got := h.code(tc.output); got != tc.raw {
				t.Errorf("code %d, want %d", got, tc.raw)
			}
			// Published through the outbox, after the chip took it.
			servicestest.WaitUntil(t, "the code published", func() bool {
				_, ok := h.Bus.Retained(hostName + "/dac/output/" + tc.output)
				return ok && h.retained(tc.output).Raw == tc.raw
			})
		})
	}
	if sv := h.savedValues(); sv["duty"].Raw == 2048 {
		t.Error("a followed value was written at once, not within a second")
	}
	h.Advance(time.Second)
	if sv := h.savedValues(); sv["duty"].Raw != 2048 || sv["mirror"].Raw != 0 {
		t.Errorf("values file a second later: %+v", sv)
	}
	h.OK("control", "estop")
	bus.Send("pi1/ain/input/soil", "3")
	h.Do(func() {})
	if h.code("mirror") != 0 {
		t.Error("a followed value drove the output while halted")
	}
}

// TestServiceSetupRollback: a setup whose output cannot be opened is
// refused and changes nothing: outputs, values, claims.
func TestServiceSetupRollback(t *testing.T) {
	dir := t.TempDir()
	opened := map[string]*Sim{}
	open := func(c ChipConfig, ch int) (Output, error) {
		if c.Name == "broken" {
			return nil, errors.New("mcp4725 on I2C1 at 0x61: read: sysfs-i2c: remote I/O error")
		}
		s := NewSim(12)
		opened[c.Name] = s
		return s, nil
	}
	cfg := Config{Chips: []ChipConfig{{Name: "a", Chip: "mcp4725"}}, Outputs: []OutputConfig{{Name: "level", Init: 1}}}
	h := startWith(t, cfg, dir, env{open: open, real: true})
	h.OK("set/level", "2")
	saved, values := h.File(Name+".json"), h.File(ValuesFile)
	r := h.Request("setup", `{"chips":[{"name":"a","chip":"mcp4725"},{"name":"broken","chip":"mcp4725","addr":97}],
		"outputs":[{"name":"level","init":1},{"name":"more","chip":"broken"}]}`)
	if r.Error == nil || r.Error.Code != services.CodeHardware || r.Error.Field != "outputs[1]" || !strings.Contains(r.Error.Message, "remote I/O error") {
		t.Fatalf("result %+v", r)
	}
	if h.File(Name+".json") != saved || h.File(ValuesFile) != values {
		t.Error("a refused setup changed a state file")
	}
	if opened["a"].Value() != rawOf(t, 2) {
		t.Errorf("level moved to %d by a refused setup", opened["a"].Value())
	}
	if held := h.Claims.Held(Name); len(held) != 1 {
		t.Errorf("claims %v", held)
	}
	// A kept output keeps its value through a setup that changes its
	// failsafe; one moved to another chip starts at init.
	h.OK("setup", `{"outputs":[{"name":"level","init":1,"failsafe":0.5}]}`)
	if opened["a"].Value() != rawOf(t, 2) {
		t.Errorf("a kept output was reset to %d", opened["a"].Value())
	}
}

// TestServiceClaims: an address someone else holds is refused, naming
// both holders; a pcf8591 is shared with an ain that says so.
func TestServiceClaims(t *testing.T) {
	tests := []struct {
		name    string
		holds   map[string][]services.Claim
		setup   string
		field   string
		mention []string
	}{
		{name: "mcp4725 address held",
			holds:   map[string][]services.Claim{"sensors": {services.I2CClaim("chips[0].addr", "i2c1", 0x60)}},
			setup:   `{"chips":[{"name":"m","chip":"mcp4725"}],"outputs":[{"name":"level"}]}`,
			field:   "chips[0].addr",
			mention: []string{"dac cannot take i2c1 address 0x60", "sensors (chips[0].addr)"}},
		{name: "pcf8591 shared with ain",
			holds: map[string][]services.Claim{"ain": {services.SharedI2CClaim("chips[0].addr", "i2c1", 0x48, "pcf8591")}},
			setup: `{"chips":[{"name":"p","chip":"pcf8591"}],"outputs":[{"name":"level"}]}`},
		{name: "pcf8591 ain holds alone",
			holds:   map[string][]services.Claim{"ain": {services.I2CClaim("chips[0].addr", "i2c1", 0x48)}},
			setup:   `{"chips":[{"name":"p","chip":"pcf8591"}],"outputs":[{"name":"level"}]}`,
			field:   "chips[0].addr",
			mention: []string{"dac cannot take i2c1 address 0x48", "ain (chips[0].addr, unshared)"}},
		{name: "iio device held",
			holds:   map[string][]services.Claim{"ain": {services.ResourceClaim("chips[0].device", "iio:mcp4725")}},
			setup:   `{"chips":[{"name":"k","chip":"iio"}],"outputs":[{"name":"level"}]}`,
			field:   "chips[0].device",
			mention: []string{"ain (chips[0].device)", "iio:mcp4725"}},
		{name: "I2C pin held by gpio",
			holds:   map[string][]services.Claim{"gpio": {services.PinClaim("output[0].pin", 0)}},
			setup:   `{"chips":[{"name":"m","chip":"mcp4725","bus":"i2c0"}],"outputs":[{"name":"level"}]}`,
			field:   "chips[0].addr",
			mention: []string{"dac cannot take i2c0 (its pins include GPIO 0)", "gpio (output[0].pin)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			holds := tc.holds
			h := startWith(t, Config{}, "", env{holds: holds})
			r := h.Request("setup", tc.setup)
			if tc.field == "" {
				if r.Status != "ok" {
					t.Fatalf("refused: %+v", r.Problems())
				}
				return
			}
			if !r.HasError(services.CodeConflict, tc.field) {
				t.Fatalf("problems %+v, want a conflict at %s", r.Problems(), tc.field)
			}
			for _, m := range tc.mention {
				if !strings.Contains(r.Error.Message, m) {
					t.Errorf("%q does not say %q", r.Error.Message, m)
				}
			}
		})
	}
}

// TestServiceDescription: every output with its topics, unit and range;
// the state lists chips and outputs with what they are driven to.
func TestServiceDescription(t *testing.T) {
	cfg := Config{
		Chips:   []ChipConfig{{Name: "m", Chip: "mcp4725", Addr: 0x61, VRef: 5}, {Name: "p", Chip: "pcf8591"}},
		Outputs: []OutputConfig{{Name: "heat", Scale: 20, Unit: "%", Init: 10, Follow: "pi1/ain/input/t"}, {Name: "led", Chip: "p", Init: 3}},
	}
	h := start(t, cfg, "")
	d := h.Svc.Describe()
	if len(d.Outputs) != 2 || len(d.Inputs) != 0 {
		t.Fatalf("interfaces %+v %+v", d.Inputs, d.Outputs)
	}
	heat := d.Outputs[0]
	if heat.Set != hostName+"/dac/set/heat" || heat.Unit != "%" || *heat.Min != 0 || *heat.Max != 99.9755859 || heat.Value != 10.0097656 || heat.Type != "number" {
		t.Errorf("heat %+v min %v max %v", heat, *heat.Min, *heat.Max)
	}
	if led := d.Outputs[1]; *led.Max != 3.28710938 {
		t.Errorf("led max %v, want 255/256 of 3.3", *led.Max)
	}
	st := servicestest.DecodeState[testState](t, d)
	if len(st.Chips) != 2 || st.Chips[0].VRef != 5 || st.Chips[1].Bits != 8 || st.Chips[0].Driver != "sim" {
		t.Errorf("chips %+v", st.Chips)
	}
	if o := st.Outputs[0]; o.Raw == nil || *o.Raw != 410 || o.Follow != "pi1/ain/input/t" || o.ValueTopic != hostName+"/dac/output/heat/value" {
		t.Errorf("heat state %+v", o)
	}
	var schema map[string]map[string]any
	if err := json.Unmarshal(st.Schema, &schema); err != nil || schema["setup"]["type"] != "object" || schema["set"]["oneOf"] == nil {
		t.Errorf("schema %s: %v", st.Schema, err)
	}
}

// plain is the plain value published for code raw of a 12-bit chip
// with reference vref, through scale.
func plain(raw int, vref, scale float64) string {
	return strconv.FormatFloat(round(Volts(raw, 12, vref)*scale), 'g', 9, 64)
}

// badRequests loads the dac service's part of the project's corpus of bad
// input, testdata/bad-requests.json, plus payloads too large to keep in
// it.
func badRequests(t *testing.T) []servicestest.BadRequest {
	t.Helper()
	big := `{"outputs":[{"name":"x"}],"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	return servicestest.LoadBadRequests(t, "testdata/bad-requests.json",
		servicestest.BadRequest{Name: "1 MiB setup", Topic: "setup", Payload: big, Code: services.CodeTooLarge, Says: "over the 65536 byte limit"},
		servicestest.BadRequest{Name: "1 MiB set", Topic: "set/level", Payload: big, Code: services.CodeTooLarge, Says: "over the 65536 byte limit"})
}

// TestServiceBadRequests: every bad setup and set gets an error naming
// its field and changes nothing: not the state files, not a retained
// topic, not an output. The host holds what the corpus expects: another
// service at i2c1 0x61.
func TestServiceBadRequests(t *testing.T) {
	dir := t.TempDir()
	holds := map[string][]services.Claim{"other": {services.I2CClaim("chips[0].addr", "i2c1", 0x61)}}
	h := startWith(t, Config{}, dir, env{holds: holds})
	h.OK("setup", `{"chips":[{"name":"m","chip":"mcp4725"},{"name":"p","chip":"pcf8591","addr":79}],
		"outputs":[{"name":"level","init":1},{"name":"heat","chip":"p","scale":20,"unit":"%","init":10}]}`)
	h.OK("set/level", "2")
	before := h.Snapshot()
	codes := map[string]int{"level": h.code("level"), "heat": h.code("heat")}
	cases := badRequests(t)
	var sets int
	for _, c := range cases {
		if strings.HasPrefix(c.Topic, "set/") {
			sets++
		}
	}
	if len(cases)-sets < 15 || sets < 15 {
		t.Fatalf("%d setups and %d sets in the corpus, want at least 15 of each", len(cases)-sets, sets)
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			h.Refuses(t, tc)
			h.Unchanged(t, before)
			for name, code := range codes {
				if got := h.code(name); got != code {
					t.Errorf("%s driven to %d", name, got)
				}
			}
		})
	}
}
