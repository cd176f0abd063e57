// Package sonar measures distance with an HC-SR04 ultrasonic module: the
// driver layer of rollcall's sonar service.
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
