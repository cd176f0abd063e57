package services

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A Store keeps one value of type T in one file of the state directory,
// written atomically (see WriteFileAtomic) so that a crash or a power cut
// leaves the old value or the new one, never a mix.
//
// Load tells a missing file (fs.ErrNotExist: nothing saved yet) from one
// that cannot be read or parsed (ErrCorrupt): a service must not mistake
// a damaged file for a fresh start, since the file may hold an emergency
// stop.
type Store[T any] struct {
	// Path is the file; "" keeps nothing (Load finds nothing, Save does
	// nothing).
	Path string
}

// ErrCorrupt is wrapped by Load when the file exists but does not hold a
// value.
var ErrCorrupt = errors.New("state file unreadable")

// Load reads the value. Stale temporary files of interrupted saves are
// removed first.
func (s Store[T]) Load() (T, error) {
	var v T
	if s.Path == "" {
		return v, fs.ErrNotExist
	}
	RemoveTemps(s.Path)
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return v, err
	}
	if err != nil {
		return v, fmt.Errorf("%w: %s: %w", ErrCorrupt, s.Path, err)
	}
	trimmed := strings.TrimSpace(string(b))
	if trimmed == "" || trimmed == "null" {
		return v, fmt.Errorf("%w: %s is empty", ErrCorrupt, s.Path)
	}
	if errs := Decode(b, 0, &v); errs != nil {
		return v, fmt.Errorf("%w: %s: %v", ErrCorrupt, s.Path, errs)
	}
	return v, nil
}

// Save writes v atomically.
func (s Store[T]) Save(v T) error {
	if s.Path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(s.Path, append(b, '\n'), 0o600)
}

// SetAside renames the file to <path>.bad-<UTC time>, so that a file the
// service could not use is kept for the operator, never deleted, and the
// next save does not overwrite it. It returns the new name.
func (s Store[T]) SetAside(now time.Time) (string, error) {
	aside := s.Path + ".bad-" + now.UTC().Format("20060102T150405Z")
	if err := os.Rename(s.Path, aside); err != nil {
		return "", err
	}
	return aside, nil
}

// WriteFileAtomic replaces path with data so that a power cut leaves either
// the old file or the new one: temporary file in the same directory, fsync,
// rename, fsync of the directory.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPrefix(path)+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp" }

// RemoveTemps removes the temporary files WriteFileAtomic left beside path
// when it was killed between creating and renaming one.
func RemoveTemps(path string) {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), tempPrefix(path)+"*"))
	for _, m := range matches {
		os.Remove(m)
	}
}
