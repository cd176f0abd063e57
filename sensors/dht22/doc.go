// Package dht22 reads a DHT22 (AM2302) temperature and humidity sensor:
// the driver layer of rollcall's dht22 service.
//
// # The sensor
//
// A DHT22 answers a start pulse on its single data line with 40 bits:
// humidity and temperature in tenths, the temperature in sign-magnitude
// (bit 15 is the sign, so 0x8065 is −10.1 °C, not the −3266.7 °C a
// two's-complement decoder gives), then a checksum. It measures at most
// once every two seconds (MinInterval); reading faster returns stale data
// or nothing. Even on a healthy wire some reads fail, because the 26 µs
// and 70 µs bit pulses are timed by a CPU that is doing other things: a
// Read error for which Retryable is true is normal, try again after
// MinInterval.
//
// # Wiring
//
// VCC to 3.3 V (pin 1), GND to ground, DATA to a GPIO (GPIO4, pin 7, by
// default) with a 4.7–10 kΩ pull-up to 3.3 V; the three-pin modules carry
// that resistor already. Keep the wire under a few metres. Do not power it
// from 5 V: the data line would then pull up to 5 V on the Pi's 3.3 V pin.
//
// # Drivers
//
// iio (the default) reads the kernel's dht11 driver, which serves the
// DHT22 too and times the bits from edge interrupts, the most reliable
// way on a Pi Zero. Enable it in /boot/firmware/config.txt (/boot/config.txt
// before Bookworm) and reboot:
//
//	dtoverlay=dht11,gpiopin=4
//
// It appears as /sys/bus/iio/devices/iio:deviceN/ with
//
//	name                         "dht11@0" (the device-tree node: "dht11"
//	                             and a unit address that depends on the
//	                             overlay version), so NewIIO matches
//	                             "dht11" with or without it
//	in_temp_input                temperature in milli-°C ("-10100")
//	in_humidityrelative_input    relative humidity in milli-%RH ("65200")
//	of_node/gpios                the GPIO the overlay gave it (IIO.Pin)
//
// Reading an attribute makes the kernel sample the sensor unless its last
// good sample is under 2 s old, in which case it returns that one; a
// failed sample returns EIO (checksum, lost sync), ETIMEDOUT (too few
// edges: wiring, pull-up, power) or EAGAIN (clock too coarse). The kernel
// owns the pin: moving the sensor means editing the overlay and
// rebooting.
//
// godht bit-bangs the line from user space with github.com/d2r2/go-dht.
// It needs cgo, so it is only in binaries built with
//
//	CGO_ENABLED=1 go build -tags godht
//
// and it drives the pin through the legacy /sys/class/gpio interface,
// which it can only address when the GPIO chip's sysfs numbers start
// below 100: not on Raspberry Pi OS kernels 6.6 and later, where they
// start at 512 (see GoDHT). Prefer iio.
//
// sim produces plausible readings that drift slowly with the time of day,
// with noise and sometimes below 0 °C, the same for the same seed and
// clock.
package dht22
