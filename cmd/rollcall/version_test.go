package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"runtime/debug"
	"testing"
)

func TestDescribeBuild(t *testing.T) {
	settings := func(kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/rollcall/rollcall", Version: "(devel)"}}
		for i := 0; i+1 < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	tests := []struct {
		name                     string
		ver, rev, built, goarch  string
		bi                       *debug.BuildInfo
		want                     string
		wantARM, wantRev, wantAt string
	}{
		{
			name: "stamped ARMv6 release",
			ver:  "1.2.0", rev: "3f2a1c9", built: "2025-06-01T12:00:00Z", goarch: "arm",
			bi:      settings("GOARCH", "arm", "GOARM", "6", "vcs.revision", "ffffff"),
			want:    "rollcall 1.2.0 (commit 3f2a1c9, built 2025-06-01T12:00:00Z, go1.26.8, linux/arm GOARM=6)",
			wantARM: "6", wantRev: "3f2a1c9", wantAt: "2025-06-01T12:00:00Z",
		},
		{
			name: "amd64 has no GOARM",
			ver:  "1.2.0", rev: "3f2a1c9", built: "2025-06-01T12:00:00Z", goarch: "amd64",
			bi:      settings("GOARCH", "amd64", "GOAMD64", "v1"),
			want:    "rollcall 1.2.0 (commit 3f2a1c9, built 2025-06-01T12:00:00Z, go1.26.8, linux/amd64)",
			wantRev: "3f2a1c9", wantAt: "2025-06-01T12:00:00Z",
		},
		{
			name: "unstamped build takes the VCS revision and time",
			ver:  "dev", goarch: "arm64",
			bi:      settings("vcs.revision", "0123abcd", "vcs.time", "2025-05-30T08:00:00Z"),
			want:    "rollcall dev (commit 0123abcd, built 2025-05-30T08:00:00Z, go1.26.8, linux/arm64)",
			wantRev: "0123abcd", wantAt: "2025-05-30T08:00:00Z",
		},
		{
			name: "go install of a tagged module",
			ver:  "dev", goarch: "arm64",
			bi:   &debug.BuildInfo{Main: debug.Module{Version: "v1.3.0"}},
			want: "rollcall v1.3.0 (commit unknown, built unknown, go1.26.8, linux/arm64)",
		},
		{
			name: "no build information at all",
			ver:  "dev", goarch: "arm",
			want: "rollcall dev (commit unknown, built unknown, go1.26.8, linux/arm)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := describeBuild(tt.ver, tt.rev, tt.built, "go1.26.8", "linux", tt.goarch, tt.bi)
			if got := b.String(); got != tt.want {
				t.Errorf("String()\n got %q\nwant %q", got, tt.want)
			}
			if b.ARM != tt.wantARM || b.Commit != tt.wantRev || b.Date != tt.wantAt {
				t.Errorf("got goarm %q commit %q date %q, want %q %q %q", b.ARM, b.Commit, b.Date, tt.wantARM, tt.wantRev, tt.wantAt)
			}
		})
	}
}

// lineFormat is the documented shape of `rollcall version`.
var lineFormat = regexp.MustCompile(`^rollcall \S+ \(commit \S+, built \S+, go\S+, linux/[a-z0-9]+( GOARM=[5-7])?\)\n$`)

func TestVersionCmd(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "text", args: []string{"version"}},
		{name: "json", args: []string{"version", "--json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Through the root command, so this also checks that `rollcall
			// version` is wired to this implementation.
			root := newRootCmd()
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetArgs(tt.args)
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			want := currentBuild()
			if tt.name == "text" {
				if !lineFormat.MatchString(out.String()) {
					t.Errorf("version line %q does not match %s", out.String(), lineFormat)
				}
				if out.String() != want.String()+"\n" {
					t.Errorf("got %q, want %q", out.String(), want.String()+"\n")
				}
				return
			}
			if n := bytes.Count(out.Bytes(), []byte("\n")); n != 1 {
				t.Errorf("--json printed %d lines, want one object on one line:\n%s", n, out.String())
			}
			var got buildInfo
			dec := json.NewDecoder(&out)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("--json: %v", err)
			}
			if got != want {
				t.Errorf("--json decoded to %+v, want %+v", got, want)
			}
			if got.Version == "" || got.Go == "" || got.OS == "" || got.Arch == "" {
				t.Errorf("--json left a field empty: %+v", got)
			}
		})
	}
}
