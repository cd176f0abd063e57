package services

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrPinHeld is wrapped by every reservation error caused by a pin that
// another owner already holds.
var ErrPinHeld = errors.New("pin held")

// HeaderPins is the number of BCM GPIO lines on the 40-pin header of a
// Raspberry Pi: BCM 0 to 27.
const HeaderPins = 28

// Buses that take fixed header pins when enabled, by the name the
// registry reserves them under.
var busPins = map[string][]int{
	"i2c0":  {0, 1}, // ID EEPROM (ID_SD, ID_SC); leave it alone on a HAT
	"i2c1":  {2, 3},
	"uart0": {14, 15},
	"spi0":  {7, 8, 9, 10, 11}, // CE1, CE0, MISO, MOSI, SCLK
	"spi1":  {16, 17, 18, 19, 20, 21},
}

// BusPins returns the BCM pins bus takes when enabled ("i2c0", "i2c1",
// "uart0", "spi0", "spi1"), or false for an unknown bus. spi1 takes all
// of 16–21 (CE2, CE1, CE0, MISO, MOSI, SCLK), so reserve it only where
// dtoverlay=spi1-* is actually set: it overlaps the usual button pins.
func BusPins(bus string) ([]int, bool) {
	p, ok := busPins[bus]
	return slices.Clone(p), ok
}

// A PinRegistry is the one record of which service holds which GPIO pin on
// a host. Every service reserves its pins here before touching them, so
// two services (or a service and an enabled bus) never drive the same
// line. It is safe for concurrent use; the zero value is not usable, call
// NewPinRegistry.
type PinRegistry struct {
	mu      sync.Mutex
	holders map[int]string
}

// NewPinRegistry returns an empty registry.
func NewPinRegistry() *PinRegistry {
	return &PinRegistry{holders: make(map[int]string)}
}

// Reserve gives owner every pin in pins, or none of them: if any pin is
// held by another owner, nothing changes and the error names the pin and
// its holder. Pins owner already holds stay held.
func (r *PinRegistry) Reserve(owner string, pins ...int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.check(owner, pins); err != nil {
		return err
	}
	for _, p := range pins {
		r.holders[p] = owner
	}
	return nil
}

// Replace makes pins exactly the set owner holds, all or nothing: pins
// owner held and are not in pins are released, and if any pin in pins is
// held by another owner nothing changes. Services use it to swap one
// configuration for the next.
func (r *PinRegistry) Replace(owner string, pins ...int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.check(owner, pins); err != nil {
		return err
	}
	for p, o := range r.holders {
		if o == owner {
			delete(r.holders, p)
		}
	}
	for _, p := range pins {
		r.holders[p] = owner
	}
	return nil
}

func (r *PinRegistry) check(owner string, pins []int) error {
	if owner == "" {
		return errors.New("pin reservation: empty owner")
	}
	for _, p := range pins {
		if h, ok := r.holders[p]; ok && h != owner {
			return fmt.Errorf("GPIO %d is held by %s: %w", p, h, ErrPinHeld)
		}
	}
	return nil
}

// ReserveBus reserves the pins of bus (see BusPins) under the bus's name.
func (r *PinRegistry) ReserveBus(bus string) error {
	pins, ok := busPins[bus]
	if !ok {
		return fmt.Errorf("pin reservation: unknown bus %q", bus)
	}
	return r.Reserve(bus, pins...)
}

// Release frees every pin owner holds.
func (r *PinRegistry) Release(owner string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, o := range r.holders {
		if o == owner {
			delete(r.holders, p)
		}
	}
}

// Holder reports who holds pin.
func (r *PinRegistry) Holder(pin int) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.holders[pin]
	return h, ok
}

// Held returns the pins owner holds, in ascending order.
func (r *PinRegistry) Held(owner string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var pins []int
	for p, o := range r.holders {
		if o == owner {
			pins = append(pins, p)
		}
	}
	slices.Sort(pins)
	return pins
}
