package metrics

import (
	"maps"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// A proc tree as a Pi Zero's agent sees it, file by file.
var piProc = map[string]string{
	"stat": "cpu  1043 0 1201 88123 301 0 12 0 0 0\nbtime 1795435200\nprocesses 812\n",
	// utime 512, stime 88, starttime 1042 (ticks), vsize, rss 5210 pages.
	"self/stat": "1234 (rollcall) S 1 1234 1234 0 -1 4194560 2817 0 0 0 512 88 0 0 20 0 9 0 1042 812179456 5210 4294967295 65536 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
	"self/limits": `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max open files            1024                 524288               files     
Max locked memory         8388608              8388608              bytes     
Max address space         unlimited            unlimited            bytes     
Max file locks            unlimited            unlimited            locks     
`,
	"self/net/netstat": "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 0 0\n" +
		"IpExt: InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts InBcastPkts OutBcastPkts InOctets OutOctets\n" +
		"IpExt: 0 0 4 0 12 0 123456 654321\n",
	"self/fd/0": "", "self/fd/1": "", "self/fd/2": "", "self/fd/7": "",
}

// absent, as a file's content, leaves the file out.
const absent = "\x00absent"

func TestProcessMetrics(t *testing.T) {
	page := float64(os.Getpagesize())
	all := map[string]float64{
		"process_cpu_seconds_total":            6,
		"process_virtual_memory_bytes":         812179456,
		"process_resident_memory_bytes":        5210 * page,
		"process_start_time_seconds":           1795435200 + 10.42,
		"process_open_fds":                     4,
		"process_max_fds":                      1024,
		"process_virtual_memory_max_bytes":     math.MaxUint64,
		"process_network_receive_bytes_total":  123456,
		"process_network_transmit_bytes_total": 654321,
	}
	without := func(names ...string) map[string]float64 {
		m := maps.Clone(all)
		for _, n := range names {
			delete(m, n)
		}
		return m
	}
	with := func(m map[string]float64, kv ...any) map[string]float64 {
		m = maps.Clone(m)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(float64)
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		files map[string]string // over piProc's
		want  map[string]float64
	}{
		{"a Pi's agent", nil, all},
		{"a command name with spaces and parentheses", map[string]string{
			"self/stat": "1234 (my (agent) S 1) S 1 1234 1234 0 -1 4194560 2817 0 0 0 512 88 0 0 20 0 9 0 1042 812179456 5210 4294967295 65536\n",
		}, all},
		{"limited address space", map[string]string{
			"self/limits": "Limit                     Soft Limit           Hard Limit           Units     \n" +
				"Max open files            20000                20000                files     \n" +
				"Max address space         2147483648           unlimited            bytes     \n",
		}, with(all, "process_max_fds", 20000.0, "process_virtual_memory_max_bytes", 2147483648.0)},
		{"no netstat", map[string]string{"self/net/netstat": absent},
			without("process_network_receive_bytes_total", "process_network_transmit_bytes_total")},
		{"netstat without IpExt", map[string]string{"self/net/netstat": "TcpExt: SyncookiesSent\nTcpExt: 0\n"},
			with(all, "process_network_receive_bytes_total", 0.0, "process_network_transmit_bytes_total", 0.0)},
		{"no boot time", map[string]string{"stat": "cpu  1043 0 1201 88123 301 0 12 0 0 0\n"},
			without("process_start_time_seconds")},
		{"a truncated stat", map[string]string{"self/stat": "1234 (rollcall) S 1 1234 1234 0 -1 4194560 2817 0 0 0 512\n"},
			without("process_cpu_seconds_total", "process_virtual_memory_bytes", "process_resident_memory_bytes", "process_start_time_seconds")},
		{"no limits", map[string]string{"self/limits": absent},
			without("process_max_fds", "process_virtual_memory_max_bytes")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			files := maps.Clone(piProc)
			maps.Copy(files, tc.files)
			for name, content := range files {
				if content == absent {
					continue
				}
				path := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := newScrape()
			procFS{root: root}.collect(s)
			if err := s.err(); err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for name, f := range s.families {
				got[name] = f.metrics[0].value
			}
			for name, want := range tc.want {
				if v, ok := got[name]; !ok || v != want {
					t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
				}
			}
			for name, v := range got {
				if _, ok := tc.want[name]; !ok {
					t.Errorf("%s = %v, want it left out", name, v)
				}
			}
		})
	}
}
