// Command rollcall runs a self-describing Raspberry Pi cluster: the agent on
// every host, and the commands that read and drive the cluster from any
// host.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/rollcall/rollcall/agent"
	"github.com/rollcall/rollcall/agent/session"
)

// Exit statuses, documented in the README.
const (
	exitOK         = 0
	exitError      = 1  // anything else: a bad configuration file, an internal error
	exitIncomplete = 2  // the cluster said no: hosts missing from a sweep, a request refused
	exitBroker     = 3  // the broker cannot be reached, or refuses this client
	exitUsage      = 64 // a command line that makes no sense (EX_USAGE)
	exitSignal     = 130
)

func main() {
	// One version everywhere: the description's "rollcall" field and
	// rollcall_build_info say what `rollcall version` says.
	agent.Version = currentBuild().Version
	err := newRootCmd().Execute()
	code := exitCode(err)
	if err != nil && code != exitSignal {
		fmt.Fprintf(os.Stderr, "rollcall: %v\n", err)
	}
	os.Exit(code)
}

// statusError carries a process exit status.
type statusError struct {
	code int
	err  error
}

func (e statusError) Error() string { return e.err.Error() }
func (e statusError) Unwrap() error { return e.err }

func usageError(err error) error { return statusError{exitUsage, err} }

func exitCode(err error) int {
	var se statusError
	var ce *session.ConnectError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled) && interrupted():
		return exitSignal
	case errors.As(err, &se):
		return se.code
	case errors.As(err, &ce):
		return exitBroker
	}
	return exitError
}
