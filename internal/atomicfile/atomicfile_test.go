package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesWholeFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "accounts.json")
	for _, content := range []string{"first version\n", "second\n"} {
		if err := Write(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestWriteIntoMissingDirFails(t *testing.T) {
	if err := Write(filepath.Join(t.TempDir(), "no", "such", "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("Write into a missing directory succeeded")
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("SyncDir of a missing directory succeeded")
	}
}

func TestWriteWith(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	prepared := false
	opts := Options{NoReplace: true, Prepare: func(tmp *os.File) error { prepared = true; return tmp.Chmod(0o640) }}
	if err := WriteWith(p, []byte("first"), opts); err != nil {
		t.Fatal(err)
	}
	if !prepared {
		t.Error("Prepare was not called")
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 from Prepare", fi.Mode().Perm())
	}
	// NoReplace: a second writer loses and the first content stays.
	if err := WriteWith(p, []byte("second"), Options{Perm: 0o600, NoReplace: true}); !errors.Is(err, os.ErrExist) {
		t.Errorf("second NoReplace write: %v, want ErrExist", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "first" {
		t.Errorf("content %q, want the first writer's", got)
	}
	// A failing Prepare writes nothing.
	q := filepath.Join(dir, "other")
	if err := WriteWith(q, []byte("x"), Options{Prepare: func(*os.File) error { return errors.New("no") }}); err == nil {
		t.Error("a failed Prepare did not stop the write")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left behind: %v", entries)
	}
}
