package agent

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rollcall/rollcall/services"
)

// machineID returns the host's stable identity: configured, else kept in
// <state>/machine-id, else made now and kept. /etc/machine-id is not used:
// cloned SD-card images share it, and telling clones apart is the point.
func machineID(stateDir, configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	path := filepath.Join(stateDir, "machine-id")
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); len(id) >= 8 {
			return id, nil
		}
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("machine id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	if err := services.WriteFileAtomic(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("machine id: %w", err)
	}
	return id, nil
}

// loadVersion reads the last description version published; 0 when none.
func loadVersion(stateDir string) uint64 {
	b, err := os.ReadFile(filepath.Join(stateDir, "version"))
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v
}

func saveVersion(stateDir string, v uint64) error {
	return services.WriteFileAtomic(filepath.Join(stateDir, "version"), []byte(strconv.FormatUint(v, 10)+"\n"), 0o644)
}
