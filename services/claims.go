package services

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// HeaderPins is the number of BCM GPIO lines on the 40-pin header of a
// Raspberry Pi: BCM 0 to 27.
const HeaderPins = 28

// busPins are the header pins a bus takes when it is in use, by the name
// claims use for it. spi1 takes all of 16–21 (CE2, CE1, CE0, MISO, MOSI,
// SCLK): it overlaps the usual button pins, so it only counts where
// something uses it.
var busPins = map[string][]int{
	"i2c0":  {0, 1}, // ID EEPROM (ID_SD, ID_SC); leave it alone on a HAT
	"i2c1":  {2, 3},
	"uart0": {14, 15},
	"spi0":  {7, 8, 9, 10, 11}, // CE1, CE0, MISO, MOSI, SCLK
	"spi1":  {16, 17, 18, 19, 20, 21},
}

// BusPins returns the BCM pins bus takes ("i2c0", "i2c1", "uart0", "spi0",
// "spi1"), and whether the bus is one of the header's. Other buses
// (i2c3 from an i2c-gpio overlay, say) are valid names without known pins.
func BusPins(bus string) ([]int, bool) {
	p, ok := busPins[bus]
	return slices.Clone(p), ok
}

// HeaderBuses lists the buses whose pins BusPins knows.
func HeaderBuses() []string {
	return slices.Sorted(maps.Keys(busPins))
}

var busName = regexp.MustCompile(`^(i2c|spi|uart)[0-9]{1,2}$`)

// ValidBus reports whether bus is a bus name claims understand: i2cN,
// spiN or uartN.
func ValidBus(bus string) bool { return busName.MatchString(bus) }

// A ClaimKind is what a Claim holds.
type ClaimKind int

// Kinds of claims.
const (
	// ClaimPin holds one header pin alone.
	ClaimPin ClaimKind = iota
	// ClaimBus holds a bus's pins for the bus, shared by every device
	// on it: the agent's "buses" list, for buses used by something outside
	// rollcall.
	ClaimBus
	// ClaimDevice holds one address on a bus (an I2C address, an SPI chip
	// select) alone, and the bus's pins shared with the bus's other devices.
	ClaimDevice
	// ClaimResource holds anything else alone, by name: a kernel IIO
	// device, say.
	ClaimResource
)

// A Claim is one thing a service holds: a header pin, a device address
// on a shared bus, a bus, or another named resource.
type Claim struct {
	Kind     ClaimKind
	Pin      int    // ClaimPin
	Bus      string // ClaimBus, ClaimDevice: "i2c1", "spi0"
	Addr     int    // ClaimDevice: I2C address or SPI chip select
	Resource string // ClaimResource
	// Share, on a ClaimDevice, lets other owners hold the same address
	// with the same Share: the two halves of one chip driven by two
	// services (a PCF8591's ADC by ain, its DAC by dac). Against any other
	// claim on the address it conflicts as an unshared claim does.
	Share string
	// Field is where the claim comes from in its owner's configuration
	// ("output[0].pin"), so that a conflict is reported at that field.
	Field string
}

// PinClaim holds header pin n.
func PinClaim(field string, n int) Claim { return Claim{Kind: ClaimPin, Pin: n, Field: field} }

// I2CClaim holds address addr on I2C bus ("i2c1").
func I2CClaim(field, bus string, addr int) Claim {
	return Claim{Kind: ClaimDevice, Bus: bus, Addr: addr, Field: field}
}

// SharedI2CClaim holds address addr on I2C bus alongside every other
// owner that claims it with the same share ("pcf8591"): for a chip whose
// halves two services drive, which must then keep out of each other's way
// on the chip themselves. A service's own claims never share.
func SharedI2CClaim(field, bus string, addr int, share string) Claim {
	return Claim{Kind: ClaimDevice, Bus: bus, Addr: addr, Field: field, Share: share}
}

// SPIClaim holds chip select cs on SPI bus ("spi0").
func SPIClaim(field, bus string, cs int) Claim {
	return Claim{Kind: ClaimDevice, Bus: bus, Addr: cs, Field: field}
}

// ResourceClaim holds a named resource alone ("iio:device0").
func ResourceClaim(field, name string) Claim {
	return Claim{Kind: ClaimResource, Resource: name, Field: field}
}

func (c Claim) String() string {
	switch c.Kind {
	case ClaimPin:
		return "GPIO " + strconv.Itoa(c.Pin)
	case ClaimBus:
		return "bus " + c.Bus
	case ClaimDevice:
		if len(c.Bus) >= 3 && c.Bus[:3] == "spi" {
			return fmt.Sprintf("%s chip select %d", c.Bus, c.Addr)
		}
		return fmt.Sprintf("%s address %#02x", c.Bus, c.Addr)
	}
	return c.Resource
}

// holder is who holds something: an owner and the field of its claim.
type holder struct {
	owner, field string
	share        string // the device claim's Share
}

func (h holder) String() string {
	if h.field == "" {
		return h.owner
	}
	return h.owner + " (" + h.field + ")"
}

// Claims is the one record of what every service of a host holds: header
// pins, buses, device addresses and other resources. A service checks its
// configuration against it before touching hardware and swaps its claims
// in one step when the configuration changes, so two services (or a
// service and a bus) never drive the same line or the same chip. It is
// safe for concurrent use.
type Claims struct {
	mu      sync.Mutex
	byOwner map[string][]Claim
}

// NewClaims returns an empty record.
func NewClaims() *Claims { return &Claims{byOwner: map[string][]Claim{}} }

// BusOwner is the owner of the buses the agent's configuration enables.
const BusOwner = "buses"

// EnableBus claims bus for things outside rollcall (a HAT's kernel
// driver): its pins go to no service; services may still put devices on
// it. field is where the configuration lists it.
func (c *Claims) EnableBus(field, bus string) Errors {
	if _, ok := busPins[bus]; !ok {
		return Errors{Errorf(CodeInvalid, field, "%q is not a bus of the header (%s)", bus, strings.Join(HeaderBuses(), ", "))}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := append(slices.Clone(c.byOwner[BusOwner]), Claim{Kind: ClaimBus, Bus: bus, Field: field})
	if errs := c.check(BusOwner, next); errs != nil {
		return errs
	}
	c.byOwner[BusOwner] = next
	return nil
}

// Check reports every claim of owner that conflicts with what other owners
// hold, or with another of its own claims, each at its claim's Field and
// naming both holders; nil when there is none.
func (c *Claims) Check(owner string, claims []Claim) Errors {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.check(owner, claims)
}

// Replace makes claims exactly what owner holds, all or nothing: on a
// conflict nothing changes and the errors are those of Check.
func (c *Claims) Replace(owner string, claims []Claim) Errors {
	c.mu.Lock()
	defer c.mu.Unlock()
	if errs := c.check(owner, claims); errs != nil {
		return errs
	}
	if len(claims) == 0 {
		delete(c.byOwner, owner)
	} else {
		c.byOwner[owner] = slices.Clone(claims)
	}
	return nil
}

// Release frees everything owner holds.
func (c *Claims) Release(owner string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byOwner, owner)
}

// Held returns what owner holds.
func (c *Claims) Held(owner string) []Claim {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.byOwner[owner])
}

// PinHolder reports who holds header pin n, alone or as a bus pin.
func (c *Claims) PinHolder(n int) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	idx := c.index("")
	if h, ok := idx.pins[n]; ok {
		return h.owner, true
	}
	for bus, hs := range idx.busUsers {
		if slices.Contains(busPins[bus], n) && len(hs) > 0 {
			return hs[0].owner, true
		}
	}
	return "", false
}

// claimIndex is what every owner but one holds, by key.
type claimIndex struct {
	pins      map[int]holder
	devices   map[string]holder // bus + "/" + addr
	resources map[string]holder
	busUsers  map[string][]holder // every holder of a bus or a device on it
}

func (c *Claims) index(except string) claimIndex {
	idx := claimIndex{pins: map[int]holder{}, devices: map[string]holder{}, resources: map[string]holder{}, busUsers: map[string][]holder{}}
	owners := slices.Sorted(maps.Keys(c.byOwner))
	for _, o := range owners {
		if o == except {
			continue
		}
		for _, cl := range c.byOwner[o] {
			idx.add(o, cl)
		}
	}
	return idx
}

func (idx claimIndex) add(owner string, cl Claim) {
	h := holder{owner: owner, field: cl.Field, share: cl.Share}
	switch cl.Kind {
	case ClaimPin:
		idx.pins[cl.Pin] = h
	case ClaimBus:
		idx.busUsers[cl.Bus] = append(idx.busUsers[cl.Bus], h)
	case ClaimDevice:
		idx.devices[deviceKey(cl)] = h
		idx.busUsers[cl.Bus] = append(idx.busUsers[cl.Bus], h)
	case ClaimResource:
		idx.resources[cl.Resource] = h
	}
}

func deviceKey(cl Claim) string { return cl.Bus + "/" + strconv.Itoa(cl.Addr) }

// check is Check with c.mu held. Claims are checked in order against
// other owners and then against the owner's earlier claims, so a
// configuration that uses one pin twice is told so at the second use.
func (c *Claims) check(owner string, claims []Claim) Errors {
	if owner == "" {
		return Errors{{Code: CodeInternal, Message: "claims: empty owner"}}
	}
	others := c.index(owner)
	mine := claimIndex{pins: map[int]holder{}, devices: map[string]holder{}, resources: map[string]holder{}, busUsers: map[string][]holder{}}
	var errs Errors
	conflict := func(cl Claim, what string, h holder, self bool) {
		msg := fmt.Sprintf("%s cannot take %s: %s holds it", owner, what, h)
		if self {
			msg = fmt.Sprintf("%s is already used by %s", what, h.field)
		}
		errs = append(errs, Error{Code: CodeConflict, Field: cl.Field, Message: msg})
	}
	for _, cl := range claims {
		n := len(errs)
		for i, idx := range []claimIndex{others, mine} {
			self := i == 1
			switch cl.Kind {
			case ClaimPin:
				if h, ok := idx.pins[cl.Pin]; ok {
					conflict(cl, cl.String(), h, self)
					break
				}
				for _, bus := range sortedBuses(idx.busUsers) {
					if slices.Contains(busPins[bus], cl.Pin) {
						conflict(cl, cl.String(), holder{owner: idx.busUsers[bus][0].owner, field: bus + " pins, " + idx.busUsers[bus][0].field}, self)
						break
					}
				}
			case ClaimBus, ClaimDevice:
				if cl.Kind == ClaimDevice {
					// Two owners sharing a chip by agreement do not conflict.
					if h, ok := idx.devices[deviceKey(cl)]; ok && (self || cl.Share == "" || h.share != cl.Share) {
						switch {
						case self:
						case h.share != "":
							h.field += ", shared only as " + h.share
						case cl.Share != "":
							h.field += ", unshared"
						}
						conflict(cl, cl.String(), h, self)
						break
					}
				}
				for _, p := range busPins[cl.Bus] {
					if h, ok := idx.pins[p]; ok {
						conflict(cl, fmt.Sprintf("%s (its pins include GPIO %d)", cl.Bus, p), h, self)
						break
					}
				}
			case ClaimResource:
				if h, ok := idx.resources[cl.Resource]; ok {
					conflict(cl, cl.Resource, h, self)
				}
			}
			if len(errs) > n {
				break
			}
		}
		mine.add(owner, cl)
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func sortedBuses(m map[string][]holder) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
