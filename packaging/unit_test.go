// Package packaging holds the systemd unit and the install script; this
// test checks them (systemd-analyze verify when available).
package packaging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// directives reads the unit's Key=Value lines (all values of a key).
func directives(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("smtpkit.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := make(map[string][]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("not a directive: %q", line)
		}
		out[k] = append(out[k], v)
	}
	return out
}

// TestUnitHardening pins the hardening the unit promises in
// docs/operations.md.
func TestUnitHardening(t *testing.T) {
	d := directives(t)
	want := []struct{ key, value string }{
		{"Type", "notify"},
		{"ExecStart", "/usr/local/bin/smtpkit serve -config /etc/smtpkit/smtpkit.toml"},
		{"ExecReload", "/bin/kill -HUP $MAINPID"},
		{"User", "smtpkit"},
		{"Group", "smtpkit"},
		{"ProtectSystem", "strict"},
		{"ReadWritePaths", "/var/lib/smtpkit"},
		{"AmbientCapabilities", "CAP_NET_BIND_SERVICE"},
		{"CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"},
		{"NoNewPrivileges", "yes"},
		{"PrivateTmp", "yes"},
		{"ProtectHome", "yes"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"SystemCallFilter", "@system-service"},
	}
	for _, w := range want {
		if got := d[w.key]; len(got) != 1 || got[0] != w.value {
			t.Errorf("%s = %q, want exactly %q", w.key, got, w.value)
		}
	}
}

// TestUnitVerifies runs systemd-analyze verify on the unit, with ExecStart
// pointing at a freshly built binary (verify checks that it exists).
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not available")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "smtpkit")
	build := exec.Command("go", "build", "-o", bin, "../cmd/smtpkit")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	unit, err := os.ReadFile("smtpkit.service")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "smtpkit.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/smtpkit", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestInstallScriptParses checks the shell syntax of install.sh (it is
// never run by the tests: it creates users and writes to /etc).
func TestInstallScriptParses(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	if out, err := exec.Command(sh, "-n", "install.sh").CombinedOutput(); err != nil {
		t.Errorf("sh -n install.sh: %v\n%s", err, out)
	}
	fi, err := os.Stat("install.sh")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&0o111 == 0 {
		t.Error("install.sh is not executable")
	}
}
