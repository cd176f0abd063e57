// Package dac drives analog outputs: the dac service, which sets
// digital-to-analog converters on a Raspberry Pi's I2C bus from MQTT, and
// the drivers it calls, reaching the chips directly with periph.io,
// through the kernel's IIO driver, or simulated.
//
// # The service
//
// The service's topics hang under <host>/dac (see package services for
// the request and result envelope):
//
//	<host>/dac/setup                   chips and outputs, JSON or YAML (below)
//	<host>/dac/set/<name>              drive an output (below)
//	<host>/dac/get[/output[/<name>]]   republish values; a plain get also returns the description
//	<host>/dac/control                 estop (every output to failsafe), recover
//	<host>/dac/result                  results
//	<host>/dac/output/<name>           the output's value, retained (below)
//	<host>/dac/output/<name>/value     its value alone, a plain number, retained
//
// A set takes the value in the output's unit, volts by default, bare or
// as an object, or the chip's code:
//
//	1.5    {"value":1.5}    {"raw":2048}    {"value":1.5,"id":7}
//
// and is refused unless its voltage lies within 0 and the chip's
// reference (vref). The result's data and the retained value say what the
// chip was given:
//
//	{"value":1.50007324,"unit":"V","raw":1862,"volts":1.50007324,"ts":"2025-06-01T12:00:00.000Z"}
//
// A setup lists the chips under chips and the outputs under outputs:
//
//	chips:
//	  - {name: dac0, chip: mcp4725, bus: i2c1, addr: 0x60, vref: 3.3}
//	  - {name: yl40, chip: pcf8591, addr: 0x48}   # its inputs may be ain's
//	outputs:
//	  - {name: level, chip: dac0, init: 0, failsafe: 0}
//	  - {name: heater, chip: yl40, scale: 30.303, unit: "%", init: 0, failsafe: 0,
//	     follow: pizero1/ain/input/setpoint}
//	failsafe_after: 60s
//
// Chip keys: name and chip (mcp4725, pcf8591, iio, sim) are required; bus
// (i2c1 by default) and addr (0x60 or 0x48 by default) for the I2C chips,
// device for iio (mcp4725 by default), vref (full scale, 3.3 V by
// default; for iio what the driver reports, when it does). Output keys:
// name is required; chip (default the first), channel (0; the sim chip
// has 8), init and failsafe (in the output's unit), scale, offset and unit
// (value = volts × scale + offset; unit required with them), follow.
// failsafe_after drives every output to failsafe once the broker has been
// gone that long, counted from start too (0, the default, never does).
// The I2C addresses and iio devices are claimed; a setup naming one
// another service holds is refused, naming both.
//
// An output whose chip and channel do not change keeps its value through
// a setup; one new to the setup starts at init (failsafe while halted).
// Outputs that leave the setup are released where they are. A setup that
// leaves chips out keeps the chips there are; under --sim, a setup
// without chips gets one sim chip.
//
// The value of every output is kept in its own small file in the state
// directory, ValuesFile, written atomically on each set (and, for values
// from a followed topic, at most once a second), so a restart comes back
// to the value last acknowledged; the setup stays in the runtime's file.
// Shutdown drives outputs to failsafe without writing that down, so the
// restart restores the values. Estop and a lost broker do write it down:
// a restart after either comes back at failsafe, as the outputs were.
//
// An output may follow a topic, as a gpio output does: each value
// published there (a plain number, or a JSON object with a numeric
// "value", such as an ain reading) drives the output as a set would,
// through its scale and offset, clamped to its range; the retained value
// is taken at start. Following <host>/gpio/output/<pwm> with scale
// 100/vref and unit "%" makes the dac track a PWM duty.
//
// # Both halves of a PCF8591
//
// A pcf8591's address is claimed shared with the ain service
// (services.SharedI2CClaim): the ain service may read the chip's four
// inputs if its chip says dac: true, which keeps the analog output
// enabled in every control byte it sends. Without it, the dac setup is
// refused, naming the ain chip.
//
// # Codes and volts
//
// An Output takes raw codes, 0 .. 2^Bits-1. The voltage is
//
//	V = Vref × raw / 2^Bits
//
// where Vref is the chip's reference: its supply VDD on the MCP4725, the
// VREF pin on the PCF8591. The top code is one LSB short of Vref. Volts
// and Raw convert; Raw refuses voltages outside 0..Vref with ErrRange
// rather than clipping them, since a setpoint the chip cannot produce is
// a configuration error the user should see. Vref is whatever the supply
// really is, 3.3 V or 5 V nominal and a few percent off: measure it for
// accurate volts. The IIO driver reports it when the device tree tells
// the kernel (IIO.VRef).
//
// A Chip describes what a kind of DAC can do (bits, outputs, addresses),
// so a setup can be checked before anything is opened; Chips lists them
// and Open opens one by name.
//
// # MCP4725
//
// Microchip's 12-bit, one-output DAC (datasheet DS22039D). It answers at
// 0x60 + A2A1A0: A2 and A1 are fixed by the part (MCP4725A0 0x60/0x61,
// A1 0x62/0x63, A2 0x64/0x65, A3 0x66/0x67), A0 is a pin; most breakouts
// are A0 parts with A0 pulled low, 0x60. Write uses the two-byte fast
// write. The chip also has an EEPROM holding the code it takes at
// power-up: WriteEEPROM sets both, then polls the status byte until the
// chip reports the EEPROM written (25 ms typical, 50 ms maximum, during
// which it ignores writes). Read returns the DAC register and the EEPROM.
//
// # PCF8591
//
// NXP's 8-bit converter with four ADC inputs and one DAC output, AOUT
// (datasheet Rev. 7), at 0x48 + A2A1A0. Write sends the control byte with
// the analog output enable flag, then the code. The ADC shares that
// control byte: a driver reading the inputs of the same chip must keep
// bit 6 set in its own control bytes, or the output switches off. The
// common "YL-40" modules tie VREF to VCC and carry an LED on AOUT.
//
// # Wiring
//
// Both chips sit on the header's I2C bus 1: SDA on pin 3 (GPIO2), SCL on
// pin 5 (GPIO3), ground on pin 6, power from 3.3 V on pin 1. The Pi's
// pins are not 5 V tolerant: a breakout powered from 5 V usually pulls
// SDA and SCL up to 5 V, so power it from 3.3 V (full scale is then
// 3.3 V) unless its pull-ups go to 3.3 V. Enable the bus with
//
//	dtparam=i2c_arm=on
//
// in /boot/firmware/config.txt (/boot/config.txt before Bookworm) and
// reboot; the user needs the i2c group. i2cdetect -y 1 lists the
// addresses that answer; "UU" means a kernel driver holds the address.
//
// # The kernel's driver
//
// With the kernel's mcp4725 IIO driver bound to the chip, IIO writes
// out_voltage0_raw under /sys/bus/iio/devices/iio:deviceN/ (see IIO for
// every attribute). The Raspberry Pi kernel has no ready-made overlay
// for it that this package knows of; a small one does it, with the Pi's
// 3.3 V rail as the supply so that out_voltage_scale is known:
//
//	/dts-v1/;
//	/plugin/;
//	/ {
//		compatible = "brcm,bcm2835";
//		fragment@0 {
//			target = <&i2c_arm>;
//			__overlay__ {
//				#address-cells = <1>;
//				#size-cells = <0>;
//				status = "okay";
//				dac@60 {
//					compatible = "microchip,mcp4725";
//					reg = <0x60>;
//					vdd-supply = <&vdd_3v3_reg>;
//				};
//			};
//		};
//	};
//
// Compile it with dtc -@ -I dts -O dtb -o mcp4725.dtbo, copy it to
// /boot/firmware/overlays/ and add dtoverlay=mcp4725. Without an overlay,
// echo mcp4725 0x60 > /sys/bus/i2c/devices/i2c-1/new_device binds the
// driver until the next boot, with no supply: reading the scale then
// fails with EINVAL and VRef is 0.
//
// Use one path per chip: the direct I2C driver does not see the kernel
// driver (periph's combined transfers skip the kernel's address check),
// and each would undo the other's writes.
//
// # Simulation
//
// Sim keeps the last code written and can call a hook on every write, so
// the demo can wire a simulated DAC to a simulated input.
package dac
