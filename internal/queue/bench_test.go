package queue

import (
	"io"
	"log/slog"
	"testing"
)

// BenchmarkCommitParallel measures durable commits from many sessions at
// once, with group commit of the directory fsyncs and without it.
func BenchmarkCommitParallel(b *testing.B) {
	body := []byte(testMessage + string(make([]byte, 4096)))
	for _, bc := range []struct {
		name  string
		group bool
	}{{"group", true}, {"nogroup", false}} {
		b.Run(bc.name, func(b *testing.B) {
			q, err := Open(Options{Dir: b.TempDir(), Courier: &recorder{}, noGroupCommit: !bc.group,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			b.SetParallelism(8) // sessions per CPU
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
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
		})
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
