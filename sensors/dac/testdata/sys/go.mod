// This go.mod keeps testdata out of the rollcall module's zip. The fake
// sysfs tree below has directories named like the kernel's,
// "iio:device0", and a module zip may not hold a ':' in a path: with
// them inside, "go install github.com/rollcall/rollcall/...@version" and
// the module proxy fail with "malformed file path ... invalid char ':'"
// (golang/go#26672, prometheus/node_exporter#2482). Tests read the files
// from the repository as usual.
module github.com/rollcall/rollcall/sensors/dac/testdata

go 1.26
