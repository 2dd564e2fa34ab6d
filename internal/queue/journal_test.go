package queue

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// creates records the files created in msg/ and env/ (writes of them).
type creates struct {
	mu    sync.Mutex
	files map[string]int
}

func (c *creates) fail(op, path string) error {
	if op == "write" && (under(path, "msg") || under(path, "env")) {
		c.mu.Lock()
		c.files[filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path)]++
		c.mu.Unlock()
	}
	return nil
}

func (c *creates) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.files)
}

// TestJournalHoldsUntilNeeded: a journaled message is in memory, not in
// files, until something needs them. Delivered before the checkpoint, it
// never gets a file; deferred, it gets msg/ and env/ with its new state;
// the courier and a bounce read its bytes from memory; a checkpoint writes
// the rest; the queue opened again finds every one not delivered.
func TestJournalHoldsUntilNeeded(t *testing.T) {
	ffs := &faultFS{}
	c := &creates{files: map[string]int{}}
	ffs.set(c.fail)
	rec := &recorder{}
	e := open(t, rec, func(o *Options) { o.FS, o.Checkpoint = ffs, -1 })

	id := enqueue(t, e.q, "alice@example.org", "bob@example.net")
	e.q.RunOnce(context.Background())
	if len(rec.attempts) != 1 || rec.attempts[0].body != testMessage {
		t.Fatalf("attempts %+v, want one with the message", rec.attempts)
	}
	if n := c.count(); n != 0 {
		t.Errorf("a message delivered before the checkpoint wrote %d files: %v", n, c.files)
	}
	if len(e.q.List()) != 0 {
		t.Fatalf("delivered message %s still listed", id)
	}

	// Deferred: the env rewrite brings its files.
	rec.script = []error{temp}
	id2 := enqueue(t, e.q, "alice@example.org", "carol@example.net")
	e.q.RunOnce(context.Background())
	for _, p := range []string{filepath.Join(e.dir, "msg", id2), filepath.Join(e.dir, "env", id2+".json")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("deferred message: %v", err)
		}
	}

	// Failed at once: the bounce quotes it from memory.
	rec.script = []error{perm}
	id3 := enqueue(t, e.q, "alice@example.org", "dave@example.net")
	_ = id3
	e.q.RunOnce(context.Background())
	if b := e.bounces.all(); len(b) != 1 || !strings.Contains(string(b[0].Message), "Subject: test") {
		t.Errorf("bounce %+v, want one quoting the message", b)
	}

	// Not attempted: the checkpoint writes it; held in memory until then.
	id4 := enqueue(t, e.q, "alice@example.org", "erin@example.net")
	if _, err := os.Stat(filepath.Join(e.dir, "msg", id4)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an unattempted message has files before the checkpoint: %v", err)
	}
	checkpoint(e.q)
	for _, p := range []string{filepath.Join(e.dir, "msg", id4), filepath.Join(e.dir, "env", id4+".json")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("after the checkpoint: %v", err)
		}
	}
	e.q.Close()
	q, err := Open(Options{Dir: e.dir, Courier: &recorder{}, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	got := map[string]bool{}
	for _, s := range q.List() {
		got[s.ID] = true
	}
	if len(got) != 2 || !got[id2] || !got[id4] {
		t.Errorf("reopened queue lists %v, want the deferred %s and the unattempted %s", got, id2, id4)
	}
}

// TestCheckpointWriteFails: when the files of held messages cannot be
// written (ENOSPC), the checkpoint fails and keeps the journal; the
// messages stay queued and readable, and the next checkpoint writes them.
func TestCheckpointWriteFails(t *testing.T) {
	ffs := &faultFS{}
	rec := &recorder{}
	e := open(t, rec, func(o *Options) { o.FS, o.Checkpoint = ffs, -1 })
	id := enqueue(t, e.q, "alice@example.org", "bob@example.net")
	ffs.set(func(op, path string) error {
		if op == "write" && under(path, "msg") {
			return &os.PathError{Op: op, Path: path, Err: syscall.ENOSPC}
		}
		return nil
	})
	if err := e.q.journal.checkpoint(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("checkpoint with a full disk: %v", err)
	}
	if !e.q.journal.log.Pending() {
		t.Error("a failed checkpoint dropped the journal")
	}
	ffs.set(nil)
	if err := e.q.journal.checkpoint(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(e.dir, "msg", id))
	if err != nil || string(data) != testMessage {
		t.Fatalf("msg after the second checkpoint: %q, %v", data, err)
	}
	e.q.RunOnce(context.Background())
	if len(rec.attempts) != 1 || rec.attempts[0].body != testMessage {
		t.Errorf("attempts %+v", rec.attempts)
	}
}

// BenchmarkCommitDeliver is the relay path of the queue alone: N sessions
// commit 1 KB messages while the scheduler delivers them to a courier that
// takes them at once; the clock stops when all are delivered. With the
// journal, most never get files.
func BenchmarkCommitDeliver(b *testing.B) {
	body := strings.Repeat("x", 1024)
	for _, journal := range []bool{true, false} {
		name := "journal"
		if !journal {
			name = "files"
		}
		b.Run(name+"/sessions=16", func(b *testing.B) {
			var delivered sync.WaitGroup
			delivered.Add(b.N)
			courier := courierFunc(func(_ context.Context, d *Attempt) []Result {
				rc, err := d.Open()
				if err == nil {
					io.Copy(io.Discard, rc)
					rc.Close()
				}
				out := make([]Result, len(d.Recipients))
				for i, a := range d.Recipients {
					out[i] = Result{Rcpt: a}
				}
				delivered.Add(-len(out))
				return out
			})
			q, err := Open(Options{Dir: b.TempDir(), Courier: courier, NoJournal: !journal, Concurrency: 20, PerDomain: 20})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan struct{})
			go func() { q.Run(ctx); close(ran) }()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w, err := q.Begin(envelopeOf("a@example.org", []string{"b@example.net"}, Meta{}))
					if err != nil {
						b.Error(err)
						return
					}
					io.WriteString(w, body)
					if _, err := w.Commit(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			done := make(chan struct{})
			go func() { delivered.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(time.Minute):
				b.Fatal("not all delivered within a minute")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			cancel()
			<-ran
			q.Close()
		})
	}
}

// TestDecodeRecord: the journal's two record kinds round-trip, and every
// malformed payload is errBadRecord (the log's CRC passed, so damage here
// is a bug or a foreign file: Open refuses to guess).
func TestDecodeRecord(t *testing.T) {
	id := "0123456789abcdef01234567"
	commit := encodeCommit(nil, id, []byte(`{"v":1}`), []byte("body"))
	for _, tt := range []struct {
		name string
		p    []byte
		want jrecord // zero: errBadRecord
	}{
		{"commit", commit, jrecord{kind: recCommit, id: id, env: []byte(`{"v":1}`), body: []byte("body")}},
		{"commit, empty body", encodeCommit(nil, id, []byte("{}"), nil), jrecord{kind: recCommit, id: id, env: []byte("{}"), body: []byte{}}},
		{"remove", encodeRemove(nil, id), jrecord{kind: recRemove, id: id}},
		{"empty", nil, jrecord{}},
		{"kind only", []byte{recCommit}, jrecord{}},
		{"short id", []byte("R0123"), jrecord{}},
		{"id not hex", []byte("R0123456789abcdefg1234567"), jrecord{}},
		{"id upper case", []byte("R0123456789ABCDEF01234567"), jrecord{}},
		{"path in the id", []byte("R../../../../etc/passwd!!"), jrecord{}},
		{"remove with a tail", append(encodeRemove(nil, id), 0), jrecord{}},
		{"commit without envelope length", []byte("M" + id + "\x01"), jrecord{}},
		{"envelope longer than the record", []byte("M" + id + "\x09\x00\x00\x00{}"), jrecord{}},
		{"unknown kind", []byte("D" + id), jrecord{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := decodeRecord(tt.p)
			if tt.want.kind == 0 {
				if !errors.Is(err, errBadRecord) {
					t.Fatalf("decoded %+v, %v; want errBadRecord", r, err)
				}
				return
			}
			if err != nil || r.kind != tt.want.kind || r.id != tt.want.id ||
				string(r.env) != string(tt.want.env) || string(r.body) != string(tt.want.body) {
				t.Fatalf("decoded %+v, %v; want %+v", r, err, tt.want)
			}
		})
	}
}

// TestJournalBrokenFallsBack: after an fdatasync of the journal fails (the
// commit that saw it is refused: the kernel may have dropped the dirty
// pages), the journal is closed, and the next commits take the file path
// instead of all being refused until a restart.
func TestJournalBrokenFallsBack(t *testing.T) {
	ffs := &faultFS{}
	e := open(t, &recorder{}, func(o *Options) { o.FS, o.Checkpoint = ffs, -1 })
	var once sync.Once
	ffs.set(func(op, path string) error {
		var err error
		if op == "datasync" && under(path, journalDir) {
			once.Do(func() { err = &os.PathError{Op: op, Path: path, Err: syscall.EIO} })
		}
		return err
	})
	commit := func(tag string) (string, error) {
		w, err := e.q.Begin(envelopeOf("alice@example.org", []string{"bob@example.net"}, Meta{ReceivedFrom: tag}))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, testMessage)
		return w.Commit()
	}
	if _, err := commit("first"); !errors.Is(err, syscall.EIO) {
		t.Fatalf("the commit whose fdatasync failed: %v, want EIO", err)
	}
	var ids []string
	for _, tag := range []string{"second", "third"} {
		id, err := commit(tag)
		if err != nil {
			t.Fatalf("%s commit after the journal broke: %v", tag, err)
		}
		ids = append(ids, id)
		if _, err := os.Stat(filepath.Join(e.dir, "env", id+".json")); err != nil {
			t.Errorf("%s commit did not take the file path: %v", tag, err)
		}
	}
	e.q.Close()
	q, err := Open(Options{Dir: e.dir, Courier: &recorder{}, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	got := map[string]bool{}
	for _, s := range q.List() {
		got[s.ID] = true
	}
	for _, id := range ids {
		if !got[id] {
			t.Errorf("%s acknowledged after the journal broke, gone after a restart", id)
		}
	}
}

// TestJournalMax: a message whose record fits Options.JournalMax (256 KiB
// by default) is committed by the journal alone, with no file of its own
// fsynced; a larger one takes the file path (tmp/, fsync, rename), and is
// delivered whole either way.
func TestJournalMax(t *testing.T) {
	for _, tt := range []struct {
		name       string
		size       int
		journalMax int
		journaled  bool
	}{
		{"1 KB, default", 1 << 10, 0, true},
		{"100 KB, default", 100 << 10, 0, true},
		{"250 KB, default", 250 << 10, 0, true},
		{"258 KB, default", 258 << 10, 0, false}, // past 256 KiB
		{"300 KB, default", 300 << 10, 0, false},
		{"100 KB, 64 KiB", 100 << 10, 64 << 10, false},
		{"60 KB, 64 KiB", 60 << 10, 64 << 10, true},
		{"900 KB, 1 MiB", 900 << 10, 1 << 20, true},
		{"900 KB, past wal.MaxPayload", 900 << 10, 8 << 20, true}, // clamped to 1 MiB
		{"1.1 MB, past wal.MaxPayload", 1100 << 10, 8 << 20, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ffs := &faultFS{}
			var mu sync.Mutex
			var synced []string
			ffs.set(func(op, path string) error {
				if op == "sync" && (under(path, "tmp") || under(path, "msg") || under(path, "env")) {
					mu.Lock()
					synced = append(synced, path)
					mu.Unlock()
				}
				return nil
			})
			rec := &recorder{}
			e := open(t, rec, func(o *Options) { o.FS, o.Checkpoint, o.JournalMax = ffs, -1, tt.journalMax })
			body := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n", tt.size/74+1)
			w, err := e.q.Begin(envelopeOf("alice@example.org", []string{"bob@example.net"}, Meta{}))
			if err != nil {
				t.Fatal(err)
			}
			// in pieces, as the server writes it
			for rest := body; rest != ""; {
				n := min(len(rest), 4096)
				if _, err := io.WriteString(w, rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			if _, err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			gotJournaled := len(synced) == 0
			mu.Unlock()
			if gotJournaled != tt.journaled {
				t.Errorf("journaled = %v (files fsynced: %v), want %v", gotJournaled, synced, tt.journaled)
			}
			e.q.RunOnce(context.Background())
			if len(rec.attempts) != 1 || rec.attempts[0].body != body {
				t.Fatalf("%d attempts; want one with the %d-byte message", len(rec.attempts), len(body))
			}
		})
	}
}
