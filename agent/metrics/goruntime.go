package metrics

import (
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"
)

// The Go runtime's metrics, under the names, HELP and types that
// Prometheus's Go client (client_golang's default Go collector) gives
// them, so that dashboards and alerts written for any Go program work
// unchanged. The memstats figures are read from runtime/metrics, as the
// client reads them, not from runtime.ReadMemStats, which stops the
// world.

var (
	goGoroutines = newDesc("go_goroutines", "Number of goroutines that currently exist.", gaugeKind)
	goThreads    = newDesc("go_threads", "Number of OS threads created.", gaugeKind)
	goGCDuration = newDesc("go_gc_duration_seconds",
		"A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", summaryKind)
	goLastGC = newDesc("go_memstats_last_gc_time_seconds",
		"Number of seconds since 1970 of last garbage collection.", gaugeKind)
	goInfo = newDesc("go_info", "Information about the Go environment.", gaugeKind, "version")
)

// runtime/metrics names read at every scrape.
const (
	rmTinyAllocs    = "/gc/heap/tiny/allocs:objects"
	rmAllocs        = "/gc/heap/allocs:objects"
	rmFrees         = "/gc/heap/frees:objects"
	rmAllocBytes    = "/gc/heap/allocs:bytes"
	rmObjects       = "/gc/heap/objects:objects"
	rmGoal          = "/gc/heap/goal:bytes"
	rmTotal         = "/memory/classes/total:bytes"
	rmHeapObjects   = "/memory/classes/heap/objects:bytes"
	rmHeapUnused    = "/memory/classes/heap/unused:bytes"
	rmHeapReleased  = "/memory/classes/heap/released:bytes"
	rmHeapFree      = "/memory/classes/heap/free:bytes"
	rmHeapStacks    = "/memory/classes/heap/stacks:bytes"
	rmOSStacks      = "/memory/classes/os-stacks:bytes"
	rmMSpanInuse    = "/memory/classes/metadata/mspan/inuse:bytes"
	rmMSpanFree     = "/memory/classes/metadata/mspan/free:bytes"
	rmMCacheInuse   = "/memory/classes/metadata/mcache/inuse:bytes"
	rmMCacheFree    = "/memory/classes/metadata/mcache/free:bytes"
	rmBuckets       = "/memory/classes/profiling/buckets:bytes"
	rmMetadataOther = "/memory/classes/metadata/other:bytes"
	rmOther         = "/memory/classes/other:bytes"
	rmGOGC          = "/gc/gogc:percent"
	rmGOMEMLIMIT    = "/gc/gomemlimit:bytes"
	rmGOMAXPROCS    = "/sched/gomaxprocs:threads"
)

var rmNames = []string{
	rmTinyAllocs, rmAllocs, rmFrees, rmAllocBytes, rmObjects, rmGoal, rmTotal,
	rmHeapObjects, rmHeapUnused, rmHeapReleased, rmHeapFree, rmHeapStacks, rmOSStacks,
	rmMSpanInuse, rmMSpanFree, rmMCacheInuse, rmMCacheFree, rmBuckets, rmMetadataOther, rmOther,
	rmGOGC, rmGOMEMLIMIT, rmGOMAXPROCS,
}

// A memstat is one of the go_memstats_* gauges and counters, computed
// from runtime/metrics samples the way MemStats's field of that name is.
type memstat struct {
	d   *desc
	val func(rm func(string) uint64) uint64
}

func sum(names ...string) func(func(string) uint64) uint64 {
	return func(rm func(string) uint64) uint64 {
		var n uint64
		for _, name := range names {
			n += rm(name)
		}
		return n
	}
}

var memstats = []memstat{
	{newDesc("go_memstats_alloc_bytes",
		"Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.", gaugeKind),
		sum(rmHeapObjects)},
	{newDesc("go_memstats_alloc_bytes_total",
		"Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.", counterKind),
		sum(rmAllocBytes)},
	{newDesc("go_memstats_sys_bytes",
		"Number of bytes obtained from system. Equals to /memory/classes/total:byte.", gaugeKind),
		sum(rmTotal)},
	{newDesc("go_memstats_mallocs_total",
		"Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects.", counterKind),
		sum(rmAllocs, rmTinyAllocs)},
	{newDesc("go_memstats_frees_total",
		"Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects.", counterKind),
		sum(rmFrees, rmTinyAllocs)},
	{newDesc("go_memstats_heap_alloc_bytes",
		"Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.", gaugeKind),
		sum(rmHeapObjects)},
	{newDesc("go_memstats_heap_sys_bytes",
		"Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", gaugeKind),
		sum(rmHeapObjects, rmHeapUnused, rmHeapReleased, rmHeapFree)},
	{newDesc("go_memstats_heap_idle_bytes",
		"Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", gaugeKind),
		sum(rmHeapReleased, rmHeapFree)},
	{newDesc("go_memstats_heap_inuse_bytes",
		"Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes", gaugeKind),
		sum(rmHeapObjects, rmHeapUnused)},
	{newDesc("go_memstats_heap_released_bytes",
		"Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes.", gaugeKind),
		sum(rmHeapReleased)},
	{newDesc("go_memstats_heap_objects",
		"Number of currently allocated objects. Equals to /gc/heap/objects:objects.", gaugeKind),
		sum(rmObjects)},
	{newDesc("go_memstats_stack_inuse_bytes",
		"Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.", gaugeKind),
		sum(rmHeapStacks)},
	{newDesc("go_memstats_stack_sys_bytes",
		"Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes.", gaugeKind),
		sum(rmHeapStacks, rmOSStacks)},
	{newDesc("go_memstats_mspan_inuse_bytes",
		"Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes.", gaugeKind),
		sum(rmMSpanInuse)},
	{newDesc("go_memstats_mspan_sys_bytes",
		"Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes.", gaugeKind),
		sum(rmMSpanInuse, rmMSpanFree)},
	{newDesc("go_memstats_mcache_inuse_bytes",
		"Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes.", gaugeKind),
		sum(rmMCacheInuse)},
	{newDesc("go_memstats_mcache_sys_bytes",
		"Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes.", gaugeKind),
		sum(rmMCacheInuse, rmMCacheFree)},
	{newDesc("go_memstats_buck_hash_sys_bytes",
		"Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes.", gaugeKind),
		sum(rmBuckets)},
	{newDesc("go_memstats_gc_sys_bytes",
		"Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes.", gaugeKind),
		sum(rmMetadataOther)},
	{newDesc("go_memstats_other_sys_bytes",
		"Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes.", gaugeKind),
		sum(rmOther)},
	{newDesc("go_memstats_next_gc_bytes",
		"Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.", gaugeKind),
		sum(rmGoal)},
}

// The runtime's settings, named as the client names a runtime/metrics
// metric (go_ and the path, the unit last) with the runtime's own
// description for HELP.
var goSettings = []struct {
	rm string
	d  *desc
}{
	{rmGOGC, newDesc("go_gc_gogc_percent", "", gaugeKind)},
	{rmGOMEMLIMIT, newDesc("go_gc_gomemlimit_bytes", "", gaugeKind)},
	{rmGOMAXPROCS, newDesc("go_sched_gomaxprocs_threads", "", gaugeKind)},
}

func init() {
	help := map[string]string{}
	for _, d := range rtmetrics.All() {
		help[d.Name] = d.Description
	}
	for _, s := range goSettings {
		s.d.help = help[s.rm] + " Sourced from " + s.rm + "."
	}
}

// goMetrics adds the Go runtime's metrics to s.
func goMetrics(s *scrape) {
	s.add(goGoroutines, float64(runtime.NumGoroutine()))
	threads, _ := runtime.ThreadCreateProfile(nil)
	s.add(goThreads, float64(threads))

	var gc debug.GCStats
	gc.PauseQuantiles = make([]time.Duration, 5) // minimum, quartiles, maximum
	debug.ReadGCStats(&gc)
	qs := make([]quantile, len(gc.PauseQuantiles))
	for i, p := range gc.PauseQuantiles {
		qs[i] = quantile{float64(i) / float64(len(qs)-1), p.Seconds()}
	}
	s.addSummary(goGCDuration, qs, gc.PauseTotal.Seconds(), uint64(gc.NumGC))
	s.add(goLastGC, float64(gc.LastGC.UnixNano())/1e9)
	s.add(goInfo, 1, runtime.Version())

	samples := make([]rtmetrics.Sample, len(rmNames))
	for i, name := range rmNames {
		samples[i].Name = name
	}
	rtmetrics.Read(samples)
	byName := make(map[string]uint64, len(samples))
	for _, sm := range samples {
		if sm.Value.Kind() == rtmetrics.KindUint64 {
			byName[sm.Name] = sm.Value.Uint64()
		}
	}
	rm := func(name string) uint64 { return byName[name] }
	for _, m := range memstats {
		s.add(m.d, float64(m.val(rm)))
	}
	for _, st := range goSettings {
		if v, ok := byName[st.rm]; ok {
			s.add(st.d, float64(v))
		}
	}
}
