// Package iiotest is an in-memory sysfs tree for testing code that uses
// package iio, the way periph ships gpiotest beside gpio.
package iiotest

import (
	"io/fs"
	"path"
	"sync"
	"testing/fstest"

	"github.com/rollcall/rollcall/sensors/iio"
)

// MapFS is an in-memory sysfs tree for tests: attribute files by path
// relative to the sysfs root, and errors to return for some of them, the
// way a kernel driver fails a read with EIO or ETIMEDOUT. Writes replace a
// file's content. It is safe for concurrent use.
type MapFS struct {
	mu     sync.Mutex
	files  fstest.MapFS
	errs   map[string]error
	writes []string
}

// NewMapFS returns a tree holding files (path → content).
func NewMapFS(files map[string]string) *MapFS {
	m := &MapFS{files: fstest.MapFS{}, errs: map[string]error{}}
	for p, c := range files {
		m.files[p] = &fstest.MapFile{Data: []byte(c), Mode: 0o644}
	}
	return m
}

// AddDevice adds bus/iio/devices/<dir> with a name file and attrs.
func (m *MapFS) AddDevice(dir, name string, attrs map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	base := path.Join(iio.DevicesDir, dir)
	m.files[path.Join(base, "name")] = &fstest.MapFile{Data: []byte(name + "\n"), Mode: 0o444}
	for a, c := range attrs {
		m.files[path.Join(base, a)] = &fstest.MapFile{Data: []byte(c), Mode: 0o644}
	}
}

// Set replaces the content of a file.
func (m *MapFS) Set(name, content string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[name] = &fstest.MapFile{Data: []byte(content), Mode: 0o644}
}

// Fail makes reads and writes of name return err until Fail(name, nil).
func (m *MapFS) Fail(name string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		delete(m.errs, name)
		return
	}
	m.errs[name] = err
}

// Content returns a file's content.
func (m *MapFS) Content(name string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[name]
	if !ok {
		return "", false
	}
	return string(f.Data), true
}

// Writes returns the writes made so far, as "path=content".
func (m *MapFS) Writes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.writes...)
}

// Open implements fs.FS.
func (m *MapFS) Open(name string) (fs.File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.errs[name]; err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	// Serve from a copy so a later Set does not race with a reader.
	f, err := fstest.MapFS(cloneMap(m.files)).Open(name)
	return f, err
}

// WriteFile implements iio.FS: only existing files can be written, as in sysfs.
func (m *MapFS) WriteFile(name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.errs[name]; err != nil {
		return &fs.PathError{Op: "write", Path: name, Err: err}
	}
	f, ok := m.files[name]
	if !ok {
		return &fs.PathError{Op: "write", Path: name, Err: fs.ErrNotExist}
	}
	m.files[name] = &fstest.MapFile{Data: append([]byte(nil), data...), Mode: f.Mode}
	m.writes = append(m.writes, name+"="+string(data))
	return nil
}

func cloneMap(in fstest.MapFS) fstest.MapFS {
	out := make(fstest.MapFS, len(in))
	for k, v := range in {
		c := *v
		out[k] = &c
	}
	return out
}

var _ iio.FS = (*MapFS)(nil)
