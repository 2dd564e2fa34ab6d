package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckMilters: the summary names each milter with its
// address, timeout and default action, and the listeners it applies to
// (all mx and submission listeners unless a listener says otherwise).
func TestConfigCheckMilters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "milter.toml")
	src := `hostname = "mail.example.com"
[tls]
self_signed = true
[[domain]]
name = "example.com"
[[listener]]
address = ":25"
role = "mx"
[[listener]]
address = ":587"
role = "submission"
milters = ["clamav"]
[[milter]]
name = "rspamd"
address = "inet:127.0.0.1:11332"
[[milter]]
name = "clamav"
address = "unix:/run/clamav/clamav-milter.ctl"
timeout = "2m"
default_action = "accept"
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runConfigCmd("check", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"milter        rspamd at inet:127.0.0.1:11332 (timeout 30s, tempfail when down) on :25\n",
		"milter        clamav at unix:/run/clamav/clamav-milter.ctl (timeout 2m, accept when down) on :25, :587\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
