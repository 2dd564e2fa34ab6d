package cli

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smtpkit/internal/config"
)

// TestResolveConfigEnv: -config, else SMTPKIT_CONFIG, else the system
// file or the development default, which is said with its absolute data
// directory (issue #19).
func TestResolveConfigEnv(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "smtpkit.toml")
	other := filepath.Join(dir, "other.toml")
	for _, f := range []struct{ path, host string }{{file, "env.example.com"}, {other, "flag.example.com"}} {
		src := "hostname = \"" + f.host + "\"\ndata_dir = \"" + dir + "\"\n[[domain]]\nname = \"example.com\"\n" +
			"[[listener]]\naddress = \"127.17.5.1:0\"\nrole = \"mx\"\ntls = \"none\"\n"
		if err := os.WriteFile(f.path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == ConfigEnv {
				return v
			}
			return ""
		}
	}
	var notes bytes.Buffer
	cfg, source, err := resolveConfigEnv("", env(file), &notes)
	if err != nil || source != file || cfg.Hostname != "env.example.com" || notes.Len() != 0 {
		t.Errorf("SMTPKIT_CONFIG: %q %q %v, notes %q", cfg.Hostname, source, err, notes.String())
	}
	cfg, source, err = resolveConfigEnv(other, env(file), &notes)
	if err != nil || source != other || cfg.Hostname != "flag.example.com" {
		t.Errorf("-config over SMTPKIT_CONFIG: %q %q %v", cfg.Hostname, source, err)
	}
	if _, _, err := resolveConfigEnv("", env(filepath.Join(dir, "missing.toml")), &notes); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SMTPKIT_CONFIG naming a missing file: %v, want an error", err)
	}

	if _, err := os.Stat(config.DefaultPath); err == nil {
		t.Skipf("%s exists on this machine: the development default is not used", config.DefaultPath)
	}
	t.Chdir(dir)
	cfg, source, err = resolveConfigEnv("", env(""), &notes)
	if err != nil || source != config.DevDefaultSource {
		t.Fatalf("no file: %q %v", source, err)
	}
	want := "data dir " + filepath.Join(dir, cfg.DataDir) + "\n"
	if !strings.HasSuffix(notes.String(), want) || !strings.Contains(notes.String(), ConfigEnv) {
		t.Errorf("note = %q, want it to name %s and end with %q", notes.String(), ConfigEnv, want)
	}
}

// TestUserListSaysDataDir: `smtpkit user list` on the development
// default, from a directory without smtpkit-data, says which data
// directory it read instead of printing nothing.
func TestUserListSaysDataDir(t *testing.T) {
	if _, err := os.Stat(config.DefaultPath); err == nil {
		t.Skipf("%s exists on this machine", config.DefaultPath)
	}
	t.Setenv(ConfigEnv, "")
	dir := t.TempDir()
	t.Chdir(dir)
	code, _, stderr := runUserCmd("", "list")
	if code != 0 || !strings.Contains(stderr, "data dir "+filepath.Join(dir, "smtpkit-data")) {
		t.Errorf("user list: exit %d, stderr %q", code, stderr)
	}
}
