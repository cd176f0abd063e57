package dht22

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sync"
	"syscall"

	"github.com/rollcall/rollcall/sensors/iio"
)

// The dht11 driver's attributes, both "processed" values in thousandths.
const (
	attrTemp     = "in_temp_input"             // milli-°C
	attrHumidity = "in_humidityrelative_input" // milli-%RH
)

// IIO reads a DHT22 through the kernel's dht11 driver (dtoverlay=dht11).
type IIO struct {
	fsys iio.FS
	dev  iio.Device

	mu     sync.Mutex
	closed bool
}

var _ Sensor = (*IIO)(nil)

// NewIIO finds the dht11 driver's device under the sysfs tree fsys.
// device is a directory ("iio:device0"), a full name ("dht11@0") or a
// name without its unit address ("dht11", also what "" means), which must
// then match exactly one device.
func NewIIO(fsys iio.FS, device string) (*IIO, error) {
	if device == "" {
		device = DefaultDevice
	}
	dev, err := iio.Find(fsys, device) // "dht11" also finds dht11@0, the node name the driver takes
	if err != nil {
		return nil, fmt.Errorf("dht22: %w", err)
	}
	for _, a := range []string{attrTemp, attrHumidity} {
		if !dev.Has(a) {
			return nil, fmt.Errorf("dht22: %s (%s) has no %s: not a device of the kernel's dht11 driver", path.Base(dev.Dir), dev.Name, a)
		}
	}
	return &IIO{fsys: fsys, dev: dev}, nil
}

// Device returns the IIO device read, for descriptions and logs.
func (s *IIO) Device() iio.Device { return s.dev }

// Pin returns the BCM GPIO the overlay gave the driver, from the device
// tree (of_node/gpios: phandle, line, flags, big-endian), so that a
// configuration naming another pin can be caught: the kernel owns the pin
// and changing it takes an overlay edit and a reboot.
func (s *IIO) Pin() (int, error) {
	name := path.Join(s.dev.Dir, "of_node", "gpios")
	b, err := fs.ReadFile(s.fsys, name)
	if err != nil {
		return 0, fmt.Errorf("dht22: %s (%s): gpio of the overlay: %w", path.Base(s.dev.Dir), s.dev.Name, err)
	}
	if len(b) < 8 {
		return 0, fmt.Errorf("dht22: %s (%s): of_node/gpios holds %d bytes, want phandle and line (8 or more)", path.Base(s.dev.Dir), s.dev.Name, len(b))
	}
	return int(binary.BigEndian.Uint32(b[4:8])), nil
}

// Read implements Sensor. Temperature is read first: if it fails, the
// humidity read would only start another sample.
func (s *IIO) Read() (Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Reading{}, errClosed
	}
	t, err := s.dev.ReadInt(attrTemp)
	if err != nil {
		return Reading{}, readError(err)
	}
	h, err := s.dev.ReadInt(attrHumidity)
	if err != nil {
		return Reading{}, readError(err)
	}
	r, err := check(Reading{Celsius: float64(t) / 1000, Humidity: float64(h) / 1000})
	if err != nil {
		return Reading{}, fmt.Errorf("dht22: %s (%s): %w", path.Base(s.dev.Dir), s.dev.Name, err)
	}
	return r, nil
}

// readError adds what to check to the kernel's terse errno.
func readError(err error) error {
	hint := ""
	switch {
	case errors.Is(err, syscall.ETIMEDOUT):
		hint = " (the sensor did not answer: check its power, the data wire and the pull-up)"
	case errors.Is(err, syscall.EIO):
		hint = " (garbled answer: bad checksum or lost sync)"
	case errors.Is(err, syscall.EAGAIN):
		hint = " (the kernel's clock is too coarse to time the bits)"
	}
	return fmt.Errorf("dht22: %w%s", err, hint)
}

// Close implements Sensor. The kernel keeps the pin; Close only stops
// later reads.
func (s *IIO) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
