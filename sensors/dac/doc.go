// Package dac drives analog outputs: digital-to-analog converters on a
// Raspberry Pi's I2C bus, reached directly with periph.io, through the
// kernel's IIO driver, or simulated.
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
