package vfs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"smtpkit/internal/vfs"
)

func TestOSAnonymousLink(t *testing.T) {
	dir := t.TempDir()
	fsys := vfs.OS{}
	f, err := fsys.OpenAnonymous(dir, 0o600)
	if errors.Is(err, vfs.ErrUnsupported) {
		t.Skip("no O_TMPFILE on", dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := f.Datasync(); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "named")
	if err := f.LinkTo(dst); err != nil {
		t.Fatal(err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, []byte("hello")) {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}
}

func TestOSWriteAndStatfs(t *testing.T) {
	dir := t.TempDir()
	fsys := vfs.OS{}
	p := filepath.Join(dir, "f")
	for _, data := range []string{"one", "two"} {
		if err := vfs.Write(fsys, p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, _ := fsys.ReadFile(p); string(got) != data {
			t.Fatalf("got %q, want %q", got, data)
		}
	}
	if err := fsys.SyncFS(dir); err != nil {
		t.Fatal(err)
	}
	u, err := fsys.Statfs(dir)
	if err != nil || u.Total == 0 || u.Free > u.Total {
		t.Fatalf("Statfs = %+v, %v", u, err)
	}
	k1, err1 := fsys.DeviceKey(dir)
	k2, err2 := fsys.DeviceKey(p)
	if err1 != nil || err2 != nil || k1 != k2 {
		t.Fatalf("DeviceKey %q %v, %q %v", k1, err1, k2, err2)
	}
}
