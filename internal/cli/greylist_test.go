package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckGreylist: the summary shows [greylist] when it is on,
// and nothing of it when it is off.
func TestConfigCheckGreylist(t *testing.T) {
	const head = "hostname = \"mail.example.com\"\ndata_dir = \"/srv/smtpkit\"\n[tls]\nself_signed = true\n[[domain]]\nname = \"example.com\"\n"
	for _, tc := range []struct {
		name, toml, want string
	}{
		{"on", "[greylist]\nenabled = true\ndelay = \"2m\"\n",
			"greylist      delay 2m, retry window 2d, expire 35d, at most 100000 triplets in /srv/smtpkit/greylist\n"},
		{"off", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "greylist.toml")
			if err := os.WriteFile(path, []byte(head+tc.toml), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runConfigCmd("check", path)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if got := strings.Contains(out, "greylist "); got != (tc.want != "") || tc.want != "" && !strings.Contains(out, tc.want) {
				t.Errorf("summary:\n%s\nwant the line %q", out, tc.want)
			}
		})
	}
}
