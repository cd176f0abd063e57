package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rollcall/rollcall/services"
)

// machineID returns the host's stable identity: configured, else kept in
// <state>/machine-id, else made now and kept. /etc/machine-id is not used:
// cloned SD-card images share it, and telling clones apart is the point.
// A machine-id file that cannot be read is an error, never replaced: a
// new identity would make the host a stranger to its cluster.
func machineID(stateDir, configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	path := filepath.Join(stateDir, "machine-id")
	services.RemoveTemps(path)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(b))
		if len(id) < 8 || !services.ValidTopicName(id) {
			return "", fmt.Errorf("machine id: %s holds %q, not an identity; fix or remove it (a new one makes this host a new machine to the cluster)", path, truncate(id, 40))
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("machine id: %w", err)
	}
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("machine id: %w", err)
	}
	id := hex.EncodeToString(r[:])
	if err := services.WriteFileAtomic(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("machine id: %w", err)
	}
	return id, nil
}

// loadVersion reads the last description version published: 0 when there
// is none yet, and an error when the file cannot be read or parsed. The
// caller then goes on above any version the broker still holds, so the
// version never goes backwards.
func loadVersion(stateDir string) (uint64, error) {
	path := filepath.Join(stateDir, "version")
	services.RemoveTemps(path)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("description version: %w", err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("description version: %s holds %q, not a number", path, truncate(strings.TrimSpace(string(b)), 40))
	}
	return v, nil
}

func saveVersion(stateDir string, v uint64) error {
	return services.WriteFileAtomic(filepath.Join(stateDir, "version"), []byte(strconv.FormatUint(v, 10)+"\n"), 0o644)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
