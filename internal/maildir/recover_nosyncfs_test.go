package maildir

import (
	"testing"

	"smtpkit/internal/vfs"
)

// noSyncFS is a file system on which syncfs(2) is no barrier, as on FUSE:
// SyncFS succeeds and flushes nothing.
type noSyncFS struct{ vfs.FS }

func (noSyncFS) SyncFS(string) error { return nil }

// TestRecoverPerFileWithoutSyncFS: serve falls back to per-file mode on a
// file system where syncfs is no barrier, and replays the journal an
// earlier run left there. The replay must not trust its checkpoint's
// syncfs: every file a record names is fsynced, with its directory,
// before the record is dropped, so a power loss right after the replay
// still finds every acknowledged message.
func TestRecoverPerFileWithoutSyncFS(t *testing.T) {
	tc := crashCase{name: "journal", mode: SyncJournal, segment: 4 << 10}
	w := newCrashWorld(t, tc)
	n := w.newWriter(w.fs, bootBefore)
	log, err := openCrashLog(w.fs, tc.segment)
	if err != nil {
		t.Fatal(err)
	}
	n.setJournal(log, 0) // no checkpointer: the records stay in the log
	var acked []int
	for id := range crashWorkers * crashEach {
		if deliverCrash(n, w.boxes, id) {
			acked = append(acked, id)
		}
	}
	if len(acked) != crashWorkers*crashEach {
		t.Fatalf("%d of %d deliveries acknowledged", len(acked), crashWorkers*crashEach)
	}

	// Power loss; the machine comes back with the data on a file system
	// whose syncfs does nothing, so serve runs in per-file mode.
	post := w.fs.Crash()
	replayer := NewWriter(nil)
	replayer.SetFS(noSyncFS{post})
	replayer.SetSync(SyncFile)
	replayer.SetBootID(bootAfter)
	rlog, err := openCrashLog(noSyncFS{post}, tc.segment)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Recover(rlog, replayer)
	rlog.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st.Records == 0 {
		t.Fatal("nothing replayed: the test does not exercise the replay")
	}

	// A second power loss right after the replay.
	res := check(t, post.Crash(), acked, nil)
	if res.lost > 0 {
		t.Fatalf("%d acknowledged copies lost after a replay whose syncfs was no barrier (%+v)", res.lost, st)
	}
	t.Logf("replayed %d records (written %d, present %d); %d copies checked, 0 lost", st.Records, st.Written, st.Present, res.checked)
}
