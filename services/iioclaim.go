package services

import "strings"

// IIOClaim holds a kernel IIO device alone, named in a configuration by
// its directory ("iio:device0") or by its driver's name ("mcp3008"). The
// two spellings of one device are not told apart: a claim holds the name
// as given, prefixed "iio:" where it is not already.
func IIOClaim(field, device string) Claim {
	if !strings.HasPrefix(device, "iio:") {
		device = "iio:" + device
	}
	return ResourceClaim(field, device)
}
