package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionString(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		out := []debug.BuildSetting{{Key: "CGO_ENABLED", Value: "0"}}
		for i := 0; i < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name string
		set  string
		info *debug.BuildInfo
		want string
	}{
		{"ldflags wins", "1.4.0", &debug.BuildInfo{GoVersion: "go1.26.8"}, "1.4.0"},
		{"no build info", "dev", nil, "dev (no build information)"},
		{"git checkout", "dev", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261202063000-f437d7b1a2b3"},
			Settings: vcs("vcs.revision", "f437d7b1a2b3c4d5e6f708192a3b4c5d6e7f8091", "vcs.time", "2026-12-02T06:30:00Z", "vcs.modified", "false")},
			"dev-f437d7b1a2b3 (commit of 2026-12-02T06:30:00Z, go1.26.8)"},
		{"modified checkout", "dev", &debug.BuildInfo{GoVersion: "go1.26.8",
			Settings: vcs("vcs.revision", "f437d7b1a2b3c4d5e6f708192a3b4c5d6e7f8091", "vcs.modified", "true")},
			"dev-f437d7b1a2b3-modified (go1.26.8)"},
		{"module download", "dev", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: vcs()}, "v1.2.3 (go1.26.8)"},
		{"go run, no vcs", "dev", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs()},
			"dev (no git revision recorded, go1.26.8)"},
	}
	for _, tt := range tests {
		if got := versionString(tt.set, tt.info); got != tt.want {
			t.Errorf("%s: versionString = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestVersionFromCheckout builds the binary in this git checkout, as an
// operator does, and checks that `smtpkit version` names HEAD's revision.
// -buildvcs=true because GOFLAGS may turn the stamping off.
func TestVersionFromCheckout(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err != nil || !fi.IsDir() {
		// The go command recognizes a checkout by its .git directory; a
		// `git worktree` has a .git file and gets no vcs.* settings.
		t.Skip("a git worktree: go build records no revision here")
	}
	bin := filepath.Join(t.TempDir(), "smtpkit")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "../../cmd/smtpkit").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "smtpkit dev-" + strings.TrimSpace(string(head))[:12]
	if !strings.HasPrefix(string(out), want) {
		t.Errorf("smtpkit version = %q, want it to begin with %q", out, want)
	}
}
