package maildir

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"smtpkit/internal/vfs"
	"smtpkit/internal/wal"
)

// journalFixture is a Writer delivering through a journal whose checkpointer
// never runs, so that a test can stop it like a crash would.
type journalFixture struct {
	base, walDir string
	spool        Dir
	n            *Writer
	log          *wal.Log
}

func newJournalFixture(t *testing.T) *journalFixture {
	t.Helper()
	f := &journalFixture{base: t.TempDir()}
	f.walDir = filepath.Join(f.base, "journal")
	f.spool = mustCreate(t, filepath.Join(f.base, "spool"))
	f.start(t)
	return f
}

func (f *journalFixture) start(t *testing.T) {
	t.Helper()
	log, err := wal.Open(f.walDir)
	if err != nil {
		t.Fatal(err)
	}
	f.log = log
	f.n = NewWriter(nil)
	f.n.SetBootID(bootBefore)
	f.n.SetSync(SyncJournal)
	f.n.setJournal(log, 0)
}

// crash drops the Writer without a checkpoint, as kill -9 would.
func (f *journalFixture) crash() { f.log.Close() }

// The boot ids of the fixture's deliveries, and of a restart after a
// power loss.
const (
	bootBefore = "6f1c3b1e-0000-4000-8000-000000000001"
	bootAfter  = "6f1c3b1e-0000-4000-8000-000000000002"
)

// recover restarts after a power loss: a fresh log, Recover, a fresh Writer
// on another boot.
func (f *journalFixture) recover(t *testing.T) RecoverStats {
	t.Helper()
	return f.recoverOn(t, bootAfter)
}

// recoverOn restarts on the boot with the given id: bootBefore is a
// restart after the process alone crashed.
func (f *journalFixture) recoverOn(t *testing.T, boot string) RecoverStats {
	t.Helper()
	log, err := wal.Open(f.walDir)
	if err != nil {
		t.Fatal(err)
	}
	n := NewWriter(nil)
	n.SetBootID(boot)
	st, err := Recover(log, n)
	if err != nil {
		t.Fatal(err)
	}
	log.Close()
	return st
}

// records counts the records a restart would replay (after crash).
func (f *journalFixture) records(t *testing.T) int {
	t.Helper()
	log, err := wal.Open(f.walDir)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	n := 0
	if err := log.Replay(func(uint64, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *journalFixture) deliver(t *testing.T, msg []byte, dirs ...Dir) []string {
	t.Helper()
	d, err := f.n.NewMessage(f.spool)
	if err != nil {
		t.Fatal(err)
	}
	d.Write(msg)
	paths, err := d.Commit(dirs)
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJournalCommitVisible(t *testing.T) {
	f := newJournalFixture(t)
	a := mustCreate(t, filepath.Join(f.base, "a"))
	b := mustCreate(t, filepath.Join(f.base, "b"))
	msg := []byte("Subject: journaled\r\n\r\nbody\r\n")
	paths := f.deliver(t, msg, a, b)
	for i, p := range paths {
		if filepath.Dir(p) != filepath.Join([]Dir{a, b}[i].Path, "new") || !nameRE.MatchString(filepath.Base(p)) {
			t.Errorf("path %s", p)
		}
		if !bytes.Equal(readAll(t, p), msg) {
			t.Errorf("%s does not hold the message", p)
		}
	}
	if got := entries(t, filepath.Join(f.spool.Path, "tmp")); len(got) != 0 {
		t.Errorf("spool tmp/ holds %v", got)
	}
	// The record is in the log until a checkpoint.
	f.crash()
	if n := f.records(t); n != 1 {
		t.Fatalf("%d records in the log, want 1", n)
	}
}

func TestJournalLargeMessageBypasses(t *testing.T) {
	f := newJournalFixture(t)
	box := mustCreate(t, filepath.Join(f.base, "box"))
	msg := bytes.Repeat([]byte("0123456789abcdef\r\n"), bufSize/18+10) // over the buffer
	paths := f.deliver(t, msg, box)
	if !bytes.Equal(readAll(t, paths[0]), msg) {
		t.Fatal("large message damaged")
	}
	f.crash()
	if n := f.records(t); n != 0 {
		t.Fatalf("a message over the buffer went to the journal (%d records)", n)
	}
}

// TestRecover covers what a crash can leave: after a power loss (another
// boot) every case must end with the message intact exactly once, where
// the mail client can see it; after a crash of the process alone (the same
// boot) a file missing from new/ and cur/ was expunged by the user and
// must stay gone.
func TestRecover(t *testing.T) {
	msg := []byte("Subject: survive\r\n\r\nthe body\r\n")
	for _, tc := range []struct {
		name     string
		crash    func(t *testing.T, path string) // what the crash (or the user) did to the delivered file
		where    string                          // "new", "cur" or "" (gone) afterwards
		stats    RecoverStats
		sameBoot bool
	}{
		{"intact", func(*testing.T, string) {}, "new", RecoverStats{Records: 1, Present: 1}, false},
		{"lost", func(t *testing.T, p string) { os.Remove(p) }, "new", RecoverStats{Records: 1, Written: 1}, false},
		{"truncated", func(t *testing.T, p string) { os.Truncate(p, 5) }, "new", RecoverStats{Records: 1, Repaired: 1}, false},
		{"zeroed", func(t *testing.T, p string) { os.WriteFile(p, make([]byte, len(msg)), 0o600) }, "new", RecoverStats{Records: 1, Repaired: 1}, false},
		{"read by a client", func(t *testing.T, p string) { moveToCur(t, p) }, "cur", RecoverStats{Records: 1, Present: 1}, false},
		{"read, then damaged", func(t *testing.T, p string) { os.Truncate(moveToCur(t, p), 0) }, "cur", RecoverStats{Records: 1, Repaired: 1}, false},
		{"maildir removed", func(t *testing.T, p string) { os.RemoveAll(filepath.Dir(filepath.Dir(p))) }, "new", RecoverStats{Records: 1, Written: 1}, false},
		{"read, then lost", func(t *testing.T, p string) { os.Remove(moveToCur(t, p)) }, "new", RecoverStats{Records: 1, Written: 1}, false},
		// The process crashed; the kernel kept its page cache.
		{"same boot/intact", func(*testing.T, string) {}, "new", RecoverStats{Records: 1, Present: 1}, true},
		{"same boot/read by a client", func(t *testing.T, p string) { moveToCur(t, p) }, "cur", RecoverStats{Records: 1, Present: 1}, true},
		{"same boot/expunged from new", func(t *testing.T, p string) { os.Remove(p) }, "", RecoverStats{Records: 1, Deleted: 1}, true},
		{"same boot/read, then expunged", func(t *testing.T, p string) { os.Remove(moveToCur(t, p)) }, "", RecoverStats{Records: 1, Deleted: 1}, true},
		{"same boot/maildir removed", func(t *testing.T, p string) { os.RemoveAll(filepath.Dir(filepath.Dir(p))) }, "", RecoverStats{Records: 1, Deleted: 1}, true},
		{"same boot/changed", func(t *testing.T, p string) { os.Truncate(p, 5) }, "new", RecoverStats{Records: 1, Repaired: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newJournalFixture(t)
			box := mustCreate(t, filepath.Join(f.base, "box"))
			p := f.deliver(t, msg, box)[0]
			f.crash()
			tc.crash(t, p)
			boot := bootAfter
			if tc.sameBoot {
				boot = bootBefore
			}
			if st := f.recoverOn(t, boot); !reflect.DeepEqual(st, tc.stats) {
				t.Errorf("stats %+v, want %+v", st, tc.stats)
			}
			var files []string
			for _, sub := range []string{"new", "cur"} {
				if es, err := os.ReadDir(filepath.Join(box.Path, sub)); err == nil {
					for _, e := range es {
						files = append(files, e.Name())
					}
				} else if tc.where != "" {
					t.Fatal(err)
				}
			}
			if tc.where == "" {
				if len(files) != 0 {
					t.Fatalf("recovery brought back a deleted message: %v", files)
				}
			} else {
				if len(files) != 1 {
					t.Fatalf("new/ and cur/ hold %v, want the message once", files)
				}
				got := readAll(t, filepath.Join(box.Path, tc.where, files[0]))
				if !bytes.Equal(got, msg) {
					t.Fatalf("message after recovery = %q", got)
				}
			}
			// A second recovery finds nothing left to do.
			if st := f.recoverOn(t, boot); !st.Empty() {
				t.Fatalf("second recovery %+v", st)
			}
		})
	}
}

// TestRecoverLegacyRecord: a record of the format without a boot id (an
// older smtpkit's journal) is replayed as after a power loss.
func TestRecoverLegacyRecord(t *testing.T) {
	f := newJournalFixture(t)
	box := mustCreate(t, filepath.Join(f.base, "box"))
	msg := []byte("Subject: old\r\n\r\nrecord\r\n")
	name := "1700000000.M1P2Q3.host,S=" + fmt.Sprint(len(msg))
	tk, err := f.log.Append(encodeLegacy(name, []Dir{box}, msg))
	if err != nil {
		t.Fatal(err)
	}
	tk.Done()
	f.crash()
	if st := f.recoverOn(t, bootBefore); !reflect.DeepEqual(st, RecoverStats{Records: 1, Written: 1}) {
		t.Fatalf("stats %+v", st)
	}
	if got := readAll(t, filepath.Join(box.Path, "new", name)); !bytes.Equal(got, msg) {
		t.Fatalf("replayed %q", got)
	}
}

// encodeLegacy is a delivery record of the format without a boot id.
func encodeLegacy(name string, dirs []Dir, data []byte) []byte {
	return appendDelivery([]byte{recLegacy}, name, dirs, data)
}

func moveToCur(t *testing.T, p string) string {
	t.Helper()
	box := filepath.Dir(filepath.Dir(p))
	dst := filepath.Join(box, "cur", filepath.Base(p)+":2,S")
	if err := os.Rename(p, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestJournalLinkFailureCancels: when the link fails after the record is
// durable, the delivery fails and a replay does not deliver it either.
func TestJournalLinkFailureCancels(t *testing.T) {
	f := newJournalFixture(t)
	good := mustCreate(t, filepath.Join(f.base, "good"))
	bad := mustCreate(t, filepath.Join(f.base, "bad"))
	breakers["new is a file"](t, bad)
	d, err := f.n.NewMessage(f.spool)
	if err != nil {
		t.Fatal(err)
	}
	d.Write([]byte("Subject: x\r\n\r\ny\r\n"))
	if _, err := d.Commit([]Dir{good, bad}); err == nil {
		t.Fatal("Commit into a broken Maildir succeeded")
	}
	if got := entries(t, filepath.Join(good.Path, "new")); len(got) != 0 {
		t.Fatalf("good/new holds %v after the failed delivery", got)
	}
	f.crash()
	if st := f.recover(t); st.Records != 0 || st.Cancelled != 1 {
		t.Fatalf("recovery %+v, want the record cancelled", st)
	}
	if got := entries(t, filepath.Join(good.Path, "new")); len(got) != 0 {
		t.Fatalf("recovery delivered a failed message: %v", got)
	}
}

// TestJournalCheckpoint: a clean stop checkpoints, so a restart replays
// nothing, and the messages stay.
func TestJournalCheckpoint(t *testing.T) {
	f := newJournalFixture(t)
	box := mustCreate(t, filepath.Join(f.base, "box"))
	for i := range 5 {
		f.deliver(t, []byte(fmt.Sprintf("Subject: %d\r\n\r\n.\r\n", i)), box)
	}
	if err := f.n.CloseJournal(); err != nil {
		t.Fatal(err)
	}
	if st := f.recover(t); !st.Empty() {
		t.Fatalf("recovery after a clean stop: %+v", st)
	}
	if got := entries(t, filepath.Join(box.Path, "new")); len(got) != 5 {
		t.Fatalf("new/ holds %d messages", len(got))
	}
}

func TestDecodeRecord(t *testing.T) {
	good := encodeDeliver(nil, bootBefore, "1.M2P3Q4.host,S=5", []Dir{{Path: "/m/a"}, {Path: "/m/b"}}, []byte("hello"))
	r, err := decodeRecord(good)
	if err != nil || r.boot != bootBefore || r.name != "1.M2P3Q4.host,S=5" || strings.Join(r.dirs, " ") != "/m/a /m/b" || string(r.data) != "hello" {
		t.Fatalf("decode = %+v, %v", r, err)
	}
	r, err = decodeRecord(encodeLegacy("1.M2P3Q4.host,S=5", []Dir{{Path: "/m/a"}}, []byte("hello")))
	if err != nil || r.kind != recLegacy || r.boot != "" || r.name != "1.M2P3Q4.host,S=5" || string(r.data) != "hello" {
		t.Fatalf("decode legacy = %+v, %v", r, err)
	}
	if r, err := decodeRecord(encodeCancel(nil, 42)); err != nil || r.kind != recCancel || r.cancel != 42 {
		t.Fatalf("cancel = %+v, %v", r, err)
	}
	for name, p := range map[string][]byte{
		"empty":        nil,
		"unknown kind": []byte("X"),
		"short cancel": encodeCancel(nil, 1)[:5],
		"no dirs":      encodeDeliver(nil, "b", "n", nil, []byte("x")),
		"bad name":     encodeDeliver(nil, "b", "../etc", []Dir{{Path: "/m"}}, nil),
		"colon name":   encodeDeliver(nil, "b", "a:2,S", []Dir{{Path: "/m"}}, nil),
		"long boot":    encodeDeliver(nil, strings.Repeat("b", maxBootLen+1), "n", []Dir{{Path: "/m"}}, nil),
		"legacy bad":   encodeLegacy("../etc", []Dir{{Path: "/m"}}, nil),
		"cut short":    good[:12],
	} {
		if _, err := decodeRecord(p); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeDeliver(nil, bootBefore, "1.M2P3Q4.host,S=5", []Dir{{Path: "/m/a"}}, []byte("hello")))
	f.Add(encodeLegacy("1.M2P3Q4.host,S=5", []Dir{{Path: "/m/a"}}, []byte("hello")))
	f.Add(encodeCancel(nil, 7))
	f.Add([]byte("D"))
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodeRecord(p)
		if err != nil || r.kind == recCancel {
			return
		}
		dirs := make([]Dir, len(r.dirs))
		for i, d := range r.dirs {
			dirs[i] = Dir{Path: d}
		}
		again := encodeDeliver(nil, r.boot, r.name, dirs, r.data)
		if r.kind == recLegacy {
			again = encodeLegacy(r.name, dirs, r.data)
		}
		if !bytes.Equal(again, p) {
			t.Fatalf("re-encoding %q gave %q", p, again)
		}
	})
}

// TestCheckpointFailureReported: the checkpointer hands a failed flush to
// the callback and keeps the records for the next try.
func TestCheckpointFailureReported(t *testing.T) {
	f := newJournalFixture(t)
	box := mustCreate(t, filepath.Join(f.base, "box"))
	f.crash() // replace the fixture's log: this one runs a checkpointer
	log, err := wal.Open(f.walDir)
	if err != nil {
		t.Fatal(err)
	}
	n := NewWriter(nil)
	n.SetSync(SyncJournal)
	errs := make(chan error, 10)
	var failing atomic.Bool
	failing.Store(true)
	n.fs.group.flush = func(dir string) error {
		if failing.Load() {
			return fmt.Errorf("EIO")
		}
		return vfs.OS{}.SyncFS(dir)
	}
	n.SetJournal(log, 10*time.Millisecond, func(err error) {
		select {
		case errs <- err:
		default:
		}
	})
	d, err := n.NewMessage(f.spool)
	if err != nil {
		t.Fatal(err)
	}
	d.Write([]byte("Subject: x\r\n\r\ny\r\n"))
	if _, err := d.Commit([]Dir{box}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "EIO") {
			t.Fatalf("reported %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no checkpoint failure reported")
	}
	failing.Store(false)
	if err := n.CloseJournal(); err != nil {
		t.Fatal(err)
	}
	if st := f.recover(t); !st.Empty() {
		t.Fatalf("records left after a successful last checkpoint: %+v", st)
	}
}

// TestJournalTooManyRecipients: a delivery whose record would exceed the
// log's limit is committed the SyncFileSystem way instead of failing.
func TestJournalTooManyRecipients(t *testing.T) {
	f := newJournalFixture(t)
	long := filepath.Join(f.base, strings.Repeat("d", 250))
	var dirs []Dir
	for i := range 4000 { // 4000 paths of over 260 octets: more than wal.MaxPayload
		dirs = append(dirs, mustCreate(t, fmt.Sprintf("%s/%04d", long, i)))
	}
	msg := []byte("Subject: to many\r\n\r\nhi\r\n")
	if fitsRecord(dirs, len(msg)) || !fitsRecord(dirs[:3], bufSize) {
		t.Fatal("fitsRecord is wrong about the limit")
	}
	paths := f.deliver(t, msg, dirs...)
	if len(paths) != len(dirs) || !bytes.Equal(readAll(t, paths[len(paths)-1]), msg) {
		t.Fatalf("%d paths, want %d with the message", len(paths), len(dirs))
	}
	f.crash()
	if n := f.records(t); n != 0 {
		t.Fatalf("%d journal records for a delivery that cannot be one", n)
	}
}

// TestRecoverUnusableMaildir: a Maildir a record names is no longer usable
// when the journal is replayed (its new/ became a file). The replay goes
// on with the other Maildirs and keeps the message in the journal's
// unplaced/ directory instead of failing the start or dropping it.
func TestRecoverUnusableMaildir(t *testing.T) {
	msg := []byte("Subject: unplaced\r\n\r\nbody\r\n")
	f := newJournalFixture(t)
	good := mustCreate(t, filepath.Join(f.base, "good"))
	broken := mustCreate(t, filepath.Join(f.base, "broken"))
	paths := f.deliver(t, msg, good, broken)
	f.crash()
	for _, p := range paths {
		os.Remove(p) // the power loss took both files
	}
	newDir := filepath.Join(broken.Path, "new")
	if err := os.RemoveAll(newDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	st := f.recover(t)
	if st.Records != 1 || st.Written != 1 || len(st.Unplaced) != 1 {
		t.Fatalf("stats %+v: want 1 record, 1 written, 1 unplaced", st)
	}
	u := st.Unplaced[0]
	if u.Maildir != broken.Path || !errors.Is(u.Err, syscall.ENOTDIR) {
		t.Errorf("unplaced %+v: want %s with ENOTDIR", u, broken.Path)
	}
	if got := readAll(t, u.Saved); !bytes.Equal(got, msg) {
		t.Errorf("saved %q, want %q", got, msg)
	}
	if got := readAll(t, paths[0]); !bytes.Equal(got, msg) {
		t.Errorf("the usable Maildir holds %q, want %q", got, msg)
	}
}
