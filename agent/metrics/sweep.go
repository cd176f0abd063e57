package metrics

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/rollcall/rollcall/agent/cluster"
)

// A textfile collector reads only files named *.prom.
const textfileExt = ".prom"

// CheckTextfile says what is wrong with path as a textfile collector's
// file, before a sweep is run for nothing.
func CheckTextfile(path string) error {
	if filepath.Ext(path) != textfileExt {
		return fmt.Errorf("textfile %s: node_exporter's textfile collector reads only files named *%s", path, textfileExt)
	}
	return nil
}

// WriteSweep writes a sweep's figures to path in the text format
// node_exporter's textfile collector reads (point its
// --collector.textfile.directory at path's directory). The file is
// written beside path under another name and renamed over it, so the
// collector never reads half of it, and is left readable by all (0644),
// since node_exporter runs as a user of its own. sweepErr is the sweep's
// error: a sweep that could not run (no broker) writes
// rollcall_sweep_success 0 and its time, and nothing else.
func WriteSweep(path string, inv cluster.Inventory, sweepErr error, now time.Time) error {
	if err := CheckTextfile(path); err != nil {
		return err
	}
	s := newScrape()
	g := func(name, help string, v float64) { s.add(newDesc(name, help, gaugeKind), v) }
	at := now
	if inv.Sweep != nil && !inv.Sweep.Started.IsZero() {
		at = inv.Sweep.Started
	}
	g("rollcall_sweep_timestamp_seconds", "When the last sweep started, in seconds since the epoch.", float64(at.UnixNano())/1e9)
	g("rollcall_sweep_success", "1 if the last sweep ran (broker reached, probe sent), whatever it found; 0 if it could not.", bool01(sweepErr == nil && inv.Sweep != nil))
	if sweepErr == nil && inv.Sweep != nil {
		s := inv.Sweep
		answered := 0
		for _, h := range inv.Hosts {
			if h.Status == cluster.StatusOnline {
				answered++
			}
		}
		g("rollcall_sweep_hosts_answered", "Machines that answered the last sweep.", float64(answered))
		g("rollcall_sweep_hosts_missing", "Hosts the last sweep expected (online in the retained inventory, or named) that never answered.", float64(len(inv.Missing)))
		g("rollcall_sweep_host_name_conflicts", "Host names the last sweep found claimed by more than one machine.", float64(len(inv.Conflicts)))
		g("rollcall_sweep_complete", "1 if every expected host answered with all its services before the timeout.", bool01(s.Complete))
		if s.Complete {
			g("rollcall_sweep_complete_seconds", "Time from the first probe to the answer that completed the last sweep.", s.CompleteMS/1e3)
		}
		g("rollcall_sweep_duration_seconds", "Time from the first probe to the end of the last sweep, quiet period included.", s.ElapsedMS/1e3)
		g("rollcall_sweep_probes", "Probes the last sweep sent, retransmissions included.", float64(s.Probes))
	}
	if err := s.err(); err != nil {
		return fmt.Errorf("textfile %s: %w", path, err)
	}
	if err := writeFileAtomic(path, s); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("textfile %s: no directory %s (node_exporter's --collector.textfile.directory): %w", path, filepath.Dir(path), err)
		}
		return fmt.Errorf("textfile %s: %w", path, err)
	}
	return nil
}

// writeFileAtomic writes s to a file beside path, named so that the
// textfile collector does not read it (path's name and digits: not
// *.prom), and renames it over path.
func writeFileAtomic(path string, s *scrape) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a failure; renamed, it is gone
	if err := s.writeText(tmp, nil); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
