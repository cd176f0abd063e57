package dht22

import (
	"strings"
	"testing"
	"testing/fstest"
)

// chips is a /sys/class/gpio with one gpiochip per label, at base.
func chips(c ...struct {
	dir, label, base, ngpio string
}) fstest.MapFS {
	m := fstest.MapFS{}
	for _, x := range c {
		m["class/gpio/"+x.dir+"/label"] = &fstest.MapFile{Data: []byte(x.label + "\n")}
		m["class/gpio/"+x.dir+"/base"] = &fstest.MapFile{Data: []byte(x.base + "\n")}
		m["class/gpio/"+x.dir+"/ngpio"] = &fstest.MapFile{Data: []byte(x.ngpio + "\n")}
	}
	m["class/gpio/export"] = &fstest.MapFile{}
	return m
}

type chip = struct{ dir, label, base, ngpio string }

func TestGoDHTPin(t *testing.T) {
	tests := []struct {
		name    string
		sysfs   fstest.MapFS
		pin     int
		want    int
		wantMsg string
	}{
		{name: "Pi Zero, kernel before 6.6", pin: 4, want: 4,
			sysfs: chips(chip{"gpiochip0", "pinctrl-bcm2835", "0", "54"}, chip{"gpiochip504", "raspberrypi-exp-gpio", "504", "8"})},
		{name: "Pi 4, kernel before 6.6", pin: 17, want: 17,
			sysfs: chips(chip{"gpiochip0", "pinctrl-bcm2711", "0", "58"})},
		{name: "Pi Zero, kernel 6.6", pin: 4,
			sysfs:   chips(chip{"gpiochip512", "pinctrl-bcm2835", "512", "54"}, chip{"gpiochip570", "raspberrypi-exp-gpio", "570", "8"}),
			wantMsg: "dht22: godht cannot drive GPIO4: its sysfs number is 516 and go-dht can only export numbers below 100 (this kernel numbers the header's GPIOs from 512): use the iio driver (dtoverlay=dht11,gpiopin=4)"},
		{name: "Pi 5", pin: 4,
			sysfs:   chips(chip{"gpiochip571", "pinctrl-rp1", "571", "54"}),
			wantMsg: "its sysfs number is 575"},
		{name: "no sysfs GPIO", pin: 4, sysfs: fstest.MapFS{"class/pwm/export": {}},
			wantMsg: "godht needs /sys/class/gpio, which this kernel lacks (CONFIG_GPIO_SYSFS): use the iio driver"},
		{name: "not a Pi", pin: 4, sysfs: chips(chip{"gpiochip0", "INT34C5:00", "0", "360"}),
			wantMsg: "no Raspberry Pi GPIO chip (pinctrl-bcm2835, pinctrl-bcm2711, pinctrl-rp1) under /sys/class/gpio; found: gpiochip0 (INT34C5:00)"},
		{name: "pin beyond the chip", pin: 60, sysfs: chips(chip{"gpiochip0", "pinctrl-bcm2835", "0", "54"}),
			wantMsg: "dht22: GPIO60: gpiochip0 (pinctrl-bcm2835) has 54 lines"},
		{name: "negative pin", pin: -1, sysfs: chips(chip{"gpiochip0", "pinctrl-bcm2835", "0", "54"}),
			wantMsg: "GPIO-1: pin numbers start at 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := goDHTPin(tc.sysfs, tc.pin)
			if tc.wantMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("goDHTPin = %d, %v; want error %q", got, err, tc.wantMsg)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("goDHTPin = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
