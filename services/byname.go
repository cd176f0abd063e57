package services

import "slices"

// Lists of named items, the way setups give them ("chips", "channels",
// "sensors"): merged and looked up by name.

// MergeByName returns cur with the items of patch merged in by name, as a
// setup with "merge": true asks: an item of cur with the name of one of
// patch is replaced by it, in its place; the other items of patch are
// added at the end, in their order. cur is not modified.
func MergeByName[T any](cur, patch []T, name func(T) string) []T {
	out := slices.Clone(cur)
	for _, p := range patch {
		if i := slices.IndexFunc(out, func(q T) bool { return name(q) == name(p) }); i >= 0 {
			out[i] = p
			continue
		}
		out = append(out, p)
	}
	return out
}

// Find returns the item of list called name and its index, or the zero T
// and -1 when there is none. The name "" is the first item: what a
// reference that names none (an ADC channel's chip) means.
func Find[T any](list []T, name string, nameOf func(T) string) (T, int) {
	var zero T
	if name == "" {
		if len(list) == 0 {
			return zero, -1
		}
		return list[0], 0
	}
	if i := slices.IndexFunc(list, func(it T) bool { return nameOf(it) == name }); i >= 0 {
		return list[i], i
	}
	return zero, -1
}
