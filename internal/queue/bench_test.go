package queue

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
)

// BenchmarkCommitParallel measures durable commits of 1 KB messages from
// N sessions at once: through the journal (its checkpoints inside the
// timed work, the last one at Close), and on the file path with group
// commit of the directory fsyncs and without it.
func BenchmarkCommitParallel(b *testing.B) {
	body := []byte(testMessage + strings.Repeat("x", 1024-len(testMessage)))
	for _, bc := range []struct {
		name    string
		journal bool
		group   bool
		hold    int // Options.JournalMemory: -1 writes the files at Commit
	}{{"journal", true, true, 0}, {"journal-files-at-commit", true, true, -1}, {"files", false, true, 0}, {"files-nogroup", false, false, 0}} {
		for _, sessions := range []int{2, 16, 64} {
			b.Run(fmt.Sprintf("%s/sessions=%d", bc.name, sessions), func(b *testing.B) {
				q, err := Open(Options{Dir: b.TempDir(), Courier: &recorder{}, NoJournal: !bc.journal,
					noGroupCommit: !bc.group, JournalMemory: bc.hold, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				b.SetParallelism(max(sessions/runtime.GOMAXPROCS(0), 1))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						w, err := q.Begin(envelopeOf("a@example.org", []string{"b@example.net"}, Meta{}))
						if err != nil {
							b.Error(err)
							return
						}
						w.Write(body)
						if _, err := w.Commit(); err != nil {
							b.Error(err)
							return
						}
					}
				})
				if err := q.Close(); err != nil { // the journal's last checkpoint
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			})
		}
	}
}

// TestSyncerGroups checks group commit's contract: every Sync returns only
// after an fsync that started after it was called, and concurrent callers
// share rounds.
func TestSyncerGroups(t *testing.T) {
	started := make(chan chan error)
	s := newSyncer(func() error {
		c := make(chan error)
		started <- c
		return <-c
	}, true)
	defer s.close()
	first := make(chan error)
	go func() { first <- s.Sync() }()
	round1 := <-started // the first fsync is in flight
	waiters := make(chan error, 5)
	for range 5 {
		go func() { waiters <- s.Sync() }()
	}
	// None of the five may return with round 1: it started before them.
	round1 <- nil
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	select {
	case <-waiters:
		t.Fatal("a Sync returned with an fsync that started before it")
	default:
	}
	round2 := <-started // one fsync for the late callers (all, or the ones that joined in time)
	round2 <- io.ErrUnexpectedEOF
	got := 0
	for got < 5 {
		select {
		case err := <-waiters:
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("waiter got %v, want its round's error", err)
			}
			got++
		case c := <-started: // a caller that joined after round 2 was taken
			c <- io.ErrUnexpectedEOF
		}
	}
}
