package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

var versionCmd = &command{
	name:    "version",
	summary: "print the version of sdactl and the Go version that built it",
	details: `Prints the module path and version recorded in the binary: a release tag, a
pseudo-version of the commit it was built from (with +dirty for uncommitted
changes), or "(devel)" when none is known; then the commit, when recorded,
and the Go version, operating system and architecture:
  sdactl github.com/securedeviceaccess/sda v1.2.3
  commit 0123456789abcdef0123456789abcdef01234567
  go1.26.0 linux/amd64
`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		return func(ctx context.Context, e *env, args []string) error {
			if err := wantArgs(args, 0, 0, ""); err != nil {
				return err
			}
			path, version, commit := "github.com/securedeviceaccess/sda", "(devel)", ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				if bi.Main.Path != "" {
					path = bi.Main.Path
				}
				if bi.Main.Version != "" {
					version = bi.Main.Version
				}
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						commit = s.Value
					}
				}
			}
			fmt.Fprintf(e.stdout, "sdactl %s %s\n", path, version)
			if commit != "" {
				fmt.Fprintf(e.stdout, "commit %s\n", commit)
			}
			_, err := fmt.Fprintf(e.stdout, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return ioErr(err)
		}
	},
}
