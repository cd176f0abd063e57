package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version, commit and date are stamped by the release build (.ci/packages):
//
//	go build -ldflags "-X main.version=1.2.0 -X main.commit=3f2a1c9 -X main.date=2025-06-01T12:00:00Z"
//
// An unstamped build says "dev"; commit and date then come from the VCS
// information Go records when it can.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// buildInfo is what `rollcall version` reports: enough to tell which source,
// toolchain and target a binary on a Pi came from.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	// ARM is GOARM ("6" for a Pi Zero or 1), set only for GOARCH=arm: an
	// ARMv7 binary dies with SIGILL on an ARMv6 board.
	ARM string `json:"goarm,omitempty"`
}

// currentBuild describes the running binary.
func currentBuild() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH, bi)
}

// describeBuild merges the stamped values with what the toolchain recorded
// in bi (which may be nil): GOARM, and the VCS revision and time for builds
// nobody stamped.
func describeBuild(ver, rev, built, goVersion, goos, goarch string, bi *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: ver, Commit: rev, Date: built, Go: goVersion, OS: goos, Arch: goarch}
	if bi == nil {
		return b
	}
	if b.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version // go install github.com/rollcall/rollcall/cmd/rollcall@v1.2.0
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOARM":
			if goarch == "arm" {
				b.ARM = s.Value
			}
		case "vcs.revision":
			if b.Commit == "" {
				b.Commit = s.Value
			}
		case "vcs.time":
			if b.Date == "" {
				b.Date = s.Value
			}
		}
	}
	return b
}

// String is the one line `rollcall version` prints.
func (b buildInfo) String() string {
	target := b.OS + "/" + b.Arch
	if b.ARM != "" {
		target += " GOARM=" + b.ARM
	}
	return fmt.Sprintf("rollcall %s (commit %s, built %s, %s, %s)",
		b.Version, orUnknown(b.Commit), orUnknown(b.Date), b.Go, target)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print rollcall's version, commit, build date, Go version and target",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := currentBuild()
			if asJSON {
				// One object on one line, for scripts and fleet inventories.
				return json.NewEncoder(cmd.OutOrStdout()).Encode(b)
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), b)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the same as one JSON object")
	return cmd
}
