package ain

import (
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

// The transactions below follow the ADS1115 datasheet (SBAS444) and the
// ADS1015 one (SBAS473), which share the register map:
//   - a write is the pointer byte (Address Pointer Register table: 0x01
//     config, 0x00 conversion) then the 16-bit value MSB first ("Timing
//     Diagram for Writing");
//   - a read is a pointer write then, after a repeated start, two bytes
//     MSB first ("Timing Diagram for Reading");
//   - config values are built from the Config Register field table:
//     OS(15)=1 start, MUX(14:12), PGA(11:9), MODE(8)=1 single-shot,
//     DR(7:5), COMP_QUE(1:0)=11 comparator off. Read back, OS=1 means idle
//     and OS=0 converting.
func TestADS1x15(t *testing.T) {
	const a = 0x48
	start := func(cfg ...byte) i2ctest.IO { return i2ctest.IO{Addr: a, W: append([]byte{0x01}, cfg...)} }
	status := func(r ...byte) i2ctest.IO { return i2ctest.IO{Addr: a, W: []byte{0x01}, R: r} }
	result := func(r ...byte) i2ctest.IO { return i2ctest.IO{Addr: a, W: []byte{0x00}, R: r} }

	tests := []struct {
		name   string
		chip   string
		addr   uint16
		ch     Channel
		ops    []i2ctest.IO
		failAt int // transaction that fails with errNACK; -1 none
		left   int
		raw    int64
		volts  float64
		sleeps []time.Duration
		err    string
		field  string
	}{
		{
			name: "ads1115 AIN0 at the defaults, 4.096 V and 128 SPS",
			chip: "ads1115", ch: Channel{Input: 0},
			// MUX=100 (AIN0-GND), PGA=001, DR=100: 1100 0011 1000 0011.
			ops:    []i2ctest.IO{start(0xC3, 0x83), status(0xC3, 0x83), result(0x40, 0x00)},
			failAt: -1,
			raw:    16384, volts: 2.048,
			// One period (7.8125 ms) plus 10% plus 50 µs.
			sleeps: []time.Duration{8643750 * time.Nanosecond},
		},
		{
			name: "ads1115 AIN3 at 6.144 V, 8 SPS, positive full scale",
			chip: "ads1115", ch: Channel{Input: 3, Range: 6.144, Rate: 8},
			// MUX=111, PGA=000, DR=000: 1111 0001 0000 0011.
			ops:    []i2ctest.IO{start(0xF1, 0x03), status(0xF1, 0x03), result(0x7F, 0xFF)},
			failAt: -1,
			raw:    32767, volts: 32767 * 6.144 / 32768,
			sleeps: []time.Duration{137550 * time.Microsecond},
		},
		{
			name: "ads1115 pair 2-3 at 0.256 V, 860 SPS, negative full scale",
			chip: "ads1115", ch: Channel{Input: 2, Diff: true, Neg: 3, Range: 0.256, Rate: 860},
			// MUX=011, PGA=101, DR=111: 1011 1011 1110 0011.
			ops:    []i2ctest.IO{start(0xBB, 0xE3), status(0xBB, 0xE3), result(0x80, 0x00)},
			failAt: -1,
			raw:    -32768, volts: -0.256,
		},
		{
			name: "ads1115 at 0x4b, still converting at the first poll",
			chip: "ads1115", addr: 0x4B, ch: Channel{Input: 0, Diff: true, Neg: 1},
			// MUX=000, PGA=001, DR=100: 1000 0011 1000 0011; OS reads 0, then 1.
			ops: []i2ctest.IO{
				{Addr: 0x4B, W: []byte{0x01, 0x83, 0x83}},
				{Addr: 0x4B, W: []byte{0x01}, R: []byte{0x03, 0x83}},
				{Addr: 0x4B, W: []byte{0x01}, R: []byte{0x83, 0x83}},
				{Addr: 0x4B, W: []byte{0x00}, R: []byte{0xFF, 0xFE}},
			},
			failAt: -1,
			raw:    -2, volts: -2 * 4.096 / 32768,
			// The expected time, then a tenth of a period plus 20 µs.
			sleeps: []time.Duration{8643750 * time.Nanosecond, 801250 * time.Nanosecond},
		},
		{
			name: "ads1015 AIN1 at its defaults, 12-bit code left-justified",
			chip: "ads1015", ch: Channel{Input: 1},
			// MUX=101, PGA=001, DR=100 (1600 SPS): 1101 0011 1000 0011.
			// Conversion Register: D11–D0 in bits 15:4.
			ops:    []i2ctest.IO{start(0xD3, 0x83), status(0xD3, 0x83), result(0x7F, 0xF0)},
			failAt: -1,
			raw:    2047, volts: 2047 * 4.096 / 2048,
			sleeps: []time.Duration{737500 * time.Nanosecond},
		},
		{
			name: "ads1015 pair 0-1 at 2.048 V, 3300 SPS, minus one LSB",
			chip: "ads1015", ch: Channel{Input: 0, Diff: true, Neg: 1, Range: 2.048, Rate: 3300},
			// MUX=000, PGA=010, DR=110: 1000 0101 1100 0011.
			ops:    []i2ctest.IO{start(0x85, 0xC3), status(0x85, 0xC3), result(0xFF, 0xF0)},
			failAt: -1,
			raw:    -1, volts: -0.001,
		},
		{
			name: "conversion never finishes",
			chip: "ads1115", ch: Channel{Input: 0, Rate: 860},
			ops: append([]i2ctest.IO{start(0xC3, 0xE3)},
				status(0x43, 0xE3), status(0x43, 0xE3), status(0x43, 0xE3), status(0x43, 0xE3),
				status(0x43, 0xE3), status(0x43, 0xE3), status(0x43, 0xE3), status(0x43, 0xE3),
				status(0x43, 0xE3), status(0x43, 0xE3), status(0x43, 0xE3)),
			failAt: -1,
			err:    "ads1115 at 0x48 on playback: convert: still converting after 2.32",
		},
		{
			name: "NACK on the config write: no chip at the address",
			chip: "ads1115", ch: Channel{Input: 0},
			failAt: 0,
			err:    "ads1115 at 0x48 on playback: write config: sysfs-i2c: remote I/O error|does a chip answer at 0x48?",
		},
		{
			name: "NACK on the conversion read",
			chip: "ads1015", ch: Channel{Input: 0},
			ops:    []i2ctest.IO{start(0xC3, 0x83), status(0xC3, 0x83)},
			failAt: 2,
			err:    "ads1015 at 0x48 on playback: read conversion: sysfs-i2c: remote I/O error",
		},
		{
			name: "short read: one byte recorded for the two-byte conversion register",
			chip: "ads1115", ch: Channel{Input: 0},
			ops:    []i2ctest.IO{start(0xC3, 0x83), status(0xC3, 0x83), result(0x40)},
			failAt: -1, left: 1,
			err: "ads1115 at 0x48 on playback: read conversion: |read buffer length",
		},
		{name: "range checked before any transaction", chip: "ads1115", ch: Channel{Range: 5}, failAt: -1, field: "range"},
		{name: "rate checked before any transaction", chip: "ads1015", ch: Channel{Rate: 860}, failAt: -1, field: "rate"},
		{name: "pair checked before any transaction", chip: "ads1115", ch: Channel{Input: 1, Diff: true, Neg: 2}, failAt: -1, field: "neg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.addr
			if addr == 0 {
				addr = a
			}
			adc, err := NewADS1x15(replayI2C(t, tt.ops, tt.failAt, errNACK, tt.left), addr, tt.chip)
			if err != nil {
				t.Fatal(err)
			}
			var slept []time.Duration
			adc.sleep = func(d time.Duration) { slept = append(slept, d) }
			s, err := adc.Convert(tt.ch)
			if tt.field != "" {
				if got := fieldOf(err); got != tt.field {
					t.Fatalf("Convert = %v, want an error on %q", err, tt.field)
				}
				return
			}
			checkErr(t, err, tt.err)
			if tt.failAt >= 0 && !errors.Is(err, errNACK) {
				t.Errorf("Convert = %v, want the bus error wrapped", err)
			}
			if tt.err != "" {
				return
			}
			checkSample(t, s, tt.raw, tt.volts)
			if tt.sleeps != nil && !equalDurations(slept, tt.sleeps) {
				t.Errorf("slept %v, want %v", slept, tt.sleeps)
			}
			if period := time.Second / time.Duration(adc.Chip().WithDefaults(tt.ch).Rate); slept[0] < period*11/10 {
				t.Errorf("first wait %v is shorter than a period %v plus the 10%% the data rate may lag", slept[0], period)
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNewADS1x15(t *testing.T) {
	tests := []struct {
		name string
		addr uint16
		chip string
		err  string
	}{
		{name: "ads1115 at 0x49", addr: 0x49, chip: "ads1115"},
		{name: "ads1015 in capitals", addr: 0x4A, chip: "ADS1015"},
		{name: "not an ADS1x15", addr: 0x48, chip: "pcf8591", err: `chip "pcf8591" is neither ads1115 nor ads1015`},
		{name: "address the ADDR pin cannot give", addr: 0x4C, chip: "ads1115", err: "ads1115: address 0x4c: the ADDR pin straps it to 0x48 (GND)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewADS1x15(replayI2C(t, nil, -1, nil, 0), tt.addr, tt.chip)
			checkErr(t, err, tt.err)
		})
	}
}

func TestADS1x15Probe(t *testing.T) {
	tests := []struct {
		name   string
		ops    []i2ctest.IO
		failAt int
		err    string
	}{
		{name: "chip answers", ops: []i2ctest.IO{{Addr: 0x48, W: []byte{0x01}, R: []byte{0x85, 0x83}}}, failAt: -1},
		{name: "nothing answers", failAt: 0, err: "ads1115 at 0x48 on playback: read config: sysfs-i2c: remote I/O error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adc, err := NewADS1x15(replayI2C(t, tt.ops, tt.failAt, errNACK, 0), 0x48, "ads1115")
			if err != nil {
				t.Fatal(err)
			}
			checkErr(t, adc.probe(), tt.err)
		})
	}
}
