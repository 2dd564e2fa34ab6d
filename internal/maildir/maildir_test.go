package maildir

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"smtpkit/internal/vfs"
)

func mustCreate(t testing.TB, path string) Dir {
	t.Helper()
	d, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// entries lists the names in dir (sorted by os.ReadDir).
func entries(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestCreate(t *testing.T) {
	root := filepath.Join(t.TempDir(), "mail", "example.com", "alice")
	d := mustCreate(t, root)
	if d.Path != root {
		t.Fatalf("Path = %q", d.Path)
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		fi, err := os.Stat(filepath.Join(root, sub))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v", sub, fi.Mode())
		}
	}
	// Idempotent, and existing content is kept.
	if err := os.WriteFile(filepath.Join(root, "cur", "x"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, root)
	if got := entries(t, filepath.Join(root, "cur")); len(got) != 1 {
		t.Fatalf("cur after second Create: %v", got)
	}
	if _, err := Create(""); err == nil {
		t.Fatal("Create(\"\") succeeded")
	}
}

var nameRE = regexp.MustCompile(`^(\d+)\.M(\d+)P(\d+)Q(\d+)\.([^/:,]+),S=(\d+)$`)

func TestCommitSeveralDirs(t *testing.T) {
	for _, mode := range []Sync{SyncFileSystem, SyncFile} {
		for _, named := range []bool{false, true} {
			t.Run(fmt.Sprintf("sync=%v/named=%v", mode, named), func(t *testing.T) { testCommitSeveralDirs(t, mode, named) })
		}
	}
}

func testCommitSeveralDirs(t *testing.T, mode Sync, named bool) {
	base := t.TempDir()
	spool := mustCreate(t, filepath.Join(base, "spool"))
	var dirs []Dir
	for _, u := range []string{"alice", "bob", "carol"} {
		dirs = append(dirs, mustCreate(t, filepath.Join(base, u)))
	}
	msg := bytes.Repeat([]byte("Subject: hi\r\n\r\nbody line\r\n"), 5000) // > 64 KiB
	writer := NewWriter(nil)
	writer.namedTmp = named
	writer.SetSync(mode)
	d, err := writer.NewMessage(spool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write(msg[:1000]); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write(msg[1000:]); err != nil {
		t.Fatal(err)
	}
	if d.Size() != int64(len(msg)) {
		t.Fatalf("Size = %d, want %d", d.Size(), len(msg))
	}
	paths, err := d.Commit(dirs)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(dirs) {
		t.Fatalf("got %d paths", len(paths))
	}
	for i, p := range paths {
		if filepath.Dir(p) != filepath.Join(dirs[i].Path, "new") {
			t.Errorf("path %q not in %s/new", p, dirs[i].Path)
		}
		m := nameRE.FindStringSubmatch(filepath.Base(p))
		if m == nil {
			t.Fatalf("name %q does not follow the convention", filepath.Base(p))
		}
		if m[3] != fmt.Sprint(os.Getpid()) || m[6] != fmt.Sprint(len(msg)) {
			t.Errorf("name %q: wrong pid or size", filepath.Base(p))
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Errorf("%s: content differs", p)
		}
		if n := entries(t, filepath.Join(dirs[i].Path, "tmp")); len(n) != 0 {
			t.Errorf("%s/tmp not empty: %v", dirs[i].Path, n)
		}
	}
	if n := entries(t, filepath.Join(spool.Path, "tmp")); len(n) != 0 {
		t.Errorf("spool tmp not empty after commit: %v", n)
	}
	// Finished: further use fails, Abort stays harmless.
	if _, err := d.Write([]byte("x")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if _, err := d.Commit(dirs); err == nil {
		t.Error("second Commit succeeded")
	}
	d.Abort()
	d.Abort()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("Abort after Commit removed %s: %v", p, err)
		}
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("named=%v", named), func(t *testing.T) { testAbortLeavesNothing(t, named) })
	}
}

func testAbortLeavesNothing(t *testing.T, named bool) {
	dir := mustCreate(t, t.TempDir())
	n := NewWriter(nil)
	n.namedTmp = named
	d, err := n.NewMessage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write([]byte("hello\r\n")); err != nil {
		t.Fatal(err)
	}
	want := 0 // an O_TMPFILE file has no name
	if named || d.tmpPath != "" {
		want = 1
	}
	if n := entries(t, filepath.Join(dir.Path, "tmp")); len(n) != want {
		t.Fatalf("tmp holds %v during delivery, want %d files", n, want)
	}
	d.Abort()
	d.Abort()
	for _, sub := range []string{"tmp", "new", "cur"} {
		if n := entries(t, filepath.Join(dir.Path, sub)); len(n) != 0 {
			t.Errorf("%s not empty after Abort: %v", sub, n)
		}
	}
	if _, err := d.Commit([]Dir{dir}); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

func TestCommitNoDirs(t *testing.T) {
	dir := mustCreate(t, t.TempDir())
	d, err := NewMessage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Commit(nil); err == nil {
		t.Fatal("Commit(nil) succeeded")
	}
	if n := entries(t, filepath.Join(dir.Path, "tmp")); len(n) != 0 {
		t.Errorf("tmp not empty: %v", n)
	}
}

// breakers make one destination Maildir unusable in different ways.
var breakers = map[string]func(t *testing.T, d Dir){
	"new is a file": func(t *testing.T, d Dir) {
		p := filepath.Join(d.Path, "new")
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	},
	"missing maildir": func(t *testing.T, d Dir) {
		if err := os.RemoveAll(d.Path); err != nil {
			t.Fatal(err)
		}
	},
	"read-only new": func(t *testing.T, d Dir) {
		if os.Geteuid() == 0 {
			t.Skip("root ignores directory permissions; the other cases cover rollback")
		}
		if err := os.Chmod(filepath.Join(d.Path, "new"), 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(filepath.Join(d.Path, "new"), 0o700) })
	},
}

func TestCommitRollsBack(t *testing.T) {
	for _, mode := range []Sync{SyncFileSystem, SyncFile} {
		for name, breakIt := range breakers {
			t.Run(mode.String()+"/"+name, func(t *testing.T) { testCommitRollsBack(t, mode, breakIt) })
		}
	}
}

func testCommitRollsBack(t *testing.T, mode Sync, breakIt func(*testing.T, Dir)) {
	base := t.TempDir()
	good1 := mustCreate(t, filepath.Join(base, "a"))
	bad := mustCreate(t, filepath.Join(base, "b"))
	good2 := mustCreate(t, filepath.Join(base, "c"))
	breakIt(t, bad)
	n := NewWriter(nil)
	n.SetSync(mode)
	d, err := n.NewMessage(good1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write([]byte("message\r\n")); err != nil {
		t.Fatal(err)
	}
	paths, err := d.Commit([]Dir{good1, bad, good2})
	if err == nil {
		t.Fatalf("Commit into a broken dir succeeded: %v", paths)
	}
	for _, g := range []Dir{good1, good2} {
		for _, sub := range []string{"tmp", "new"} {
			if n := entries(t, filepath.Join(g.Path, sub)); len(n) != 0 {
				t.Errorf("%s/%s not empty after rollback: %v", g.Path, sub, n)
			}
		}
	}
}

func TestUniqueNamesConcurrent(t *testing.T) {
	base := t.TempDir()
	spool := mustCreate(t, filepath.Join(base, "spool"))
	box := mustCreate(t, filepath.Join(base, "box"))
	// A frozen clock forces every name to differ by its counter alone.
	frozen := time.Unix(1700000000, 123456000)
	n := NewWriter(func() time.Time { return frozen })
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				d, err := n.NewMessage(spool)
				if err != nil {
					errs <- err
					return
				}
				fmt.Fprintf(d, "worker %d message %d\r\n", w, i)
				if _, err := d.Commit([]Dir{box}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := entries(t, filepath.Join(box.Path, "new")); len(got) != workers*each {
		t.Fatalf("new/ holds %d files, want %d", len(got), workers*each)
	}
}

// TestNameCollisionRetries uses two Writers with the same frozen clock, so
// their names collide; exclusive create and link must pick fresh names.
func TestNameCollisionRetries(t *testing.T) {
	dir := mustCreate(t, t.TempDir())
	frozen := time.Unix(1700000000, 0)
	clock := func() time.Time { return frozen }
	n1, n2 := NewWriter(clock), NewWriter(clock)
	var paths []string
	for _, n := range []*Writer{n1, n2} {
		d, err := n.NewMessage(dir)
		if err != nil {
			t.Fatal(err)
		}
		d.Write([]byte("x"))
		p, err := d.Commit([]Dir{dir})
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p...)
	}
	if paths[0] == paths[1] {
		t.Fatalf("same name twice: %s", paths[0])
	}
	if got := entries(t, filepath.Join(dir.Path, "new")); len(got) != 2 {
		t.Fatalf("new/ = %v", got)
	}
}

func TestSanitizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"mx.example.com": "mx.example.com",
		"a/b:c,d":        `a\057b\072c\054d`,
	} {
		if got := sanitizeHost(in); got != want {
			t.Errorf("sanitizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCopyFallback exercises the cross-device path directly, and through
// Commit when /dev/shm is on another file system than the test's temp dir.
func TestCopyFallback(t *testing.T) {
	src := mustCreate(t, t.TempDir())
	dst := mustCreate(t, t.TempDir())
	d, err := NewMessage(src)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Abort()
	d.Write([]byte("copied\r\n"))
	if err := d.finish(); err != nil {
		t.Fatal(err)
	}
	final := filepath.Join(dst.Path, "new", "m1,S=8")
	if err := d.copyInto(dst, "m1,S=8", final); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(final); string(got) != "copied\r\n" {
		t.Fatalf("copied content %q", got)
	}
	if n := entries(t, filepath.Join(dst.Path, "tmp")); len(n) != 0 {
		t.Errorf("copy left %v in tmp", n)
	}
}

func TestCommitAcrossDevices(t *testing.T) {
	other, err := os.MkdirTemp("/dev/shm", "maildir-test")
	if err != nil {
		t.Skip("no /dev/shm")
	}
	defer os.RemoveAll(other)
	local := t.TempDir()
	var a, b syscall.Stat_t
	if syscall.Stat(other, &a) != nil || syscall.Stat(local, &b) != nil || a.Dev == b.Dev {
		t.Skip("/dev/shm is on the same device as the temp dir")
	}
	spool, box := mustCreate(t, local), mustCreate(t, other)
	d, err := NewMessage(spool)
	if err != nil {
		t.Fatal(err)
	}
	d.Write([]byte("far away\r\n"))
	paths, err := d.Commit([]Dir{box})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(paths[0]); string(got) != "far away\r\n" {
		t.Fatalf("content %q", got)
	}
	if !strings.HasPrefix(paths[0], other) {
		t.Fatalf("path %s", paths[0])
	}
}

func BenchmarkCommit1KB(b *testing.B) {
	base := b.TempDir()
	spool := mustCreate(b, filepath.Join(base, "spool"))
	box := mustCreate(b, filepath.Join(base, "box"))
	n := NewWriter(nil)
	msg := bytes.Repeat([]byte("x"), 1024)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		d, err := n.NewMessage(spool)
		if err != nil {
			b.Fatal(err)
		}
		d.Write(msg)
		if _, err := d.Commit([]Dir{box}); err != nil {
			b.Fatal(err)
		}
	}
}

// Create is Writer.Create on the host's file system, for tests that need
// no Writer of their own.
func Create(path string) (Dir, error) { return create(vfs.OS{}, path) }

// NewMessage starts a message with a Writer of its own.
func NewMessage(tmp Dir) (*Message, error) { return NewWriter(nil).NewMessage(tmp) }
