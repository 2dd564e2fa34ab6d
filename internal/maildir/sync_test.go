package maildir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smtpkit/internal/vfs"
)

func TestParseSync(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Sync
		bad  bool
	}{
		{"filesystem", SyncFileSystem, false},
		{"", SyncFileSystem, false},
		{"file", SyncFile, false},
		{"fsync", 0, true},
		{"FILE", 0, true},
	} {
		got, err := ParseSync(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseSync(%q) = %v, %v", tc.in, got, err)
		}
		if !tc.bad && got.String() != map[Sync]string{SyncFileSystem: "filesystem", SyncFile: "file"}[got] {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

// TestSyncFileSystemOrder checks the durability order of one delivery
// under SyncFileSystem: a file-system flush runs while new/ does not yet
// name the message (its data is made durable before the link), and another
// after the link, before Commit returns.
func TestSyncFileSystemOrder(t *testing.T) {
	base := t.TempDir()
	spool := mustCreate(t, filepath.Join(base, "spool"))
	box := mustCreate(t, filepath.Join(base, "box"))
	n := NewWriter(nil)
	var seen []int // files in box/new at each flush
	n.fs.group.flush = func(dir string) error {
		seen = append(seen, len(entries(t, filepath.Join(box.Path, "new"))))
		return vfs.OS{}.SyncFS(dir)
	}
	d, err := n.NewMessage(spool)
	if err != nil {
		t.Fatal(err)
	}
	d.Write([]byte("Subject: x\r\n\r\nbody\r\n"))
	if _, err := d.Commit([]Dir{box}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seen) != "[0 1]" {
		t.Fatalf("files in new/ at each flush: %v, want [0 1] (data flush before the link, link flush after)", seen)
	}
}

// TestSyncFileSystemShared checks group commit across deliveries: while one
// flush runs, the deliveries that arrive meanwhile share the next ones, so
// 20 concurrent deliveries need far fewer than the 40 flushes they would
// need alone.
func TestSyncFileSystemShared(t *testing.T) {
	base := t.TempDir()
	spool := mustCreate(t, filepath.Join(base, "spool"))
	const writers = 20
	var boxes []Dir
	for i := range writers {
		boxes = append(boxes, mustCreate(t, filepath.Join(base, fmt.Sprint("box", i))))
	}
	n := NewWriter(nil)
	var flushes atomic.Int32
	n.fs.group.flush = func(dir string) error {
		if flushes.Add(1) == 1 {
			time.Sleep(100 * time.Millisecond) // let every writer arrive
		}
		return vfs.OS{}.SyncFS(dir)
	}
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := n.NewMessage(spool)
			if err != nil {
				t.Error(err)
				return
			}
			d.Write([]byte("message\r\n"))
			if _, err := d.Commit([]Dir{boxes[i]}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, b := range boxes {
		if got := entries(t, filepath.Join(b.Path, "new")); len(got) != 1 {
			t.Errorf("%s/new holds %v", b.Path, got)
		}
	}
	if got := flushes.Load(); got >= writers {
		t.Fatalf("%d file-system flushes for %d deliveries; group commit should need a handful", got, writers)
	}
}

// TestSyncFileSystemErrors checks that a failed file-system flush fails the
// delivery and leaves nothing in new/.
func TestSyncFileSystemErrors(t *testing.T) {
	for _, failAt := range []int{1, 2} { // the data flush, the link flush
		t.Run(fmt.Sprint("flush", failAt), func(t *testing.T) {
			base := t.TempDir()
			spool := mustCreate(t, filepath.Join(base, "spool"))
			box := mustCreate(t, filepath.Join(base, "box"))
			n := NewWriter(nil)
			boom := errors.New("EIO")
			var calls int
			n.fs.group.flush = func(string) error {
				if calls++; calls == failAt {
					return boom
				}
				return nil
			}
			d, err := n.NewMessage(spool)
			if err != nil {
				t.Fatal(err)
			}
			d.Write([]byte("message\r\n"))
			if _, err := d.Commit([]Dir{box}); !errors.Is(err, boom) {
				t.Fatalf("Commit = %v, want the flush error", err)
			}
			for _, sub := range []string{"tmp", "new"} {
				if got := entries(t, filepath.Join(box.Path, sub)); len(got) != 0 {
					t.Errorf("%s holds %v after a failed flush", sub, got)
				}
			}
		})
	}
}

func TestSyncFSMissingDir(t *testing.T) {
	if err := NewWriter(nil).fs.Flush(filepath.Join(t.TempDir(), "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file-system flush of a missing dir = %v", err)
	}
}
