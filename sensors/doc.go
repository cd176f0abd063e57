// Package sensors is the home of rollcall's sensor and converter services:
// ain (analog inputs), dac (analog outputs), dht22 (temperature and
// humidity) and sonar (HC-SR04 distance), one package each, plus iio, the
// kernel's Industrial I/O files they share.
//
// Every service reaches its chip three ways where the chip allows: through
// a kernel driver (IIO, enabled by a dtoverlay, the most reliable path on a
// Pi Zero), directly over I2C or SPI with periph.io, and simulated, so that
// the demo and the tests run on any Linux machine.
package sensors
