package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The process's metrics, read from /proc at every scrape under the names
// and HELP that Prometheus's Go client (its process collector) gives
// them. A figure that cannot be read is left out, as the client leaves it
// out: process metrics are a convenience, not a reason to fail a scrape.
var (
	procCPU = newDesc("process_cpu_seconds_total",
		"Total user and system CPU time spent in seconds.", counterKind)
	procOpenFDs = newDesc("process_open_fds",
		"Number of open file descriptors.", gaugeKind)
	procMaxFDs = newDesc("process_max_fds",
		"Maximum number of open file descriptors.", gaugeKind)
	procVsize = newDesc("process_virtual_memory_bytes",
		"Virtual memory size in bytes.", gaugeKind)
	procMaxVsize = newDesc("process_virtual_memory_max_bytes",
		"Maximum amount of virtual memory available in bytes.", gaugeKind)
	procRSS = newDesc("process_resident_memory_bytes",
		"Resident memory size in bytes.", gaugeKind)
	procStart = newDesc("process_start_time_seconds",
		"Start time of the process since unix epoch in seconds.", gaugeKind)
	procNetIn = newDesc("process_network_receive_bytes_total",
		"Number of bytes received by the process over the network.", counterKind)
	procNetOut = newDesc("process_network_transmit_bytes_total",
		"Number of bytes sent by the process over the network.", counterKind)
)

// userHZ is the unit of /proc's CPU times (USER_HZ), 100 on every Linux
// architecture rollcall runs on (and the value the client assumes).
const userHZ = 100

// A procFS reads the agent's own figures from a proc filesystem.
type procFS struct {
	// root is the proc filesystem: /proc, or a fixture tree in tests.
	root string
	// live says root is a real procfs, where the size of a process's fd
	// directory is its number of open descriptors (Linux 6.2 and later),
	// which spares reading the directory.
	live bool
}

var liveProc = procFS{root: "/proc", live: true}

func (p procFS) path(elem ...string) string {
	return filepath.Join(append([]string{p.root}, elem...)...)
}

// collect adds the process's metrics to s.
func (p procFS) collect(s *scrape) {
	if st, err := p.stat(); err == nil {
		s.add(procCPU, float64(st.utime+st.stime)/userHZ)
		s.add(procVsize, float64(st.vsize))
		s.add(procRSS, float64(st.rss*int64(os.Getpagesize())))
		if boot, err := p.bootTime(); err == nil {
			s.add(procStart, float64(boot)+float64(st.starttime)/userHZ)
		}
	}
	if n, err := p.openFDs(); err == nil {
		s.add(procOpenFDs, float64(n))
	}
	if files, space, err := p.limits(); err == nil {
		s.add(procMaxFDs, float64(files))
		s.add(procMaxVsize, float64(space))
	}
	if in, out, err := p.netOctets(); err == nil {
		s.add(procNetIn, in)
		s.add(procNetOut, out)
	}
}

// procStat holds the fields of /proc/self/stat that the metrics use.
type procStat struct {
	utime, stime, starttime, vsize uint64
	rss                            int64 // pages
}

// stat reads /proc/self/stat (proc(5)): after the command name, which
// may hold spaces and parentheses and so ends at the last ')', field 3
// (state) onwards, of which 14 utime, 15 stime, 22 starttime, 23 vsize
// and 24 rss.
func (p procFS) stat() (procStat, error) {
	path := p.path("self", "stat")
	b, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("%s: no ')' after the command name", path)
	}
	f := strings.Fields(string(b[i+1:]))
	field := func(n int) string { // n counts from 1 as proc(5) does; f starts at 3
		if n-3 < len(f) {
			return f[n-3]
		}
		return ""
	}
	var st procStat
	for _, u := range []struct {
		n   int
		dst *uint64
	}{{14, &st.utime}, {15, &st.stime}, {22, &st.starttime}, {23, &st.vsize}} {
		if *u.dst, err = strconv.ParseUint(field(u.n), 10, 64); err != nil {
			return procStat{}, fmt.Errorf("%s: field %d: %w", path, u.n, err)
		}
	}
	if st.rss, err = strconv.ParseInt(field(24), 10, 64); err != nil {
		return procStat{}, fmt.Errorf("%s: field 24: %w", path, err)
	}
	return st, nil
}

// bootTime is the btime line of /proc/stat: when the machine booted, in
// seconds since the epoch.
func (p procFS) bootTime() (uint64, error) {
	path := p.path("stat")
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: btime: %w", path, err)
			}
			return n, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return 0, fmt.Errorf("%s: no btime line", path)
}

// openFDs counts the process's open file descriptors.
func (p procFS) openFDs() (int, error) {
	path := p.path("self", "fd")
	if p.live {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			return int(fi.Size()), nil
		}
	}
	d, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return len(names), nil
}

// limits reads the soft limits on open files and on the address space
// from /proc/self/limits; "unlimited" is the largest uint64, as the
// kernel's RLIM_INFINITY is.
func (p procFS) limits() (files, space uint64, err error) {
	path := p.path("self", "limits")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	soft := func(name string) (uint64, error) {
		for line := range strings.Lines(string(b)) {
			rest, ok := strings.CutPrefix(line, name+"  ")
			if !ok {
				continue
			}
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			if f[0] == "unlimited" {
				return math.MaxUint64, nil
			}
			v, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %s: %w", path, name, err)
			}
			return v, nil
		}
		return 0, fmt.Errorf("%s: no %q line", path, name)
	}
	if files, err = soft("Max open files"); err != nil {
		return 0, 0, err
	}
	if space, err = soft("Max address space"); err != nil {
		return 0, 0, err
	}
	return files, space, nil
}

// netOctets reads the bytes received and sent over IP (InOctets and
// OutOctets of IpExt in /proc/self/net/netstat): the network namespace's,
// as the client reports them. A file without them counts 0.
func (p procFS) netOctets() (in, out float64, err error) {
	path := p.path("self", "net", "netstat")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		keys, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(keys) == 0 || keys[0] != "IpExt:" {
			continue
		}
		if len(keys) != len(values) {
			return 0, 0, fmt.Errorf("%s: IpExt: %d names, %d values", path, len(keys), len(values))
		}
		for j, k := range keys[1:] {
			var dst *float64
			switch k {
			case "InOctets":
				dst = &in
			case "OutOctets":
				dst = &out
			default:
				continue
			}
			if *dst, err = strconv.ParseFloat(values[j+1], 64); err != nil {
				return 0, 0, fmt.Errorf("%s: IpExt %s: %w", path, k, err)
			}
		}
		return in, out, nil
	}
	return 0, 0, nil
}
