package gpio

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rollcall/rollcall/services"
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
	return services.WriteFileAtomic(filepath.Join(s.stateDir, stateFile), append(b, '\n'), 0o644)
}
