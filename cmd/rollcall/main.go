// Command rollcall runs a self-describing Raspberry Pi cluster: the agent on
// every host, and the sweep and inventory commands that read the cluster
// from any host.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "rollcall: %v\n", err)
		os.Exit(exitCode(err))
	}
}
