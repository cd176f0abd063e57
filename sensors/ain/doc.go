// Package ain reads analog inputs through an ADC: the drivers the ain
// service calls.
//
// # Concepts
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
