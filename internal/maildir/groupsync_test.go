package maildir

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smtpkit/internal/wal"
)

// TestDirSyncerCoversLaterCallers checks the group-commit rule: a caller
// that arrives while an fsync runs is not satisfied by it, but by the next.
func TestGroupSyncCoversLaterCallers(t *testing.T) {
	s := newGroupSync(nil)
	var syncs atomic.Int32
	inSync := make(chan struct{})
	release := make(chan struct{})
	s.flush = func(string) error {
		if syncs.Add(1) == 1 {
			close(inSync)
			<-release
		}
		return nil
	}
	first := make(chan error)
	go func() { first <- s.Flush("d") }()
	<-inSync // the first fsync is running
	const late = 10
	var wg sync.WaitGroup
	for range late {
		wg.Add(1)
		go func() { defer wg.Done(); s.Flush("d") }()
	}
	// The late callers must wait for an fsync that starts after them.
	close(release)
	<-first
	wg.Wait()
	if n := syncs.Load(); n < 2 || n > 1+late {
		t.Fatalf("%d fsyncs for 1 early and %d late callers; want 2..%d", n, late, 1+late)
	}
	if len(s.keys) != 0 {
		t.Errorf("group sync keeps %d idle entries", len(s.keys))
	}
}

func TestGroupSyncReportsErrors(t *testing.T) {
	s := newGroupSync(nil)
	boom := errors.New("EIO")
	s.flush = func(string) error { return boom }
	if err := s.Flush("d"); !errors.Is(err, boom) {
		t.Fatalf("Sync = %v, want the fsync error", err)
	}
}

func BenchmarkCommitParallel1KB(b *testing.B) {
	for _, mode := range []Sync{SyncJournal, SyncFileSystem, SyncFile} {
		b.Run("sync="+mode.String(), func(b *testing.B) { benchmarkCommitParallel(b, mode) })
	}
}

func benchmarkCommitParallel(b *testing.B, mode Sync) {
	base := b.TempDir()
	spool := mustCreate(b, filepath.Join(base, "spool"))
	box := mustCreate(b, filepath.Join(base, "box"))
	n := NewWriter(nil)
	n.SetSync(mode)
	if mode == SyncJournal {
		log, err := wal.Open(filepath.Join(base, "journal"))
		if err != nil {
			b.Fatal(err)
		}
		n.SetJournal(log, 0, nil)
		defer n.CloseJournal() // the last checkpoint is part of the work
	}
	msg := bytes.Repeat([]byte("x"), 1024)
	b.SetBytes(int64(len(msg)))
	b.SetParallelism(8) // like 16 sessions on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d, err := n.NewMessage(spool)
			if err != nil {
				b.Error(err)
				return
			}
			d.Write(msg)
			if _, err := d.Commit([]Dir{box}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestCleanTmp(t *testing.T) {
	root := t.TempDir()
	box := mustCreate(t, filepath.Join(root, "example.com", "alice"))
	old := filepath.Join(box.Path, "tmp", "old")
	fresh := filepath.Join(box.Path, "tmp", "fresh")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	os.Chtimes(old, now.Add(-48*time.Hour), now.Add(-48*time.Hour))
	n, err := CleanTmp(root, TmpMaxAge, now)
	if err != nil || n != 1 {
		t.Fatalf("CleanTmp = %d, %v; want 1 removed", n, err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("old tmp file survived")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh tmp file removed: %v", err)
	}
}
