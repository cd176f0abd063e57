// Package iio reads and writes the kernel's Industrial I/O devices through
// sysfs: /sys/bus/iio/devices/iio:deviceN/, one file per attribute
// (in_voltage0_raw, in_voltage_scale, in_temp_input, out_voltage0_raw...).
//
// The tree is reached through an FS rooted at the sysfs mount, so tests
// and users can point it elsewhere, the way node_exporter takes
// --path.sysfs.
package iio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// DevicesDir is where IIO devices are listed, relative to the sysfs root.
const DevicesDir = "bus/iio/devices"

// An FS is a sysfs tree: read like any fs.FS, plus writes to attribute
// files. Names are slash-separated and relative to the sysfs root.
type FS interface {
	fs.FS
	WriteFile(name string, data []byte) error
}

// Dir returns the sysfs tree rooted at root ("/sys" on a Pi).
func Dir(root string) FS { return dirFS{root: root, FS: os.DirFS(root)} }

type dirFS struct {
	fs.FS
	root string
}

// WriteFile writes data to an existing attribute file, in one write as
// sysfs expects; it never creates a file.
func (d dirFS) WriteFile(name string, data []byte) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: "write", Path: name, Err: fs.ErrInvalid}
	}
	f, err := os.OpenFile(filepath.Join(d.root, filepath.FromSlash(name)), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Close())
}

// Device is one IIO device.
type Device struct {
	fsys FS
	// Dir is the device's directory relative to the sysfs root,
	// "bus/iio/devices/iio:device0".
	Dir string
	// Name is the content of its name file: the driver's name for the
	// chip ("mcp3008", "ads1115", "dht11", "mcp4725").
	Name string
}

// ErrNotFound is wrapped by Find when no device matches.
var ErrNotFound = errors.New("no such IIO device")

// Find returns the device whose directory is name ("iio:device0"), or
// else the first, in directory order, whose name file says name
// ("mcp3008"), or else the only one whose name is name with a device-tree
// unit address ("dht11@0" or "4.dht11" for "dht11"). The error lists the devices there are, since the usual
// cause is a missing or misspelt dtoverlay.
func Find(fsys FS, name string) (Device, error) {
	if name == "" {
		return Device{}, errors.New("iio: empty device name")
	}
	entries, err := fs.ReadDir(fsys, DevicesDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Device{}, fmt.Errorf("iio: %w", err)
	}
	var seen []string
	var byBase []Device // devices whose name matches but for a unit address
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "iio:device") {
			names = append(names, e.Name())
		}
	}
	sort.Slice(names, func(i, j int) bool { return deviceIndex(names[i]) < deviceIndex(names[j]) })
	for _, dir := range names {
		d := Device{fsys: fsys, Dir: path.Join(DevicesDir, dir)}
		d.Name, _ = d.ReadString("name")
		if dir == name || d.Name == name {
			return d, nil
		}
		if base := nodeName(d.Name); base != d.Name && base == name {
			byBase = append(byBase, d)
		}
		seen = append(seen, fmt.Sprintf("%s (%s)", dir, d.Name))
	}
	switch len(byBase) {
	case 1:
		return byBase[0], nil
	case 0:
	default:
		return Device{}, fmt.Errorf("iio: %q matches %d devices (%s); name one by its directory, iio:deviceN", name, len(byBase), strings.Join(seen, ", "))
	}
	have := "none"
	if len(seen) > 0 {
		have = strings.Join(seen, ", ")
	}
	return Device{}, fmt.Errorf("iio: %q: %w under %s (devices present: %s; is the dtoverlay loaded?)", name, ErrNotFound, DevicesDir, have)
}

// nodeName is a device name without the unit address a platform device
// takes from its device-tree node: "dht11@0" and "4.dht11" are both
// "dht11".
func nodeName(name string) string {
	name, _, _ = strings.Cut(name, "@")
	if pre, rest, ok := strings.Cut(name, "."); ok && pre != "" && strings.Trim(pre, "0123456789abcdef") == "" {
		name = rest
	}
	return name
}

func deviceIndex(dir string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(dir, "iio:device"))
	if err != nil {
		return 1 << 30
	}
	return n
}

func (d Device) path(attr string) string { return path.Join(d.Dir, attr) }

// Has reports whether the device has the attribute.
func (d Device) Has(attr string) bool {
	_, err := fs.Stat(d.fsys, d.path(attr))
	return err == nil
}

// ReadString returns the attribute's content without surrounding space.
func (d Device) ReadString(attr string) (string, error) {
	b, err := fs.ReadFile(d.fsys, d.path(attr))
	if err != nil {
		return "", d.err(attr, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ReadInt reads an integer attribute (a _raw or _input file).
func (d Device) ReadInt(attr string) (int64, error) {
	s, err := d.ReadString(attr)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, d.err(attr, fmt.Errorf("%q is not an integer", s))
	}
	return v, nil
}

// ReadFloat reads a decimal attribute (a _scale or _offset file).
func (d Device) ReadFloat(attr string) (float64, error) {
	s, err := d.ReadString(attr)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, d.err(attr, fmt.Errorf("%q is not a number", s))
	}
	return v, nil
}

// WriteInt writes an integer attribute (out_voltage0_raw).
func (d Device) WriteInt(attr string, v int64) error {
	if err := d.fsys.WriteFile(d.path(attr), []byte(strconv.FormatInt(v, 10))); err != nil {
		return d.err(attr, err)
	}
	return nil
}

// WriteString writes an attribute as it is.
func (d Device) WriteString(attr, v string) error {
	if err := d.fsys.WriteFile(d.path(attr), []byte(v)); err != nil {
		return d.err(attr, err)
	}
	return nil
}

func (d Device) err(attr string, err error) error {
	// fs.PathError repeats the path; the device and attribute say it all.
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &Error{Device: path.Base(d.Dir), Name: d.Name, Attr: attr, Err: err}
}

// Error is a failed read or write of one attribute.
type Error struct {
	Device string // "iio:device0"
	Name   string // "dht11"
	Attr   string // "in_temp_input"
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("iio %s (%s) %s: %v", e.Device, e.Name, e.Attr, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether err is one of the transient failures of a
// kernel driver that samples a sensor on demand: EIO (checksum or lost
// sync), ETIMEDOUT (too few edges), EAGAIN (busy, or the clock too
// coarse). The dht11 driver, which also serves the DHT22, returns all
// three in normal operation; try again after a pause.
func Retryable(err error) bool {
	return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, syscall.EAGAIN)
}
