//go:build !godht || !cgo

package dht22

import "errors"

// openGoDHT stands in for the go-dht driver in builds without it, so that
// the default build needs no C compiler and never links go-dht.
func openGoDHT(Options) (Sensor, error) {
	return nil, errors.New(`dht22: driver "godht" is not in this build: build with -tags godht and CGO_ENABLED=1 (go-dht needs cgo), or use the "iio" driver`)
}
