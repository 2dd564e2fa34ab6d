package userdb

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// logBuffer collects a store's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func loggedStore(t *testing.T) (*File, string, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	p := filepath.Join(t.TempDir(), "accounts.json")
	f, err := OpenOptions(p, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return f, p, logs
}

// TestFailedReloadIsLogged: a malformed file and one the server may not
// read each give one error line with the reason, while the old accounts
// stay in service; Reload (SIGHUP) logs the failure again; a good file is
// taken up and logged.
func TestFailedReloadIsLogged(t *testing.T) {
	f, p, logs := loggedStore(t)
	must(t, f.Add("alice@example.com", "pw"))
	for _, tc := range []struct {
		name   string
		break_ func()
		reason string
	}{
		{"malformed", func() { must(t, os.WriteFile(p, []byte("{not json"), 0o600)) }, "invalid character"},
		{"unknown field", func() { must(t, os.WriteFile(p, []byte(`{"version":1,"x":1}`), 0o600)) }, "unknown field"},
		{"not a file", func() { os.Remove(p); must(t, os.Mkdir(p, 0o700)) }, "is a directory"},
	} {
		before := strings.Count(logs.String(), "level=ERROR")
		tc.break_()
		for range 3 { // queries: the failure is logged once per version of the file
			if _, ok := f.Lookup("alice@example.com"); !ok {
				t.Fatalf("%s: the last good accounts are no longer served", tc.name)
			}
		}
		out := logs.String()
		if got := strings.Count(out, "level=ERROR") - before; got != 1 {
			t.Errorf("%s: %d error lines, want 1:\n%s", tc.name, got, out)
		}
		if !strings.Contains(out, "account store reload failed") || !strings.Contains(out, tc.reason) {
			t.Errorf("%s: log lacks the failure and its reason %q:\n%s", tc.name, tc.reason, out)
		}
		if err := f.Reload(); err == nil {
			t.Errorf("%s: Reload reported no error", tc.name)
		}
		if got := strings.Count(logs.String(), "level=ERROR") - before; got != 2 {
			t.Errorf("%s: Reload (SIGHUP) did not log the failure again", tc.name)
		}
		os.RemoveAll(p)
	}
	must(t, f.Add("bob@example.com", "pw")) // the file is missing: a new one
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "account store reloaded") {
		t.Errorf("a good reload is not logged:\n%s", logs.String())
	}
}

// TestUnreadableFileIsLogged: a file the process may not open (EACCES, as
// for a server user facing a root-owned 0600 file) is a logged failure.
// Root opens any file, so this runs only unprivileged.
func TestUnreadableFileIsLogged(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads mode-0 files; TestFailedReloadIsLogged covers the logging")
	}
	f, p, logs := loggedStore(t)
	must(t, f.Add("alice@example.com", "pw"))
	must(t, os.Chmod(p, 0))
	if _, ok := f.Lookup("alice@example.com"); !ok {
		t.Fatal("last good accounts lost")
	}
	if !strings.Contains(logs.String(), "permission denied") {
		t.Errorf("unreadable file not logged:\n%s", logs.String())
	}
}

func fileOwner(t *testing.T, p string) (uid, gid uint32, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	must(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid, fi.Mode().Perm()
}

// TestWriteKeepsOwnerAndMode: a change keeps the file's owner, group and
// mode; a new file gets its directory's owner with mode 0600. Needs root
// to hand files to another uid.
func TestWriteKeepsOwnerAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	const uid, gid = 65534, 65533
	f, p := newStore(t)
	must(t, f.Add("alice@example.com", "pw"))
	must(t, os.Chown(p, uid, gid))
	must(t, os.Chmod(p, 0o640))
	must(t, f.Add("bob@example.com", "pw"))
	if u, g, m := fileOwner(t, p); u != uid || g != gid || m != 0o640 {
		t.Errorf("after a change: uid %d gid %d mode %o, want %d %d 640", u, g, m, uid, gid)
	}
	if _, ok := f.Lookup("bob@example.com"); !ok {
		t.Error("change lost")
	}

	dir := filepath.Join(t.TempDir(), "data")
	must(t, os.Mkdir(dir, 0o700))
	must(t, os.Chown(dir, uid, gid))
	g, err := Open(filepath.Join(dir, "accounts.json"))
	must(t, err)
	must(t, g.Add("alice@example.com", "pw"))
	for _, name := range []string{"accounts.json", "accounts.json.lock"} {
		if u, gg, m := fileOwner(t, filepath.Join(dir, name)); u != uid || gg != gid || m != 0o600 {
			t.Errorf("new %s: uid %d gid %d mode %o, want %d %d 600", name, u, gg, m, uid, gid)
		}
	}
}

// TestSecretPersists: LoadSecret creates the secret once (mode 0600) and
// returns the same value afterwards; a damaged file is an error.
func TestSecretPersists(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secret")
	a, err := LoadSecret(p)
	must(t, err)
	b, err := LoadSecret(p)
	must(t, err)
	if !bytes.Equal(a, b) || len(a) != secretLen {
		t.Fatalf("secret %x, then %x", a, b)
	}
	if _, _, m := fileOwner(t, p); m != 0o600 {
		t.Errorf("secret mode %o, want 600", m)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("directory holds %v", entries)
	}
	must(t, os.WriteFile(p, []byte("short\n"), 0o600))
	if _, err := LoadSecret(p); err == nil {
		t.Error("damaged secret accepted")
	}
	// Concurrent first starts agree on one secret.
	q := filepath.Join(t.TempDir(), "secret")
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], _ = LoadSecret(q) }()
	}
	wg.Wait()
	for _, s := range got {
		if !bytes.Equal(s, got[0]) || len(s) != secretLen {
			t.Fatalf("concurrent LoadSecret disagree: %x", got)
		}
	}
}

// TestScramDecoy: the decoy is stable per name (also across instances
// with the same secret, i.e. restarts), normalised like account names,
// different per name and per secret, and shaped like an account's keys.
func TestScramDecoy(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, secretLen)
	p := filepath.Join(t.TempDir(), "accounts.json")
	f, err := OpenOptions(p, Options{Secret: secret})
	must(t, err)
	must(t, f.Add("alice@example.com", "pw"))
	restarted, err := OpenOptions(p, Options{Secret: secret})
	must(t, err)
	other, err := OpenOptions(p, Options{Secret: bytes.Repeat([]byte{8}, secretLen)})
	must(t, err)
	s1, i1 := f.ScramDecoy("nobody@example.com")
	s2, i2 := restarted.ScramDecoy(" Nobody@Example.COM")
	s3, _ := f.ScramDecoy("somebody@example.com")
	s4, _ := other.ScramDecoy("nobody@example.com")
	acct, _ := f.Lookup("alice@example.com")
	if !bytes.Equal(s1, s2) || i1 != i2 {
		t.Errorf("decoy not stable: %x/%d, %x/%d", s1, i1, s2, i2)
	}
	if bytes.Equal(s1, s3) || bytes.Equal(s1, s4) {
		t.Error("decoy does not depend on the name and the secret")
	}
	if len(s1) != len(acct.Scram.Salt) || i1 != acct.Scram.Iterations {
		t.Errorf("decoy %d-byte salt, %d iterations; account %d, %d", len(s1), i1, len(acct.Scram.Salt), acct.Scram.Iterations)
	}
}

// TestHashSlots: no more than MaxHashes argon2id computations run at once,
// the others wait, and a wait that outlives its context ends with ErrBusy
// (not ErrBadCredentials) without computing anything.
func TestHashSlots(t *testing.T) {
	p := filepath.Join(t.TempDir(), "accounts.json")
	f, err := OpenOptions(p, Options{MaxHashes: 2})
	must(t, err)
	// Take both slots, as two running computations would.
	r1, _ := f.hashSlot(context.Background())
	r2, _ := f.hashSlot(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := f.Authenticate(ctx, "nobody@example.com", "pw"); !errors.Is(err, ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Authenticate with every slot taken: %v, want ErrBusy", err)
	}
	r1()
	r2()
	// Now count how many run at once among many concurrent logins.
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := f.hashSlot(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			n := running.Add(1)
			for cur := peak.Load(); n > cur && !peak.CompareAndSwap(cur, n); cur = peak.Load() {
			}
			dummyWork("pw")
			running.Add(-1)
			release()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 2 || p < 1 {
		t.Errorf("%d hash computations ran at once, want at most 2", p)
	}
	if n := hashSlots(0); n < 1 {
		t.Errorf("default slots %d", n)
	}
}
