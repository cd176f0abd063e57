// Command rollcall runs a self-describing Raspberry Pi cluster: the agent on
// every host, and the sweep and inventory commands that read the cluster
// from any host.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "rollcall: %v\n", err)
		os.Exit(exitCode(err))
	}
}

// exitError carries a process exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var e exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}
