package ain

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollcall/rollcall/services"
	"github.com/rollcall/rollcall/services/servicestest"
)

// TestServiceSetupAndReadings: a setup of channels alone works under
// --sim, and each reading goes out retained as JSON on input/<name> and
// as a plain number on input/<name>/value.
func TestServiceSetupAndReadings(t *testing.T) {
	h := start(t, Config{}, t.TempDir())
	from := h.Bus.Mark()
	r := h.Request("setup", `{"id":1,"channels":[{"name":"soil","channel":0},
		{"name":"moisture","channel":1,"scale":20,"offset":-3,"unit":"%","interval":"250ms"}]}`)
	if r.Status != "ok" || string(r.ID) != "1" {
		t.Fatalf("setup %+v", r)
	}
	if st := h.state(); len(st.Config.Chips) != 1 || st.Config.Chips[0] != simChip {
		t.Errorf("chips after a setup of channels alone under --sim: %+v", st.Config.Chips)
	}
	h.sim("sim").Pin(0, 1.65) // 2048 of 4096
	h.sim("sim").Pin(1, 1.65)
	h.Advance(0)
	now := h.Clock.Now().UTC().Format(tsLayout)
	h.Bus.Expect(t, from, hostName+"/ain/input/soil/value", "1.65")
	h.Bus.Expect(t, from, hostName+"/ain/input/moisture/value", "30")
	tests := []struct {
		name string
		want reading
	}{
		{"soil", reading{Value: 1.65, Unit: "V", Raw: 2048, Volts: 1.65, TS: now}},
		{"moisture", reading{Value: 30, Unit: "%", Raw: 2048, Volts: 1.65, TS: now}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := h.readings(from, tc.name)
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("readings %+v, want %+v", got, tc.want)
			}
			for _, topic := range []string{hostName + "/ain/input/" + tc.name, hostName + "/ain/input/" + tc.name + "/value"} {
				if _, ok := h.Bus.Retained(topic); !ok {
					t.Errorf("%s not retained", topic)
				}
			}
		})
	}
	d := h.Svc.Describe()
	if len(d.Inputs) != 2 || d.Inputs[1].Value != 30.0 || d.Health != "ok" {
		t.Errorf("description inputs %+v health %s", d.Inputs, d.Health)
	}
}

// TestServiceReadsOnTheClock: a channel is read every interval of the
// service's clock, and every reading is published without a deadband.
func TestServiceReadsOnTheClock(t *testing.T) {
	h := start(t, Config{Channels: []ChannelConfig{{Name: "drift", Channel: 3, Interval: services.Duration(100 * time.Millisecond)}}}, "")
	from := h.Bus.Mark()
	start := h.Clock.Now()
	// The outbox keeps only the latest unsent value of a topic, as a
	// slow session would: flush after each read to see them all.
	h.Advance(0)
	h.Flush()
	for range 5 {
		h.Advance(100 * time.Millisecond)
		h.Flush()
	}
	h.Advance(50 * time.Millisecond) // half an interval: no read
	h.Flush()
	got := h.readings(from, "drift")
	if len(got) != 6 {
		t.Fatalf("%d readings after 0.55 s at 100 ms, want 6: %+v", len(got), got)
	}
	for i, r := range got {
		want := start.Add(time.Duration(i) * 100 * time.Millisecond).UTC().Format(tsLayout)
		if r.TS != want {
			t.Errorf("reading %d at %s, want %s", i, r.TS, want)
		}
		if r.Volts < 0 || r.Volts > 3.3 {
			t.Errorf("reading %d: %v V is outside the sim's 0–3.3 V", i, r.Volts)
		}
	}
	if c := h.channel("drift"); c.Reads != 6 || c.Published != 6 {
		t.Errorf("state reads %d published %d, want 6 and 6", c.Reads, c.Published)
	}
}

// TestServiceDeadband: a reading within the deadband of the last one
// published is read and counted, not published.
func TestServiceDeadband(t *testing.T) {
	h := start(t, Config{Channels: []ChannelConfig{{Name: "tank", Channel: 2, Deadband: 0.1}}}, "")
	from := h.Bus.Mark()
	steps := []struct {
		volts   float64
		publish bool
	}{
		{1.0, true},   // the first is always published
		{1.05, false}, // 0.05 from 1.0
		{1.12, true},  // 0.12 from 1.0
		{1.05, false}, // 0.07 from 1.12
		{0.9, true},
		{0.9, false},
	}
	var want []float64
	for i, s := range steps {
		h.sim("sim").Pin(2, s.volts)
		if i == 0 {
			h.Advance(0)
		} else {
			h.Advance(time.Second)
		}
		h.Flush()
		if s.publish {
			want = append(want, math.Round(s.volts*4096/3.3)*3.3/4096)
		}
	}
	h.Flush()
	var got []float64
	for _, r := range h.readings(from, "tank") {
		got = append(got, r.Volts)
	}
	if len(got) != len(want) {
		t.Fatalf("published %v, want %v", got, want)
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-8 {
			t.Errorf("reading %d: %v, want %v", i, got[i], want[i])
		}
	}
	if c := h.channel("tank"); c.Reads != 6 || c.Published != 3 {
		t.Errorf("reads %d published %d, want 6 and 3", c.Reads, c.Published)
	}
}

// advanceUntil advances the clock by step until f has been called n
// times, and returns how long that took.
func (h *harness) advanceUntil(f *fakeConv, n int, step time.Duration) time.Duration {
	h.T.Helper()
	var took time.Duration
	for f.count() < n {
		if took > 10*time.Minute {
			h.T.Fatalf("%d reads after %v, want %d", f.count(), took, n)
		}
		h.Advance(step)
		took += step
	}
	return took
}

// TestServiceReadErrors: a failing channel counts its errors, reports
// them on the result topic at most once a minute, shows in the
// description's health, retries with a backoff that doubles from its
// interval up to a minute, and reads again once the chip answers; the
// other channels read on.
func TestServiceReadErrors(t *testing.T) {
	convs := map[string]*fakeConv{"adc": {volts: 1}, "other": {volts: 2}}
	cfg := Config{
		Chips: []ChipConfig{{Name: "adc", Chip: ChipMCP3008}, {Name: "other", Chip: ChipMCP3008, CS: 1}},
		Channels: []ChannelConfig{
			{Name: "soil", Chip: "adc", Channel: 0, Interval: services.Duration(100 * time.Millisecond)},
			{Name: "light", Chip: "other", Channel: 0, Interval: services.Duration(100 * time.Millisecond)},
		},
	}
	h := startWith(t, cfg, "", env{open: func(c ChipConfig) (Converter, error) { return convs[c.Name], nil }})
	adc, other := convs["adc"], convs["other"]
	h.Advance(0)
	h.Bus.Expect(t, 0, hostName+"/ain/input/soil/value", "1")

	eio := fmt.Errorf("mcp3008 on SPI0.0: convert input 0: %w", syscall.EIO)
	adc.set(0, eio)
	changed := h.Bus.ChangedCount()
	from := h.Bus.Mark()
	h.Advance(100 * time.Millisecond) // soil fails once
	r := h.Bus.AwaitResult(t, topics, from, services.OpRead)
	if r.Status != "error" || r.Error == nil || r.Error.Code != services.CodeHardware || r.Error.Field != "channels[0]" ||
		!strings.Contains(r.Error.Message, "soil") || !strings.Contains(r.Error.Message, "input/output error") {
		t.Fatalf("read error result %+v", r.Error)
	}
	h.Bus.WaitFor(t, "the description republished", func(_ []servicestest.Message, n, _ int) bool { return n > changed })
	d := h.Svc.Describe()
	if d.Health != "error" || !strings.Contains(d.Error, "1 of 2 channels failing; soil: 1 read errors") {
		t.Errorf("health %s %q", d.Health, d.Error)
	}

	// Backoff: the next tries come 100, 200, 400, 800 ms after each
	// failure, while light is read every 100 ms throughout.
	lightBefore := other.count()
	for i, want := range []time.Duration{100, 200, 400, 800} {
		if took := h.advanceUntil(adc, 2+i+1, 100*time.Millisecond); took != want*time.Millisecond {
			t.Errorf("retry %d came after %v, want %v", i+1, took, want*time.Millisecond)
		}
	}
	if n := other.count() - lightBefore; n != 15 {
		t.Errorf("light read %d times in 1.5 s beside a failing channel, want 15", n)
	}
	// The waits double up to a minute: the 11th failure comes 102.3 s
	// after the first, and is the first reported since.
	h.advanceUntil(adc, 11, time.Second)
	h.Flush()
	if n := len(resultsOf(h.Bus.Since(from), services.OpRead)); n != 1 {
		t.Errorf("%d read errors reported before a minute had passed, want 1", n)
	}
	h.advanceUntil(adc, 12, time.Second)
	h.Flush()
	results := resultsOf(h.Bus.Since(from), services.OpRead)
	if len(results) != 2 {
		t.Fatalf("read error results after 102 s: %+v", results)
	}
	if c := h.channel("soil"); c.Errors != 11 || c.Consecutive != 11 || !c.Failing || !strings.Contains(c.LastError, "input/output error") {
		t.Errorf("soil state %+v", c)
	}

	// The chip answers again: the next try reads, health clears, and the
	// channel is back to its interval.
	adc.set(1.5, nil)
	from = h.Bus.Mark()
	h.advanceUntil(adc, 13, time.Second)
	h.Bus.Expect(t, from, hostName+"/ain/input/soil/value", "1.5")
	if d := h.Svc.Describe(); d.Health != "ok" {
		t.Errorf("health after recovery: %s %q", d.Health, d.Error)
	}
	if took := h.advanceUntil(adc, 14, 10*time.Millisecond); took != 100*time.Millisecond {
		t.Errorf("after recovery the next read came after %v, want the interval", took)
	}
}

func resultsOf(msgs []servicestest.Message, op string) []services.Result {
	var out []services.Result
	for _, m := range msgs {
		var r services.Result
		if m.Topic == topics.Result() && json.Unmarshal([]byte(m.Payload), &r) == nil && r.Op == op {
			out = append(out, r)
		}
	}
	return out
}

// TestServiceChipMissingAtBoot: a chip that cannot be opened at start
// does not keep the service from starting; its channel reports read
// errors and reads once the chip can be opened. A setup naming a chip
// that cannot be opened is refused and changes nothing.
func TestServiceChipMissingAtBoot(t *testing.T) {
	conv := &fakeConv{volts: 0.5}
	var plugged bool
	open := func(c ChipConfig) (Converter, error) {
		if c.Name == "adc" && plugged {
			return conv, nil
		}
		return nil, errors.New("mcp3008: open SPI port SPI0.0: no such file (no /dev/spidev0.0: enable SPI with dtparam=spi=on)")
	}
	cfg := Config{Chips: []ChipConfig{{Name: "adc", Chip: ChipMCP3008}},
		Channels: []ChannelConfig{{Name: "soil", Channel: 0, Interval: services.Duration(time.Second)}}}
	h := startWith(t, cfg, t.TempDir(), env{open: open})
	h.Advance(0)
	r := h.Bus.AwaitResult(t, topics, 0, services.OpRead)
	if r.Error == nil || !strings.Contains(r.Error.Message, "dtparam=spi=on") {
		t.Fatalf("read error %+v", r.Error)
	}
	if st := h.state(); st.Chips[0].Open || !strings.Contains(st.Chips[0].Error, "spidev0.0") {
		t.Errorf("chip state %+v", st.Chips[0])
	}
	plugged = true
	h.Advance(2 * time.Second)
	h.Bus.Expect(t, 0, hostName+"/ain/input/soil/value", "0.5")
	if st := h.state(); !st.Chips[0].Open || st.Chips[0].Error != "" {
		t.Errorf("chip state once plugged %+v", st.Chips[0])
	}

	saved := h.Saved()
	plugged = false
	r = h.Request("setup", `{"chips":[{"name":"adc","chip":"mcp3008"},{"name":"b","chip":"mcp3008","cs":1}],"channels":[{"name":"soil","channel":0},{"name":"x","chip":"b","channel":0}]}`)
	if r.Error == nil || r.Error.Code != services.CodeHardware || r.Error.Field != "chips[1]" {
		t.Fatalf("setup with an unplugged chip: %+v", r)
	}
	if h.Saved() != saved || len(h.state().Config.Chips) != 1 {
		t.Error("a refused setup changed the configuration")
	}
	if held := h.Claims.Held(Name); len(held) != 1 {
		t.Errorf("claims after a refused setup: %v", held)
	}
}

// TestServiceIIO reads an mcp3008 through the kernel's files, and refuses
// a channel the device does not have when the setup is applied.
func TestServiceIIO(t *testing.T) {
	cfg := Config{Chips: []ChipConfig{{Name: "adc", Chip: ChipIIO, Device: "mcp3008"}},
		Channels: []ChannelConfig{{Name: "soil", Channel: 1}, {Name: "pair", Channel: 0, Neg: ptr(1)}}}
	h := startWith(t, cfg, "", env{sysfs: "testdata/sys"})
	h.Advance(0)
	h.Bus.Expect(t, 0, hostName+"/ain/input/soil/value", "1.65") // 512 × 3.22265625 mV
	r := h.Request("setup", `{"channels":[{"name":"soil","channel":9}]}`)
	if r.Error == nil || r.Error.Field != "channels[0].channel" || !strings.Contains(r.Error.Message, "iio:device0 (mcp3008): input 9 out of range") {
		t.Errorf("a channel the device lacks: %+v", r)
	}
	if r := h.Request("setup", `{"channels":[{"name":"soil","channel":7}]}`); r.Status != "ok" {
		t.Errorf("a channel the device has: %+v", r.Problems())
	}
}

func ptr[T any](v T) *T { return &v }

// TestServiceClaims: an address or chip select someone else holds is
// refused, naming both holders; the two halves of a PCF8591 are shared
// with the dac service when the chip says so.
func TestServiceClaims(t *testing.T) {
	tests := []struct {
		name    string
		holds   map[string][]services.Claim
		setup   string
		field   string
		mention []string
	}{
		{name: "I2C address held by dac",
			holds:   map[string][]services.Claim{"dac": {services.I2CClaim("chips[0].addr", "i2c1", 0x48)}},
			setup:   `{"chips":[{"name":"adc","chip":"ads1115","addr":72}],"channels":[{"name":"soil","channel":0}]}`,
			field:   "chips[0].addr",
			mention: []string{"ain cannot take i2c1 address 0x48", "dac (chips[0].addr)"}},
		{name: "SPI pin held by gpio",
			holds:   map[string][]services.Claim{"gpio": {services.PinClaim("output[0].pin", 8)}},
			setup:   `{"chips":[{"name":"adc","chip":"mcp3008"}],"channels":[{"name":"soil","channel":0}]}`,
			field:   "chips[0].cs",
			mention: []string{"ain cannot take spi0", "GPIO 8", "gpio (output[0].pin)"}},
		{name: "iio device held by dht22",
			holds:   map[string][]services.Claim{"dht22": {services.ResourceClaim("device", "iio:device0")}},
			setup:   `{"chips":[{"name":"adc","chip":"iio","device":"iio:device0"}],"channels":[{"name":"soil","channel":0}]}`,
			field:   "chips[0].device",
			mention: []string{"dht22 (device)", "iio:device0"}},
		{name: "PCF8591 shared with dac",
			holds: map[string][]services.Claim{"dac": {services.SharedI2CClaim("chips[0].addr", "i2c1", 0x48, "pcf8591")}},
			setup: `{"chips":[{"name":"yl40","chip":"pcf8591","dac":true}],"channels":[{"name":"soil","channel":0}]}`},
		{name: "PCF8591 the dac drives, not said shared",
			holds:   map[string][]services.Claim{"dac": {services.SharedI2CClaim("chips[0].addr", "i2c1", 0x48, "pcf8591")}},
			setup:   `{"chips":[{"name":"yl40","chip":"pcf8591"}],"channels":[{"name":"soil","channel":0}]}`,
			field:   "chips[0].addr",
			mention: []string{"dac (chips[0].addr, shared only as pcf8591)"}},
		{name: "two chips at one address",
			setup:   `{"chips":[{"name":"a","chip":"ads1115"},{"name":"b","chip":"pcf8591"}],"channels":[{"name":"soil","channel":0}]}`,
			field:   "chips[1].addr",
			mention: []string{"i2c1 address 0x48 is already used by chips[0].addr"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := startWith(t, Config{}, "", env{sim: true, holds: tc.holds})
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
			if held := h.Claims.Held(Name); len(held) != 0 {
				t.Errorf("a refused setup holds %v", held)
			}
		})
	}
}

// TestServiceDescription: every channel is an input with its topic,
// unit, range and interval; the state lists chips and channels and the
// schemas.
func TestServiceDescription(t *testing.T) {
	cfg := Config{
		Chips: []ChipConfig{{Name: "ads", Chip: ChipADS1115, Addr: 0x49}, {Name: "mcp", Chip: ChipMCP3008, VRef: 5}},
		Channels: []ChannelConfig{
			{Name: "bridge", Chip: "ads", Channel: 0, Neg: ptr(1), Range: 0.256, Rate: 860, Interval: services.Duration(20 * time.Millisecond)},
			{Name: "level", Chip: "mcp", Channel: 7, Scale: 20, Offset: -10, Unit: "cm", Deadband: 0.5},
		},
	}
	h := start(t, cfg, "")
	h.Advance(0)
	h.Bus.Next(t, 0, hostName+"/ain/input/level/value")
	d := h.Svc.Describe()
	want := []services.Interface{
		{Name: "bridge", Topic: hostName + "/ain/input/bridge", Type: "number", Unit: "V", Mode: "channel",
			Min: ptr(-0.256), Max: ptr(0.256), Interval: services.Duration(20 * time.Millisecond)},
		{Name: "level", Topic: hostName + "/ain/input/level", Type: "number", Unit: "cm", Mode: "channel",
			Min: ptr(-10.0), Max: ptr(round(5*1023.0/1024*20 - 10)), Interval: services.Duration(time.Second)},
	}
	if len(d.Inputs) != 2 {
		t.Fatalf("inputs %+v", d.Inputs)
	}
	for i, w := range want {
		got := d.Inputs[i]
		got.Value = nil
		if !reflect.DeepEqual(got, w) {
			t.Errorf("input %d:\n got %+v min %v max %v\nwant %+v min %v max %v", i, got, *got.Min, *got.Max, w, *w.Min, *w.Max)
		}
	}
	if d.Inputs[1].Value == nil || len(d.Outputs) != 0 || d.Setup != hostName+"/ain/setup" {
		t.Errorf("description %+v", d)
	}
	st := servicestest.DecodeState[testState](t, d)
	if len(st.Chips) != 2 || st.Chips[0].Driver != "sim" || !st.Chips[0].Open || st.Chips[1].Chip != ChipMCP3008 {
		t.Errorf("chips %+v", st.Chips)
	}
	if c := st.Channels[1]; c.ValueTopic != hostName+"/ain/input/level/value" || c.Deadband != 0.5 || c.Reads != 1 || c.Value == nil {
		t.Errorf("channel state %+v", c)
	}
	var schema map[string]map[string]any
	if err := json.Unmarshal(st.Schema, &schema); err != nil || schema["setup"]["type"] != "object" || schema["reading"] == nil {
		t.Errorf("schema %s: %v", st.Schema, err)
	}
	b, _ := json.Marshal(d)
	for _, s := range []string{`"min":-0.256`, `"interval":"20ms"`, `"unit":"cm"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("description JSON lacks %s: %s", s, b)
		}
	}
}

// TestServiceEstop: estop halts setups; inputs go on being read, since
// reading drives nothing; recover lifts it.
func TestServiceEstop(t *testing.T) {
	h := start(t, Config{Channels: []ChannelConfig{{Name: "soil", Channel: 0}}}, t.TempDir())
	h.Advance(0)
	if r := h.Request("control", "estop"); r.Status != "ok" {
		t.Fatalf("estop %+v", r)
	}
	if r := h.Request("setup", `{"channels":[]}`); r.Error == nil || r.Error.Code != services.CodeHalted {
		t.Errorf("setup while halted: %+v", r)
	}
	from := h.Bus.Mark()
	h.sim("sim").Pin(0, 3)
	h.Advance(time.Second)
	h.Bus.Expect(t, from, hostName+"/ain/input/soil/value", "3.00029297")
	if !h.state().Halted {
		t.Error("not halted")
	}
	if r := h.Request("control", "recover"); r.Status != "ok" {
		t.Fatalf("recover %+v", r)
	}
	h.OK("setup", `{"channels":[]}`)
}

// TestServiceKeepsUnchangedChannels: a merge adds a channel and leaves
// the others reading, counts intact; a channel removed has its retained
// topics cleared.
func TestServiceKeepsUnchangedChannels(t *testing.T) {
	h := start(t, Config{Channels: []ChannelConfig{{Name: "a", Channel: 0}, {Name: "b", Channel: 1}}}, "")
	h.Advance(0)
	h.Advance(time.Second)
	h.OK("setup", `{"merge":true,"channels":[{"name":"c","channel":2}]}`)
	if c := h.channel("a"); c.Reads != 2 {
		t.Errorf("a was restarted by the merge: %+v", c)
	}
	h.OK("setup", `{"channels":[{"name":"a","channel":0},{"name":"c","channel":2}]}`)
	for _, topic := range []string{hostName + "/ain/input/b", hostName + "/ain/input/b/value"} {
		h.Bus.Expect(t, 0, topic, "")
		if p, ok := h.Bus.Retained(topic); ok {
			t.Errorf("%s still retained: %q", topic, p)
		}
	}
	from := h.Bus.Mark()
	h.Advance(time.Second)
	h.Flush()
	if len(h.readings(from, "b")) != 0 || len(h.readings(from, "a")) != 1 || len(h.readings(from, "c")) != 1 {
		t.Errorf("after removing b: %s", servicestest.Dump(h.Bus.Since(from)))
	}
}

// TestServiceRestoresSetup: a setup is kept across a restart.
func TestServiceRestoresSetup(t *testing.T) {
	dir := t.TempDir()
	h := start(t, Config{}, dir)
	h.OK("setup", `{"channels":[{"name":"soil","channel":4,"unit":"V","deadband":0.01}]}`)
	h.Stop()
	h2 := start(t, Config{}, dir)
	h2.Advance(0)
	h2.Bus.Next(t, 0, hostName+"/ain/input/soil/value")
	if c := h2.channel("soil"); c.Channel != 4 || c.Deadband != 0.01 {
		t.Errorf("restored %+v", c)
	}
}

// badRequests loads the ain service's part of the project's corpus of bad
// input, testdata/bad-requests.json, plus a payload too large to keep in
// it.
func badRequests(t *testing.T) []servicestest.BadRequest {
	t.Helper()
	big := `{"channels":[{"name":"x","channel":0}],"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	return servicestest.LoadBadRequests(t, "testdata/bad-requests.json",
		servicestest.BadRequest{Name: "1 MiB", Topic: "setup", Payload: big, Code: services.CodeTooLarge, Says: "over the 65536 byte limit"})
}

// TestServiceBadRequests: every bad request gets an error naming its
// field, and changes nothing: not the state file, not a retained topic.
// The host holds what the corpus expects: dac at i2c1 0x4b.
func TestServiceBadRequests(t *testing.T) {
	dir := t.TempDir()
	holds := map[string][]services.Claim{"dac": {services.I2CClaim("chips[0].addr", "i2c1", 0x4b)}}
	h := startWith(t, Config{}, dir, env{sim: true, holds: holds})
	h.OK("setup", `{"chips":[{"name":"ads","chip":"ads1115"},{"name":"mcp","chip":"mcp3008"}],
		"channels":[{"name":"soil","chip":"ads","channel":0},{"name":"level","chip":"mcp","channel":3,"scale":2,"unit":"V"}]}`)
	h.Advance(0)
	h.Flush()
	before := h.Snapshot()
	cases := badRequests(t)
	if len(cases) < 15 {
		t.Fatalf("%d cases in the corpus, want at least 15", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			h.Refuses(t, tc)
			h.Unchanged(t, before)
		})
	}
	// Every problem is reported, not just the first.
	r := h.Request("setup", `{"chips":[{"name":"ads","chip":"ads1115","addr":80}],"channels":[{"name":"a","channel":9,"deadband":-1},{"name":"a","chip":"nope","channel":0}]}`)
	if len(r.Errors) != 5 {
		t.Errorf("errors %+v, want 5", r.Errors)
	}
}

// TestServiceSimActsAsTheChip: under --sim, a channel reads what the chip
// its setup names would: its resolution, its range, clipped beyond it.
func TestServiceSimActsAsTheChip(t *testing.T) {
	tests := []struct {
		name  string
		chip  ChipConfig
		ch    ChannelConfig
		volts float64 // pinned on the sim's input
		raw   int64
		want  float64
	}{
		{"pcf8591, 8 bits", ChipConfig{Chip: ChipPCF8591}, ChannelConfig{Channel: 1}, 1.65, 128, 1.65},
		{"pcf8591 at 5 V", ChipConfig{Chip: ChipPCF8591, VRef: 5}, ChannelConfig{Channel: 1}, 2.5, 128, 2.5},
		{"mcp3008, 10 bits", ChipConfig{Chip: ChipMCP3008}, ChannelConfig{Channel: 1}, 1.65, 512, 1.65},
		{"ads1115 at 4.096 V", ChipConfig{Chip: ChipADS1115}, ChannelConfig{Channel: 1}, 1.024, 8192, 1.024},
		{"ads1115 clipped at 0.256 V", ChipConfig{Chip: ChipADS1115}, ChannelConfig{Channel: 1, Range: 0.256}, 1, 32767, 0.256 * 32767 / 32768},
		{"ads1015, 12 bits", ChipConfig{Chip: ChipADS1015}, ChannelConfig{Channel: 1, Range: 2.048}, 1.024, 1024, 1.024},
		{"sim, 12 bits", ChipConfig{Chip: ChipSim}, ChannelConfig{Channel: 1}, 1.65, 2048, 1.65},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.chip.Name, tc.ch.Name = "c", "x"
			h := start(t, Config{Chips: []ChipConfig{tc.chip}, Channels: []ChannelConfig{tc.ch}}, "")
			h.sim("c").Pin(1, tc.volts)
			h.Advance(0)
			h.Bus.Next(t, 0, hostName+"/ain/input/x/value")
			got := h.readings(0, "x")
			if len(got) != 1 || got[0].Raw != tc.raw || math.Abs(got[0].Volts-tc.want) > 1e-6 {
				t.Errorf("readings %+v, want raw %d at %v V", got, tc.raw, tc.want)
			}
		})
	}
}

// TestServiceScanGrid: a channel's reads keep to the interval's grid
// (services.ScanOptions.Grid): a scan a little behind catches up read
// after read, one far behind skips the reads it missed.
func TestServiceScanGrid(t *testing.T) {
	h := start(t, Config{Channels: []ChannelConfig{{Name: "x", Channel: 0, Interval: services.Duration(10 * time.Millisecond)}}}, "")
	steps := []struct {
		name    string
		advance time.Duration
		reads   int
	}{
		{"the first read at once", 0, 1},
		{"35 ms later: the 10 ms slot", 35 * time.Millisecond, 2},
		{"catching up the 20 ms slot", 0, 3},
		{"and the 30 ms slot", 0, 4},
		{"the 40 ms slot is not due yet", 0, 4},
		{"40 ms", 5 * time.Millisecond, 5},
		{"200 ms behind: one read", 200 * time.Millisecond, 6},
		{"the missed slots skipped", 0, 6},
		{"back on the grid at 250 ms", 10 * time.Millisecond, 7},
	}
	for _, s := range steps {
		h.Advance(s.advance)
		if got := h.channel("x").Reads; got != s.reads {
			t.Fatalf("%s: %d reads, want %d", s.name, got, s.reads)
		}
	}
	if got := h.channel("x").Missed; got != 19 {
		t.Errorf("missed %d reads, want 19 (60 to 240 ms)", got)
	}
}
