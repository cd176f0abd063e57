// Package sonar is rollcall's sonar service, distance from HC-SR04
// ultrasonic modules, and the driver layer it pings them with.
//
// # The service
//
// Each ranger of the configuration is read every interval: samples pings,
// MinGap apart, whose median round trip becomes a distance at the speed
// of sound of the air. The reading is published, retained:
//
//	<host>/sonar/input/<name>        {"value":1.234,"unit":"m","raw":7191,"ts":"2025-01-09T06:12:00Z"}
//	<host>/sonar/input/<name>/value  1.234
//
// value is in metres, to the millimetre; raw is the median echo round
// trip in microseconds; ts is when it was read (UTC, RFC 3339); celsius,
// for a compensated ranger, is the air temperature the speed of sound was
// taken at. With nothing in range (most pings without echo, or a median
// nearer than min or farther than max) the reading is
//
//	{"value":null,"unit":"m","raw":null,"ts":"2025-01-09T06:12:01Z","status":"no_target"}
//
// (raw is the round trip when an echo came from out of range), and the
// /value topic's retained message is cleared: a client that wants a bare
// number finds none rather than a stale one, and a live subscriber gets an
// empty message. With a deadband a reading is published only once it has
// moved that far from the last one published, or when the target comes
// or goes; without, every reading is.
//
// The other topics are the runtime's (see package services):
//
//	<host>/sonar/setup    the configuration below, JSON or YAML, plus "id"
//	                      and "merge": true (merge rangers by name); an
//	                      empty payload returns the current setup
//	<host>/sonar/control  estop | recover: an estop refuses setups until
//	                      recover; the rangers go on reading
//	<host>/sonar/get[/input[/<name>]]  republish the readings
//	<host>/sonar/result   results, and read errors (below)
//
// There is no set topic. A setup is checked whole (names, drivers, pins,
// samples, range, interval, deadband, the topics rangers read, and the
// pins and IIO devices other services hold) and applied all or nothing: a
// ranger whose device is missing, or whose pins are not the overlay's,
// fails the setup with its field. Rangers whose configuration did not
// change keep being read. The setup is kept in <state dir>/sonar.json
// across restarts.
//
// Each ranger pings from its own goroutine: one whose driver hangs holds
// up neither requests nor the other rangers. Rangers on one host ping
// independently; two facing the same wall may hear each other.
//
// # Temperature compensation
//
// Sound travels at 331.3 m/s at 0 °C and 349.0 m/s at 30 °C, 5 % and 5 cm
// in a metre apart. A ranger naming a dht22 sensor of the same host
//
//	temperature: air
//
// subscribes to <host>/dht22/input/air_temperature and takes the speed of
// sound from its retained reading (SpeedOfSound) at every reading; any
// other topic carrying °C, as a reading's {"value":…} or a bare number,
// may be named instead ("weather/outside/celsius"). Until it has said
// anything, and without compensation, the air is taken at 20 °C; so is a
// temperature outside −60 to 100 °C, which no weather gives. The
// description's state shows each ranger's temperature and speed.
//
// # Read errors
//
// A reading fails when most of its pings fail (not for want of an echo:
// that is no target). It is then reported at once and, while it fails, at
// most once a minute, on the result topic:
//
//	{"op":"read","status":"error",
//	 "error":{"code":"hardware","field":"rangers[0]","message":"front: 5 of 5 pings failed: sonar: echo GPIO24 did not rise within 20ms of the trigger on GPIO23: check the 5 V supply, ground, the TRIG and ECHO wires and the divider"},
//	 "data":{"name":"front","errors":3,"consecutive_errors":3,"retry_in":"4s"}}
//
// and in the service's health in the host's description. The ranger is
// retried after its interval, then at doubling delays up to a minute, and
// resumes its interval after the next good reading.
//
// # Configuration
//
// The "sonar" block of the agent's configuration file, or a setup:
//
//	sonar:
//	  rangers:
//	    - name: front          # input <host>/sonar/input/front
//	      driver: iio          # iio (default), gpio, sim
//	      trigger: 23          # BCM GPIO of TRIG; with iio, the overlay's
//	      echo: 24             # BCM GPIO of ECHO, through the divider
//	      device: srf04        # iio: the IIO device, when there are several
//	      samples: 5           # pings per reading, their median; 1–15, default 5
//	      min: 0.05            # metres; nearer is no target (default 0)
//	      max: 3               # metres; farther is no target (default 4)
//	      interval: 1s         # default 1s; at least samples × 60 ms
//	      deadband: 0.01       # metres; 0 publishes every reading
//	      temperature: air     # a dht22 sensor of this host, or a topic of °C
//
// The agent's --sim runs every ranger on the sim driver. A simulated
// target walks back and forth between 0.3 and 2.7 m by itself; so that a
// demo shows a distance a user can change, it can instead take its place
// from a topic's value, mapped linearly from low..high to near..far
// metres (values beyond are held at the ends; far beyond 4 m takes the
// target out of range), where it wanders 2 cm either way:
//
//	sim_target: {topic: simpi/gpio/output/sonar_angle, low: 0, high: 100, near: 0.2, far: 4.5}
//
// The value is a bare number, as gpio and dac outputs publish, or a
// reading's {"value":…}. Other drivers ignore sim_target.
//
// # Description
//
// The description lists every ranger as an input with its topic, unit
// (m), range (min to max) and interval; its state holds, beside the
// runtime's halted, config and schema (the setup's JSON Schema, see
// Schemas), a RangerState per ranger: the driver actually used, the IIO
// device found, samples, range, the compensation's topic, temperature and
// speed of sound, and the read counts and last error.
//
// # Echo time, not distance
//
// The module answers a trigger pulse of at least 10 µs with a burst of
// eight 40 kHz cycles, then holds ECHO high until the burst's echo
// returns: the high time is the sound's round trip. A Ranger returns that
// round trip and leaves the conversion to the caller, because the speed
// of sound depends on the air: Distance(echo, SpeedOfSound(celsius)),
// with the temperature from a dht22 on the same host. Between −10 and
// 35 °C the speed changes by 8 %, 8 cm at 1 m. With nothing in range (up
// to MaxRange, 4 m, for a hard flat target) ECHO falls after about 38 ms
// and Ping returns ErrNoEcho. Triggers are at least MinGap (60 ms) apart,
// so that a ping never hears the previous one's echoes.
//
// # Wiring
//
// VCC to 5 V (pin 2), GND to ground (pin 6), TRIG straight to a GPIO (the
// module reads 3.3 V as high), ECHO to a GPIO through a divider, because
// the module drives it to 5 V and a Pi's GPIOs take 3.3 V at most:
//
//	ECHO ──[1 kΩ]──┬── GPIO24 (pin 18)
//	               └──[2 kΩ]── GND        5 V × 2/3 = 3.3 V
//
// (330 Ω over 470 Ω, 2.9 V, also works). Without the divider the pin may
// survive for a while; it is still out of its rating. 3.3 V variants
// (HC-SR04P, RCWL-9610) powered from 3.3 V need no divider.
//
// # Drivers
//
// gpio drives the two pins from user space through periph.io (BCM
// numbers; TRIG GPIO23 and ECHO GPIO24 are customary). It needs no kernel
// configuration, only access to /dev/gpiochip0; its accuracy is that of
// the process's scheduling (see GPIO).
//
// iio uses the kernel's srf04 driver (drivers/iio/proximity/srf04.c,
// compatible "devantech,srf04", which fits the HC-SR04's timing), which
// timestamps both edges in its interrupt handler. Raspberry Pi OS ships
// the module but no overlay for it; srf04-overlay.dts beside this file is
// one. Build and enable it:
//
//	dtc -@ -I dts -O dtb -o srf04.dtbo srf04-overlay.dts
//	sudo cp srf04.dtbo /boot/firmware/overlays/
//	# /boot/firmware/config.txt, then reboot:
//	dtoverlay=srf04,trig=23,echo=24
//
// The device is /sys/bus/iio/devices/iio:deviceN/ with
//
//	name               "srf04"
//	in_distance_raw    one-way distance in millimetres, truncated; reading
//	                   it triggers a measurement and blocks up to 70 ms
//	in_distance_scale  "0.001000": metres per unit
//
// The driver converts at KernelSpeed (343.5 m/s) whatever the air, so
// Ping converts back to the round trip (1 mm is 5.8 µs). A plain
// HC-SR04's 38 ms no-target pulse reads as about 6.5 m; round trips over
// 40.4 ms fail with EIO; Ping reports both as ErrNoEcho, as it does any
// round trip over MaxEcho. Reads fail with ETIMEDOUT when ECHO does not
// rise within 20 ms of the trigger (wiring, power) or does not fall
// within 50 ms (a clone whose no-target pulse is that long): an error,
// not ErrNoEcho, since the two cannot be told apart. The driver does not
// space its measurements; Ping does.
//
// sim echoes a target that tests and the demo place with SetTarget, or
// one that walks back and forth, with noise.
package sonar
