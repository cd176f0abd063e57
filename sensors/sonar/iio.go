package sonar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sync"
	"syscall"
	"time"

	"github.com/rollcall/rollcall/sensors/iio"
)

// The srf04 driver's attributes.
const (
	attrRaw   = "in_distance_raw"   // one-way distance in scale units (mm)
	attrScale = "in_distance_scale" // metres per unit ("0.001000")
)

// DefaultDevice is the IIO device name of the kernel's srf04 driver.
const DefaultDevice = "srf04"

// IIO pings an HC-SR04 through the kernel's srf04 driver, which times the
// echo from edge interrupts (see the package documentation for its
// overlay). The driver turns the echo into millimetres at KernelSpeed;
// Ping turns them back into the round trip, so that the caller can apply
// the speed of sound of the actual air.
type IIO struct {
	fsys  iio.FS
	dev   iio.Device
	scale float64 // metres per raw unit

	mu     sync.Mutex
	pace   pacer
	closed bool
}

var _ Ranger = (*IIO)(nil)

// NewIIO finds the srf04 driver's device under the sysfs tree fsys;
// device is its name or directory, "" meaning DefaultDevice.
func NewIIO(fsys iio.FS, device string) (*IIO, error) {
	if device == "" {
		device = DefaultDevice
	}
	dev, err := iio.Find(fsys, device)
	if err != nil {
		return nil, fmt.Errorf("sonar: %w", err)
	}
	if !dev.Has(attrRaw) {
		return nil, fmt.Errorf("sonar: %s (%s) has no %s: not a device of the kernel's srf04 driver", path.Base(dev.Dir), dev.Name, attrRaw)
	}
	scale, err := dev.ReadFloat(attrScale)
	if err != nil {
		return nil, fmt.Errorf("sonar: %w", err)
	}
	if scale <= 0 {
		return nil, fmt.Errorf("sonar: %s (%s) %s is %v, want a positive number of metres", path.Base(dev.Dir), dev.Name, attrScale, scale)
	}
	return &IIO{fsys: fsys, dev: dev, scale: scale, pace: pacer{now: time.Now, sleep: time.Sleep}}, nil
}

// Device returns the IIO device pinged, for descriptions and logs.
func (r *IIO) Device() iio.Device { return r.dev }

// Pins returns the BCM GPIOs the overlay gave the driver, from the device
// tree (of_node/trig-gpios and of_node/echo-gpios: phandle, line, flags,
// big-endian), so that a configuration naming other pins can be caught:
// the kernel owns the pins, and moving them takes an overlay edit and a
// reboot.
func (r *IIO) Pins() (trig, echo int, err error) {
	if trig, err = r.pin("trig-gpios"); err != nil {
		return 0, 0, err
	}
	if echo, err = r.pin("echo-gpios"); err != nil {
		return 0, 0, err
	}
	return trig, echo, nil
}

func (r *IIO) pin(prop string) (int, error) {
	name := path.Join(r.dev.Dir, "of_node", prop)
	b, err := fs.ReadFile(r.fsys, name)
	if err != nil {
		return 0, fmt.Errorf("sonar: %s (%s): %s of the overlay: %w", path.Base(r.dev.Dir), r.dev.Name, prop, err)
	}
	if len(b) < 8 {
		return 0, fmt.Errorf("sonar: %s (%s): of_node/%s holds %d bytes, want phandle and line (8 or more)", path.Base(r.dev.Dir), r.dev.Name, prop, len(b))
	}
	return int(binary.BigEndian.Uint32(b[4:8])), nil
}

// Ping implements Ranger. Reading in_distance_raw makes the kernel
// trigger and wait up to 70 ms; it does not space pings, Ping does.
func (r *IIO) Ping() (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, errClosed
	}
	r.pace.wait()
	raw, err := r.dev.ReadInt(attrRaw)
	switch {
	case errors.Is(err, syscall.EIO):
		// The driver rejects round trips over 40.4 ms (6.45 m at
		// -20 °C) as another sensor's echo; for an HC-SR04 that is a
		// no-target pulse.
		return 0, fmt.Errorf("sonar: %w: %w", ErrNoEcho, err)
	case errors.Is(err, syscall.ETIMEDOUT):
		return 0, fmt.Errorf("sonar: %w (ECHO did not rise within 20 ms of the trigger, or stayed high over 50 ms: check the 5 V supply, ground, the TRIG and ECHO wires and the divider)", err)
	case err != nil:
		return 0, fmt.Errorf("sonar: %w", err)
	}
	metres := float64(raw) * r.scale
	echo := echoFor(metres, KernelSpeed)
	if echo > MaxEcho {
		// An HC-SR04 holds ECHO high for about 38 ms when nothing
		// echoes, which the driver passes on as about 6.5 m.
		return 0, fmt.Errorf("sonar: %s (%s) read %.3f m: %w", path.Base(r.dev.Dir), r.dev.Name, metres, ErrNoEcho)
	}
	return echo, nil
}

// Close implements Ranger. The kernel keeps the pins.
func (r *IIO) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}
