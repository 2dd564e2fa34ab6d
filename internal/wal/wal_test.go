package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"smtpkit/internal/vfs"
)

// collect replays l and returns its records as "seq:payload" strings.
func collect(t *testing.T, l *Log) []string {
	t.Helper()
	var got []string
	if err := l.Replay(func(seq uint64, p []byte) error {
		got = append(got, fmt.Sprintf("%d:%s", seq, p))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func mustOpen(t *testing.T, dir string) *Log {
	t.Helper()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func appendAll(t *testing.T, l *Log, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		tk, err := l.Append([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		tk.Done()
	}
}

func TestAppendReplayAfterRestart(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	appendAll(t, l, "one", "two", "three")
	l.Close() // no checkpoint: a crash as far as the log knows

	l2 := mustOpen(t, dir)
	if got := fmt.Sprint(collect(t, l2)); got != "[1:one 2:two 3:three]" {
		t.Fatalf("replay = %s", got)
	}
	// New records continue the sequence in a later segment.
	appendAll(t, l2, "four")
	l2.Close()
	l3 := mustOpen(t, dir)
	if got := fmt.Sprint(collect(t, l3)); got != "[1:one 2:two 3:three 4:four]" {
		t.Fatalf("second replay = %s", got)
	}
}

func TestCheckpointDropsApplied(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	appendAll(t, l, "a", "b")
	flushed := 0
	if err := l.Checkpoint(func() error { flushed++; return nil }); err != nil {
		t.Fatal(err)
	}
	if flushed != 1 {
		t.Fatalf("flush ran %d times", flushed)
	}
	if l.Pending() {
		t.Fatal("Pending after a checkpoint with nothing new")
	}
	// Nothing new: no flush.
	if err := l.Checkpoint(func() error { flushed++; return nil }); err != nil || flushed != 1 {
		t.Fatalf("empty checkpoint: err %v, flushes %d", err, flushed)
	}
	l.Close()
	if got := collect(t, mustOpen(t, dir)); len(got) != 0 {
		t.Fatalf("checkpointed records replayed: %v", got)
	}
}

// TestCheckpointWaitsForDone: a record whose application is still running
// keeps its segment, and the flush runs only after Done.
func TestCheckpointWaitsForDone(t *testing.T) {
	l := mustOpen(t, t.TempDir())
	tk, err := l.Append([]byte("slow"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	done := false
	result := make(chan error)
	go func() {
		result <- l.Checkpoint(func() error {
			mu.Lock()
			defer mu.Unlock()
			if !done {
				return errors.New("flush ran before the record was applied")
			}
			return nil
		})
	}()
	mu.Lock()
	done = true
	mu.Unlock()
	tk.Done()
	if err := <-result; err != nil {
		t.Fatal(err)
	}
}

func TestFailedFlushKeepsSegments(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	appendAll(t, l, "keep")
	boom := errors.New("EIO")
	if err := l.Checkpoint(func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Checkpoint = %v", err)
	}
	l.Close()
	if got := fmt.Sprint(collect(t, mustOpen(t, dir))); got != "[1:keep]" {
		t.Fatalf("replay after a failed checkpoint = %s", got)
	}
}

// TestTornTail: whatever follows the last intact record — a partial header,
// a partial payload, a bad checksum, a sequence gap — ends the segment.
func TestTornTail(t *testing.T) {
	good := appendRecord(appendRecord(nil, 1, []byte("first")), 2, []byte("second"))
	bad := appendRecord(nil, 3, []byte("third"))
	flip := append([]byte(nil), bad...)
	flip[len(flip)-1] ^= 1
	gap := appendRecord(nil, 9, []byte("gap"))
	huge := append([]byte(nil), bad...)
	huge[3] = 0x7f // length far over MaxPayload
	for _, tc := range []struct {
		name string
		tail []byte
	}{
		{"clean", nil},
		{"partial header", bad[:7]},
		{"partial payload", bad[:len(bad)-2]},
		{"bad checksum", flip},
		{"sequence gap", gap},
		{"huge length", huge},
		{"zeros", make([]byte, 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := ReadRecords(bytes.NewReader(append(append([]byte(nil), good...), tc.tail...)), 1, func(seq uint64, p []byte) error {
				got = append(got, fmt.Sprintf("%d:%s", seq, p))
				return nil
			})
			if err != nil || fmt.Sprint(got) != "[1:first 2:second]" {
				t.Fatalf("records %v, err %v", got, err)
			}
		})
	}
}

func TestTornSegmentOnDisk(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	appendAll(t, l, "x", "y")
	l.Close()
	names, _ := segmentNames(vfs.OS{}, dir)
	f, err := os.OpenFile(filepath.Join(dir, names[len(names)-1]), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(appendRecord(nil, 3, []byte("torn"))[:10])
	f.Close()
	l2 := mustOpen(t, dir)
	if got := fmt.Sprint(collect(t, l2)); got != "[1:x 2:y]" {
		t.Fatalf("replay = %s", got)
	}
	appendAll(t, l2, "z")
	l2.Close()
	if got := fmt.Sprint(collect(t, mustOpen(t, dir))); got != "[1:x 2:y 3:z]" {
		t.Fatalf("replay after more appends = %s", got)
	}
}

func TestReplayError(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	appendAll(t, l, "x")
	l.Close()
	boom := errors.New("stop")
	if err := mustOpen(t, dir).Replay(func(uint64, []byte) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Replay = %v", err)
	}
}

func TestLimitsAndClose(t *testing.T) {
	l := mustOpen(t, t.TempDir())
	if _, err := l.Append(make([]byte, MaxPayload+1)); err == nil {
		t.Fatal("oversized record accepted")
	}
	l.Close()
	if _, err := l.Append([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
}

// TestConcurrentAppends: every acknowledged record is replayed exactly once,
// with consecutive sequence numbers.
func TestConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				tk, err := l.Append([]byte(fmt.Sprintf("w%d-%d", w, i)))
				if err != nil {
					t.Error(err)
					return
				}
				tk.Done()
			}
		}()
	}
	wg.Wait()
	l.Close()
	seen := map[string]bool{}
	var last uint64
	err := mustOpen(t, dir).Replay(func(seq uint64, p []byte) error {
		if seq != last+1 {
			return fmt.Errorf("seq %d after %d", seq, last)
		}
		last = seq
		if seen[string(p)] {
			return fmt.Errorf("%s twice", p)
		}
		seen[string(p)] = true
		return nil
	})
	if err != nil || len(seen) != writers*each {
		t.Fatalf("replayed %d records, err %v", len(seen), err)
	}
}

func FuzzReadRecords(f *testing.F) {
	f.Add(uint64(1), appendRecord(appendRecord(nil, 1, []byte("a")), 2, []byte("bc")))
	f.Add(uint64(7), appendRecord(nil, 7, nil))
	f.Add(uint64(1), []byte{})
	f.Add(uint64(0), make([]byte, 40))
	f.Fuzz(func(t *testing.T, first uint64, in []byte) {
		want := first
		n := 0
		err := ReadRecords(bytes.NewReader(in), first, func(seq uint64, p []byte) error {
			if seq != want {
				t.Fatalf("record %d numbered %d, want %d", n, seq, want)
			}
			if len(p) > MaxPayload {
				t.Fatalf("payload of %d bytes", len(p))
			}
			want++
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n*headerSize > len(in) {
			t.Fatalf("%d records from %d bytes", n, len(in))
		}
	})
}

// TestRotation: a full segment is closed for a new one, replay crosses
// segments, and one checkpoint drops them all.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	big := bytes.Repeat([]byte("m"), MaxPayload)
	const n = DefaultSegmentSize/MaxPayload + 2
	for range n {
		tk, err := l.Append(big)
		if err != nil {
			t.Fatal(err)
		}
		tk.Done()
	}
	if names, _ := segmentNames(vfs.OS{}, dir); len(names) < 2 {
		t.Fatalf("%d segments after %d MiB", len(names), n)
	}
	l.Close()
	l2 := mustOpen(t, dir)
	if got := len(collect(t, l2)); got != n {
		t.Fatalf("replayed %d of %d records", got, n)
	}
	if err := l2.Checkpoint(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if names, _ := segmentNames(vfs.OS{}, dir); len(names) != 1 { // the empty current one
		t.Fatalf("segments after checkpoint: %v", names)
	}
}

// TestOneProcessPerLog: a second Open of a log in use is refused (flock),
// and allowed again once the first is closed.
func TestOneProcessPerLog(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open = %v, want in use", err)
	}
	l.Close()
	mustOpen(t, dir).Close()
}

// TestRecycledSegment: a retired segment's file is reused from its start;
// what is left of its older records after the new ones is never replayed,
// also when the new segment got no record at all, and also after a restart
// with nothing but spares left.
func TestRecycledSegment(t *testing.T) {
	for _, fresh := range []bool{true, false} {
		t.Run(fmt.Sprint("fresh=", fresh), func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir)
			old := strings.Repeat("o", 4000)
			appendAll(t, l, old+"1", old+"2", old+"3", old+"4")
			noop := func() error { return nil }
			if err := l.Checkpoint(noop); err != nil { // the first file becomes a spare
				t.Fatal(err)
			}
			appendAll(t, l, "x")
			if err := l.Checkpoint(noop); err != nil { // the next segment reuses it
				t.Fatal(err)
			}
			names, _ := segmentNames(vfs.OS{}, dir)
			fi, err := os.Stat(filepath.Join(dir, names[len(names)-1]))
			if err != nil || fi.Size() < 4*4000 {
				t.Fatalf("current segment is not the reused file (size %v, %v)", fi.Size(), err)
			}
			// A new record exactly as long as the old first one, so that
			// an old record starts right where it ends.
			fresher := strings.Repeat("n", len(old)+1)
			if fresh {
				appendAll(t, l, fresher)
			}
			l.Close() // a crash
			l2 := mustOpen(t, dir)
			got := collect(t, l2)
			if fresh && (len(got) != 1 || !strings.HasSuffix(got[0], ":"+fresher)) || !fresh && len(got) != 0 {
				t.Fatalf("replay of a reused file = %.80q", got)
			}
			if err := l2.Checkpoint(noop); err != nil {
				t.Fatal(err)
			}
			l2.Close()
			// Only spares and an empty segment are left: numbering goes on
			// above everything the spares ever held.
			l3 := mustOpen(t, dir)
			if len(collect(t, l3)) != 0 {
				t.Fatal("records after a clean checkpoint")
			}
			tk, err := l3.Append([]byte("later"))
			if err != nil {
				t.Fatal(err)
			}
			tk.Done()
			if tk.Seq <= 6 {
				t.Fatalf("sequence number %d reused after a restart", tk.Seq)
			}
			l3.Close()
		})
	}
}

// TestSparesBounded: retiring many segments keeps at most maxSpares files.
func TestSparesBounded(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	for range 5 {
		appendAll(t, l, "r")
		if err := l.Checkpoint(func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	spares, _, err := spareNames(vfs.OS{}, dir)
	if err != nil || len(spares) > maxSpares {
		t.Fatalf("%d spares (%v), want at most %d", len(spares), err, maxSpares)
	}
}

// TestNumbersStayAboveSpares: even with no segment file left (an operator
// removed them after a clean stop), new numbers start above everything the
// spares held, so their old records can never seem to follow new ones.
func TestNumbersStayAboveSpares(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	appendAll(t, l, "a", "b", "c")
	if err := l.Checkpoint(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	l.Close()
	names, _ := segmentNames(vfs.OS{}, dir)
	for _, n := range names {
		os.Remove(filepath.Join(dir, n))
	}
	l2 := mustOpen(t, dir)
	tk, err := l2.Append([]byte("d"))
	if err != nil {
		t.Fatal(err)
	}
	tk.Done()
	if tk.Seq <= 3 {
		t.Fatalf("sequence number %d after spares that held 1-3", tk.Seq)
	}
	l2.Close()
}
