// Package dht22 is rollcall's dht22 service, temperature and humidity
// from DHT22 (AM2302) sensors, and the driver layer it reads them with.
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
// # The service
//
// Each sensor of the configuration is read every interval and publishes
// two inputs, retained:
//
//	<host>/dht22/input/<name>_temperature        {"value":-10.1,"unit":"°C","raw":-10100,"ts":"2025-01-09T06:12:00Z"}
//	<host>/dht22/input/<name>_temperature/value  -10.1
//	<host>/dht22/input/<name>_humidity           {"value":65.2,"unit":"%RH","raw":65200,"ts":"2025-01-09T06:12:00Z"}
//	<host>/dht22/input/<name>_humidity/value     65.2
//
// value is in °C or %RH to the sensor's 0.1; raw is the same in
// thousandths, as the kernel's driver gives it; ts is when it was read
// (UTC, RFC 3339). The /value topic carries the bare number for clients
// that want nothing else (a gauge, a shell script). With a deadband a
// value is published only once it has moved that far from the last one
// published; without, every reading is.
//
// The other topics are the runtime's (see package services):
//
//	<host>/dht22/setup    the configuration below, JSON or YAML, plus "id"
//	                      and "merge": true (merge sensors by name); an
//	                      empty payload returns the current setup
//	<host>/dht22/control  estop | recover: an estop refuses setups until
//	                      recover; the sensors, which drive nothing, go on
//	<host>/dht22/get[/input[/<name>]]  republish the readings
//	<host>/dht22/result   results, and read errors (below)
//
// There is no set topic. A setup is checked whole (names, drivers, pins,
// intervals, deadbands, and pins and IIO devices other services hold)
// and applied all or nothing: a sensor whose device is missing, or whose
// pin is not the overlay's, fails the setup with its field. Sensors whose
// configuration did not change keep being read. The setup is kept in
// <state dir>/dht22.json across restarts.
//
// # Read errors
//
// A failed read is retried after MinInterval, then at doubling delays up
// to a minute, and the interval resumes after the next good read. The
// kernel's EIO, ETIMEDOUT and EAGAIN are part of normal operation: they
// are reported only once Persist of them come in a row (half a minute);
// any other error at once. A sensor that starts failing publishes, on the
// result topic, and again at most once a minute while it fails,
//
//	{"op":"read","status":"error",
//	 "error":{"code":"hardware","field":"sensors[0]","message":"greenhouse: dht22: iio iio:device1 (dht11@0) in_temp_input: connection timed out (the sensor did not answer: check its power, the data wire and the pull-up)"},
//	 "data":{"name":"greenhouse","errors":14,"consecutive_errors":5,"retry_in":"32s"}}
//
// and the host's description says so in the service's health ("1 of 2
// channels failing; greenhouse: 14 read errors, last: ..."). Each sensor's
// counts are in the description's state. A failing sensor never stops the
// others; one whose device is missing when the agent starts is retried
// the same way.
//
// # Configuration
//
// The "dht22" block of the agent's configuration file, or a setup:
//
//	dht22:
//	  sensors:
//	    - name: greenhouse     # inputs greenhouse_temperature, greenhouse_humidity
//	      pin: 4               # BCM GPIO of DATA; with iio, the overlay's gpiopin
//	      driver: iio          # iio (default), godht, sim
//	      device: dht11        # iio: the IIO device, when there are several (dht11@0, iio:device1)
//	      interval: 10s        # default 10s, at least 2s
//	      deadband: {temperature: 0.2, humidity: 1}   # °C, %RH; 0 publishes every reading
//
// The agent's --sim runs every sensor on the sim driver.
//
// # Description
//
// The description lists both inputs of every sensor with their topic,
// unit, range (−40 to 80 °C, 0 to 100 %RH) and interval, and its state
// holds, beside the runtime's halted, config and schema (the setup's JSON
// Schema, see Schemas), a SensorState per sensor: the driver actually
// used, the IIO device found, the topics, and the read counts and last
// error.
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
// (one line per sensor, each with its own gpiopin). It appears as
// /sys/bus/iio/devices/iio:deviceN/ with
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
// rebooting, and the service refuses a pin other than the overlay's.
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
