package dht22

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// The labels of the GPIO chip behind the 40-pin header: Pi 0–3, Pi 4,
// Pi 5.
var socChips = []string{"pinctrl-bcm2835", "pinctrl-bcm2711", "pinctrl-rp1"}

// goDHTPin returns the number go-dht must be given for BCM GPIO pin: the
// legacy sysfs GPIO number, the header chip's base plus the pin. go-dht
// writes that number to /sys/class/gpio/export through a 3-byte buffer,
// two digits and a NUL, so it can only reach numbers below 100; Raspberry
// Pi OS kernels 6.6 and later start the header chip at 512, where it would
// export the wrong number and fail. This is checked here because go-dht
// would then report "failed to export pin 516", which says nothing about
// why.
func goDHTPin(sysfs fs.FS, pin int) (int, error) {
	n, err := sysfsGPIO(sysfs, pin)
	if err != nil {
		return 0, err
	}
	if n >= 100 {
		return 0, fmt.Errorf("dht22: godht cannot drive GPIO%d: its sysfs number is %d and go-dht can only export numbers below 100 (this kernel numbers the header's GPIOs from %d): use the iio driver (dtoverlay=dht11,gpiopin=%d)", pin, n, n-pin, pin)
	}
	return n, nil
}

// sysfsGPIO returns the /sys/class/gpio number of BCM GPIO pin: the base
// of the header's chip plus the pin.
func sysfsGPIO(sysfs fs.FS, pin int) (int, error) {
	if pin < 0 {
		return 0, fmt.Errorf("dht22: GPIO%d: pin numbers start at 0", pin)
	}
	entries, err := fs.ReadDir(sysfs, "class/gpio")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, errors.New("dht22: godht needs /sys/class/gpio, which this kernel lacks (CONFIG_GPIO_SYSFS): use the iio driver")
	}
	if err != nil {
		return 0, fmt.Errorf("dht22: godht: %w", err)
	}
	for _, want := range socChips {
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), "gpiochip") {
				continue
			}
			dir := path.Join("class/gpio", e.Name())
			label := readTrimmed(sysfs, path.Join(dir, "label"))
			if label != want {
				continue
			}
			base, berr := strconv.Atoi(readTrimmed(sysfs, path.Join(dir, "base")))
			ngpio, nerr := strconv.Atoi(readTrimmed(sysfs, path.Join(dir, "ngpio")))
			if berr != nil || nerr != nil {
				return 0, fmt.Errorf("dht22: godht: /sys/%s: unreadable base or ngpio", dir)
			}
			if pin >= ngpio {
				return 0, fmt.Errorf("dht22: GPIO%d: %s (%s) has %d lines", pin, e.Name(), label, ngpio)
			}
			return base + pin, nil
		}
	}
	var seen []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "gpiochip") {
			seen = append(seen, fmt.Sprintf("%s (%s)", e.Name(), readTrimmed(sysfs, path.Join("class/gpio", e.Name(), "label"))))
		}
	}
	sort.Strings(seen)
	found := "none"
	if len(seen) > 0 {
		found = strings.Join(seen, ", ")
	}
	return 0, fmt.Errorf("dht22: godht: no Raspberry Pi GPIO chip (%s) under /sys/class/gpio; found: %s",
		strings.Join(socChips, ", "), found)
}

func readTrimmed(fsys fs.FS, name string) string {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
