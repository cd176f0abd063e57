package gpio

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// stateFile is the name of the saved setup in the state directory.
const stateFile = "gpio.json"

// savedState is the content of <StateDir>/gpio.json: the last applied
// setup and whether the service was emergency-stopped, so that neither a
// restart nor a crash clears an estop.
type savedState struct {
	Halted bool   `json:"halted,omitempty"`
	Config Config `json:"config"`
}

func loadState(path string) (savedState, error) {
	var st savedState
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

func (s *Service) persist(cfg Config, halted bool) error {
	if s.stateDir == "" {
		return nil
	}
	b, err := json.MarshalIndent(savedState{Halted: halted, Config: cfg}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.stateDir, stateFile), append(b, '\n'))
}

// writeFileAtomic replaces path with data so that a crash at any moment
// leaves either the old file or the new one: a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced so the
// rename itself is durable.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
