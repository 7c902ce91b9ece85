package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is Oak's release, set at link time with
// -ldflags '-X main.version=1.2.3'; the module version when built with go
// install, "dev" otherwise.
var version = "dev"

// versionText is what oak version and oak --version print: the release,
// the git commit the binary was built from when the build recorded one,
// and the Go toolchain.
func versionText() string {
	v, commit := version, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if commit != "" && modified {
			commit += " (with uncommitted changes)"
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "oak version %s\n", v)
	if commit != "" {
		fmt.Fprintf(&b, "git commit: %s\n", commit)
	}
	fmt.Fprintf(&b, "go version: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return b.String()
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print oak's version, git commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), versionText())
			return err
		},
	}
}
