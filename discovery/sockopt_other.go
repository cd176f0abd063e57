//go:build !unix

package discovery

import "syscall"

// reuseBroadcast leaves the socket as it is: rollcall runs its agents on
// Linux, and elsewhere only one agent per machine can listen.
func reuseBroadcast(network, address string, c syscall.RawConn) error { return nil }
