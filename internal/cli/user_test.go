package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"smtpkit/internal/userdb"
)

// userTestConfig writes a minimal config whose data_dir is a fresh temp dir
// (not created yet, so that `user add` must create it).
func userTestConfig(t *testing.T) (cfgFile, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	dataDir = filepath.Join(dir, "data")
	cfgFile = filepath.Join(dir, "smtpkit.toml")
	cfg := `hostname = "mx.example.com"
data_dir = "` + dataDir + `"

[[domain]]
name = "example.com"

[[listener]]
address = "127.0.0.1:0"
role = "mx"
tls = "none"
`
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgFile, dataDir
}

// runUserCmd runs `smtpkit user ARGS...` with stdin and returns the exit
// code, stdout and stderr.
func runUserCmd(stdin string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(append([]string{"user"}, args...), Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func openStore(t *testing.T, dataDir string) *userdb.File {
	t.Helper()
	f, err := userdb.Open(filepath.Join(dataDir, "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestUserAddAndPasswd(t *testing.T) {
	cfg, data := userTestConfig(t)
	if code, _, errs := runUserCmd("pw\n", "add", "-config", cfg, "A@Example.com"); code != 0 {
		t.Fatalf("add: exit %d: %s", code, errs)
	}
	fi, err := os.Stat(data)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v %v", fi, err)
	}
	store := openStore(t, data)
	if _, err := store.Authenticate(context.Background(), "a@example.com", "pw"); err != nil {
		t.Fatalf("stored password does not work: %v", err)
	}
	// Flags after the address work too; a last line without newline counts.
	if code, _, errs := runUserCmd("new pw", "passwd", "a@example.com", "-config", cfg); code != 0 {
		t.Fatalf("passwd: exit %d: %s", code, errs)
	}
	if _, err := store.Authenticate(context.Background(), "a@example.com", "new pw"); err != nil {
		t.Errorf("new password does not work: %v", err)
	}
	if _, err := store.Authenticate(context.Background(), "a@example.com", "pw"); err == nil {
		t.Error("old password still works")
	}
}

func TestUserAddFailures(t *testing.T) {
	cfg, data := userTestConfig(t)
	if code, _, errs := runUserCmd("pw\n", "add", "-config", cfg, "a@example.com"); code != 0 {
		t.Fatalf("add: %s", errs)
	}
	for _, tc := range []struct {
		name, stdin string
		args        []string
		code        int
		msg         string
	}{
		{"duplicate", "pw\n", []string{"add", "-config", cfg, "A@example.com"}, 1, "already exists"},
		{"foreign domain", "pw\n", []string{"add", "-config", cfg, "b@example.org"}, 1, "not a local domain"},
		{"bad address", "pw\n", []string{"add", "-config", cfg, "b"}, 1, "local@domain"},
		{"empty password", "\n", []string{"add", "-config", cfg, "b@example.com"}, 1, "empty password"},
		{"no stdin", "", []string{"add", "-config", cfg, "b@example.com"}, 1, "no password"},
		{"passwd unknown", "pw\n", []string{"passwd", "-config", cfg, "zz@example.com"}, 1, "no such"},
		{"del unknown", "", []string{"del", "-config", cfg, "zz@example.com"}, 1, "no such"},
		{"missing address", "", []string{"add", "-config", cfg}, 2, "usage"},
		{"two addresses", "", []string{"del", "-config", cfg, "a@example.com", "b@example.com"}, 2, "usage"},
		{"unknown flag", "", []string{"list", "-config", cfg, "-x"}, 2, "usage"},
		{"unknown subcommand", "", []string{"frobnicate"}, 2, "unknown subcommand"},
		{"no subcommand", "", nil, 2, "usage"},
		{"missing config", "", []string{"list", "-config", filepath.Join(data, "nope.toml")}, 1, "nope.toml"},
	} {
		code, _, errs := runUserCmd(tc.stdin, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%s: exit %d, stderr %q; want %d containing %q", tc.name, code, errs, tc.code, tc.msg)
		}
	}
	if got := len(openStore(t, data).List()); got != 1 {
		t.Errorf("store holds %d accounts after failures, want 1", got)
	}
}

func TestUserListAndDel(t *testing.T) {
	cfg, data := userTestConfig(t)
	for _, a := range []string{"bob@example.com", "alice@example.com"} {
		if code, _, errs := runUserCmd("pw\n", "add", "-config", cfg, a); code != 0 {
			t.Fatalf("add %s: %s", a, errs)
		}
	}
	code, out, _ := runUserCmd("", "list", "-config", cfg)
	if code != 0 || out != "alice@example.com\nbob@example.com\n" {
		t.Fatalf("list: exit %d, %q", code, out)
	}
	code, out, _ = runUserCmd("", "list", "--json", "-config", cfg)
	var entries []struct{ Address string }
	if code != 0 || json.Unmarshal([]byte(out), &entries) != nil || len(entries) != 2 || entries[0].Address != "alice@example.com" {
		t.Fatalf("list --json: exit %d, %q", code, out)
	}
	if strings.Contains(out, "argon2") {
		t.Error("list --json leaks password hashes")
	}
	if code, _, errs := runUserCmd("", "del", "-config", cfg, "Bob@example.com"); code != 0 {
		t.Fatalf("del: %s", errs)
	}
	if _, ok := openStore(t, data).Lookup("bob@example.com"); ok {
		t.Error("bob still there after del")
	}
}

func TestUserAlias(t *testing.T) {
	cfg, data := userTestConfig(t)
	if code, _, errs := runUserCmd("pw\n", "add", "-config", cfg, "alice@example.com"); code != 0 {
		t.Fatalf("add: %s", errs)
	}
	code, _, errs := runUserCmd("", "alias", "add", "-config", cfg, "info@example.com", "alice@example.com", "ext@remote.net", "ghost@example.com")
	if code != 0 {
		t.Fatalf("alias add: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "warning: ghost@example.com") {
		t.Errorf("no warning for a dangling local target: %q", errs)
	}
	got, ok := openStore(t, data).Resolve("info@example.com")
	if !ok || !slices.Equal(got, []string{"alice@example.com", "ext@remote.net", "ghost@example.com"}) {
		t.Errorf("Resolve(info) = %v, %v", got, ok)
	}
	code, out, _ := runUserCmd("", "alias", "list", "-config", cfg)
	if code != 0 || out != "info@example.com -> alice@example.com, ext@remote.net, ghost@example.com\n" {
		t.Errorf("alias list: exit %d, %q", code, out)
	}
	code, out, _ = runUserCmd("", "alias", "list", "-json", "-config", cfg)
	var m map[string][]string
	if code != 0 || json.Unmarshal([]byte(out), &m) != nil || len(m["info@example.com"]) != 3 {
		t.Errorf("alias list -json: exit %d, %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"alias", "add", "-config", cfg, "x@example.org", "alice@example.com"}, 1},
		{[]string{"alias", "add", "-config", cfg, "alice@example.com", "ext@remote.net"}, 1},
		{[]string{"alias", "add", "-config", cfg, "x@example.com"}, 2},
		{[]string{"alias", "del", "-config", cfg, "nope@example.com"}, 1},
		{[]string{"alias", "frob", "-config", cfg}, 2},
	} {
		if code, _, errs := runUserCmd("", tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, errs)
		}
	}
	if code, _, errs := runUserCmd("", "alias", "del", "-config", cfg, "INFO@example.com"); code != 0 {
		t.Fatalf("alias del: %s", errs)
	}
	if _, ok := openStore(t, data).Resolve("info@example.com"); ok {
		t.Error("alias still resolves after del")
	}
}

func TestUserHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"add", "-h"}} {
		code, _, errs := runUserCmd("", args...)
		if code != 0 || !strings.Contains(errs, "usage") && !strings.Contains(errs, "-config") {
			t.Errorf("%v: exit %d, %q", args, code, errs)
		}
	}
}

// TestUserKeepsOwnerAndMode: `smtpkit user add` run as root keeps the
// accounts file's owner, group and mode (here nobody's, 0640), so the
// server running as that user can still read it; a store created by root
// in a data directory owned by the server's user belongs to that user.
// Before, the file was replaced by a root-owned 0600 one.
func TestUserKeepsOwnerAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to hand files to another uid")
	}
	const uid, gid = 65534, 65534
	cfg, data := userTestConfig(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(data, 0o700))
	must(os.Chown(data, uid, gid))
	if code, _, errs := runUserCmd("pw\n", "add", "-config", cfg, "a@example.com"); code != 0 {
		t.Fatalf("add: exit %d: %s", code, errs)
	}
	p := filepath.Join(data, "accounts.json")
	check := func(when string, mode os.FileMode) {
		t.Helper()
		fi, err := os.Stat(p)
		must(err)
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid || fi.Mode().Perm() != mode {
			t.Errorf("%s: uid %d gid %d mode %o, want %d %d %o", when, st.Uid, st.Gid, fi.Mode().Perm(), uid, gid, mode)
		}
	}
	check("new store", 0o600)
	must(os.Chmod(p, 0o640))
	for _, args := range [][]string{{"add", "b@example.com"}, {"passwd", "a@example.com"}, {"alias", "add", "x@example.com", "a@example.com"}, {"del", "b@example.com"}} {
		if code, _, errs := runUserCmd("pw2\n", append(args, "-config", cfg)...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		check(strings.Join(args, " "), 0o640)
	}
}

// TestUserAdmin: `user add --admin` marks the account admin in the
// accounts file, `user list` shows it (text and JSON), `user admin` changes
// it, and a password change keeps it.
func TestUserAdmin(t *testing.T) {
	cfg, data := userTestConfig(t)
	if code, _, errs := runUserCmd("pw\n", "add", "--admin", "-config", cfg, "root@example.com"); code != 0 || !strings.Contains(errs, "(admin)") {
		t.Fatalf("add --admin: exit %d: %s", code, errs)
	}
	if code, _, errs := runUserCmd("pw\n", "add", "-config", cfg, "alice@example.com"); code != 0 {
		t.Fatalf("add: exit %d: %s", code, errs)
	}
	if code, out, _ := runUserCmd("", "list", "-config", cfg); code != 0 || out != "alice@example.com\nroot@example.com admin\n" {
		t.Errorf("list: exit %d:\n%s", code, out)
	}
	if code, _, errs := runUserCmd("other\n", "passwd", "-config", cfg, "root@example.com"); code != 0 {
		t.Fatalf("passwd: exit %d: %s", code, errs)
	}
	if code, _, errs := runUserCmd("", "admin", "-config", cfg, "alice@example.com", "yes"); code != 0 {
		t.Fatalf("admin yes: exit %d: %s", code, errs)
	}
	if code, _, errs := runUserCmd("", "admin", "-config", cfg, "alice@example.com", "maybe"); code != 1 {
		t.Errorf("admin maybe: exit %d: %s", code, errs)
	}
	code, out, _ := runUserCmd("", "list", "-json", "-config", cfg)
	var got []struct {
		Address string `json:"address"`
		Admin   bool   `json:"admin"`
	}
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
		t.Fatalf("list -json: exit %d, %v:\n%s", code, err, out)
	}
	if len(got) != 2 || !got[0].Admin || !got[1].Admin {
		t.Errorf("list -json: %+v, want both admin", got)
	}
	a, _ := openStore(t, data).Lookup("root@example.com")
	if !a.Admin {
		t.Error("passwd lost the admin mark")
	}
}
