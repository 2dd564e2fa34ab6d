package cli

// version.go: `smtpkit version` — the release set at build time, else what
// the Go toolchain recorded in the binary (the module version of `go
// install smtpkit@v…`, or the git revision of a checkout it was built in).

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Version is set at build time with -ldflags "-X smtpkit/internal/cli.Version=...";
// "dev" means not set: versionString then reads the build info.
var Version = "dev"

func runVersion(args []string, stdio Stdio) int {
	info, _ := debug.ReadBuildInfo()
	fmt.Fprintf(stdio.Out, "smtpkit %s\n", versionString(Version, info))
	return 0
}

// versionString is the version to print: set (not "dev") wins; else the
// module version when the binary was built from a module download, else
// "dev" with the git revision, its time and "modified" when the checkout
// had uncommitted changes (the vcs.* settings of `go build`), and the Go
// version.
func versionString(set string, info *debug.BuildInfo) string {
	if set != "dev" && set != "" {
		return set
	}
	if info == nil {
		return "dev (no build information)"
	}
	var rev, when string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if v := info.Main.Version; rev == "" && v != "" && v != "(devel)" {
		return v + " (" + info.GoVersion + ")" // built from a module download
	}
	var b strings.Builder
	b.WriteString("dev")
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		b.WriteString("-" + rev)
		if modified {
			b.WriteString("-modified")
		}
	}
	var notes []string
	if rev != "" && when != "" {
		notes = append(notes, "commit of "+when)
	}
	if rev == "" {
		notes = append(notes, "no git revision recorded")
	}
	notes = append(notes, info.GoVersion)
	return b.String() + " (" + strings.Join(notes, ", ") + ")"
}
