// Package ain reads analog inputs through ADCs: the ain service, which
// reads channels on its own timers and publishes what it reads over MQTT,
// and the drivers it calls.
//
// # The service
//
// The service's topics hang under <host>/ain (see package services for
// the request and result envelope):
//
//	<host>/ain/setup                 chips and channels, JSON or YAML (below)
//	<host>/ain/get[/input[/<name>]]  republish readings; a plain get also returns the description
//	<host>/ain/control               estop, recover
//	<host>/ain/result                results, and read errors (op "read")
//	<host>/ain/input/<name>          the last reading, retained (below)
//	<host>/ain/input/<name>/value    its value alone, a plain number, retained
//
// A reading is
//
//	{"value":30.2,"unit":"%","raw":2048,"volts":1.65,"ts":"2025-06-01T12:00:00.125Z"}
//
// value = volts × scale + offset in the channel's unit (volts, "V", by
// default); raw is the chip's code; ts is when it was read, UTC, to the
// millisecond. The value topic carries 30.2 alone, for clients that want
// a number (a dac output can follow either).
//
// A setup lists the host's converters under chips and what to read under
// channels:
//
//	chips:
//	  - {name: adc, chip: ads1115, bus: i2c1, addr: 0x48}   # ADDR to GND
//	  - {name: mcp, chip: mcp3008, bus: spi0, cs: 0, vref: 3.3}
//	  - {name: yl40, chip: pcf8591, addr: 0x49, dac: true}  # its AOUT is the dac service's
//	  - {name: kernel, chip: iio, device: mcp3008}          # dtoverlay=mcp3008
//	channels:
//	  - {name: soil, chip: adc, channel: 0, range: 4.096, rate: 128, interval: 1s,
//	     scale: 30.3, unit: "%", deadband: 0.5}
//	  - {name: shunt, chip: adc, channel: 2, neg: 3, range: 0.256, rate: 860, interval: 10ms}
//	  - {name: level, chip: mcp, channel: 7, interval: 1ms}  # 1 kHz
//
// Chip keys: name and chip (mcp3008, ads1115, ads1015, pcf8591, iio,
// sim) are required; bus (i2c1, spi0 by default), addr (I2C, 0x48 by
// default), cs (SPI chip select, 0 or 1 on spi0), speed_hz (mcp3008
// clock, 1 MHz by default), vref (mcp3008, pcf8591 and iio mcp320x
// devices, 3.3 V by default), device (iio) and dac (pcf8591) depend on
// the chip. Channel keys: name and channel are required; chip (default
// the first), neg (a differential pair), range and rate (ads1x15 PGA and
// data rate), interval (1 ms to 24 h, 1 s by default; an ads1x15 needs at
// least one conversion, 138 ms at 8 SPS), deadband (publish only when the
// value moved that far from the last one published; 0, the default,
// publishes every reading), scale and offset (with unit, required then).
// Everything is checked before anything is opened, against the chip's
// inputs, pairs, ranges and rates; every problem is reported with its
// field. The bus addresses, chip selects and iio devices a setup names
// are claimed: a setup that names one another service holds is refused,
// naming both.
//
// A setup that leaves chips out keeps the chips there are, so that
// {"channels":[{"name":"soil","channel":0}]} works on a host whose chips
// are in its configuration file; under --sim, a setup without chips gets
// one sim chip, so the same payload works on any machine. Channels whose
// chip and settings did not change keep reading through a setup, their
// deadband and counts intact; merge (chips and channels by name) is
// supported.
//
// In the agent's configuration file the same block sits under "ain:"
// (see configs/pi.yaml and configs/sim.yaml). The description lists every
// channel as an input with its topic, unit, min and max (the chip's range
// through scale and offset) and interval, and its state lists the chips
// (open or why not) and channels (reads, readings published, errors,
// missed reads) with the setup and reading schemas.
//
// # Reading
//
// Each channel is a services.Scan: read on its own timer, in a goroutine
// of its own, never the runtime's, on its interval's grid (start to
// start, so a 1 ms channel makes a thousand reads a second); channels of
// one chip take turns on it. A read that fails is counted, reported on
// the result topic as
//
//	{"op":"read","status":"error","error":{"code":"hardware","field":"channels[0]","message":"soil: ..."},
//	 "data":{"name":"soil","errors":3,"consecutive_errors":3,"retry_in":"400ms"}}
//
// when the channel starts failing and then at most once a minute, and
// shows in the description's health until the channel reads again. The
// channel is tried again after its interval, then twice that, doubling up
// to a minute, and back to its interval on the first good read. A chip that
// cannot be opened at start does not stop the service: its channels
// report read errors and open it when it answers. A setup naming a chip
// that cannot be opened is refused, and nothing changes.
//
// A 1 kHz scan (interval 1ms) on one channel is cheap: the reading is
// formatted without reflection, and the outbox keeps only the latest
// unsent reading of a topic when the broker is slower. Use a deadband to
// publish changes only.
//
// Estop halts setups but not reading: the service drives nothing.
//
// # Both halves of a PCF8591
//
// The PCF8591's ADC and DAC share its control byte: every byte the ain
// service sends selects an input and also sets or clears the analog
// output enable flag. To read the inputs of a chip whose AOUT the dac
// service drives, give the ain chip dac: true. Conversions then keep the
// output enabled, and the chip's I2C address is claimed shared with the
// dac service (services.SharedI2CClaim) rather than alone; without it the
// dac service's setup is refused, naming this chip. Each conversion is one
// combined I2C transaction, so a DAC write between the two halves of a
// conversion cannot happen.
//
// # Drivers
//
// A Converter converts one input of one chip at a time: Convert takes a
// Channel (which input, single-ended or as a differential pair, and the
// range and data rate where the chip has them) and returns a Sample, the
// chip's code (Raw) and the voltage it stands for (Volts). A conversion
// is several bus transactions, so a converter serializes its own
// conversions; open one converter per chip and share it.
//
// A Chip says what one kind of ADC can do: inputs, differential pairs,
// PGA ranges, data rates, resolution, I2C addresses. Chip.Check says
// whether a Channel is possible, naming the field at fault in a
// *FieldError, so that a whole setup can be checked before any bus is
// opened. Chips lists them; Open opens one by name.
//
// # Three paths to a chip
//
// Direct: the converter talks to the chip over /dev/spidev* or
// /dev/i2c-* through periph.io (MCP3008, ADS1115, ADS1015, PCF8591).
// Nothing but dtparam=spi=on or dtparam=i2c_arm=on is needed, range and
// rate can change per conversion, and errors come straight from the bus.
//
// Kernel (iio): a dtoverlay binds a kernel driver to the chip, which
// then appears as /sys/bus/iio/devices/iio:deviceN, and a read of
// in_voltageN_raw makes one conversion. The kernel owns the chip: with
// dtoverlay=mcp3008 /dev/spidev0.0 disappears, and with dtoverlay=ads1115
// i2cdetect shows the address as UU (periph's I2C_RDWR would still reach
// it and fight the driver, so do not use both). Range and rate are the
// overlay's. Volts follow the IIO ABI:
//
//	volts = (in_voltageN_raw + offset) × scale / 1000
//
// scale in millivolts per LSB from in_voltageN_scale, else
// in_voltage_scale; offset, in LSBs, from in_voltageN_offset, else
// in_voltage_offset, else 0. A pair A−B reads in_voltageA-voltageB_raw
// with in_voltageA-voltageB_scale, else in_voltage-voltage_scale (the
// kernel's name for a scale shared by differential channels).
//
// Sim: a simulated 8-input, 12-bit ADC whose inputs drift slowly with a
// little noise, deterministic for a seed and a clock; tests pin inputs.
//
// # MCP3008 (SPI)
//
// 10 bits, 8 single-ended inputs or the pseudo-differential pairs 0-1,
// 1-0, 2-3, 3-2, 4-5, 5-4, 6-7, 7-6 (a pair reads 0 when + is below −).
// volts = raw × vref / 1024. SPI mode 0, clock 1 MHz by default (the
// datasheet allows 3.6 MHz at 5 V, 1.35 MHz at 2.7 V).
//
// Wiring (DIP-16 pin → Pi header): 16 VDD and 15 VREF → 3.3 V (pin 1);
// 14 AGND and 9 DGND → GND (pin 6); 13 CLK → GPIO11 SCLK (pin 23); 12 DOUT
// → GPIO9 MISO (pin 21); 11 DIN → GPIO10 MOSI (pin 19); 10 CS/SHDN →
// GPIO8 CE0 (pin 24) for SPI0.0, or GPIO7 CE1 (pin 26) for SPI0.1; inputs
// on pins 1–8. Enable with dtparam=spi=on.
//
// Kernel path: dtoverlay=mcp3008,spi0-0-present[,spi0-0-speed=N] loads
// mcp320x, which names the device "mcp3008" and gives in_voltage0_raw …
// in_voltage7_raw, in_voltage0-voltage1_raw, in_voltage1-voltage0_raw …,
// in_voltage_scale and in_voltage-voltage_scale. The stock overlay
// declares no vref regulator, so the driver gets the kernel's dummy
// regulator and reading a scale fails with EINVAL: give VRef (Options) or
// IIO.SetScale.
//
// # ADS1115 and ADS1015 (I2C)
//
// 16 and 12 bits, 4 single-ended inputs or the pairs 0-1, 0-3, 1-3, 2-3;
// signed codes; PGA ranges ±6.144, 4.096, 2.048, 1.024, 0.512, 0.256 V
// (default here 4.096 V, which covers 0–3.3 V; the chip's own reset value
// is 2.048 V); data rates 8–860 SPS (ADS1115, default 128) or 128–3300
// SPS (ADS1015, default 1600). volts = raw × range / 2^(bits−1). Whatever
// the range, no input may go beyond GND − 0.3 V or VDD + 0.3 V.
// Conversions are single-shot: write the config register, wait one
// period plus 10% (the datasheets' data rate tolerance), poll the OS bit,
// read the conversion register: about 10 ms at 128 SPS (8.6 ms of waiting
// and 1.3 ms for three transactions at 100 kHz), 2.6 ms at 860 SPS.
//
// Wiring: VDD → 3.3 V (pin 1), GND → pin 6, SDA → GPIO2 (pin 3), SCL →
// GPIO3 (pin 5); ADDR to GND, VDD, SDA or SCL for 0x48, 0x49, 0x4A,
// 0x4B; ALERT/RDY unused. Enable with dtparam=i2c_arm=on.
//
// Kernel path: dtoverlay=ads1115,addr=0x48,cha_enable[,cha_cfg=4,
// cha_gain=1,cha_datarate=7], … loads ti-ads1015, which names the device
// "ads1015" for both chips. It gives per-channel in_voltageN_raw,
// in_voltageN_scale, in_voltageN_sampling_frequency and the pairs'
// in_voltageA-voltageB_*, plus scale_available and
// sampling_frequency_available; raw is the signed code (12 bits on the
// ADS1015) and scale is range/2^(bits−1) in mV (0.125000000 at 4.096 V on
// an ADS1115).
//
// # PCF8591 (I2C)
//
// 8 bits, 4 single-ended inputs, or the pairs 0-3, 1-3, 2-3 (three
// differential mode) and 0-1 (two differential mode); volts = raw × vref
// / 256, raw 0–255, or −128–127 two's complement for a pair. The first
// byte of every read is the previous conversion and is dropped. The bus
// must run at 100 kHz or less, the Pi's default.
//
// Wiring (DIP-16): 16 VDD and 14 VREF → 3.3 V, 8 VSS and 13 AGND → GND,
// 12 EXT → GND (internal oscillator), 9 SDA → GPIO2 (pin 3), 10 SCL →
// GPIO3 (pin 5), A0–A2 (5–7) → GND for 0x48, up to 0x4F; inputs on 1–4,
// AOUT on 15. The kernel's pcf8591 driver is hwmon, not IIO
// (in0_input…), so this package reaches the chip directly only. Its DAC
// belongs to the dac service: a control byte rewrites the output enable
// bit, see PCF8591.SetOutputEnable.
package ain
