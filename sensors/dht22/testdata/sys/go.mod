// A go.mod here makes this fake sysfs tree a module of its own, so the
// files below, whose paths contain ':' as /sys/bus/iio/devices does, are
// left out of rollcall's module zip: the go command refuses to build a
// zip holding such a path, which would break go install of rollcall.
module sysfs-fixture
