package pgqueue

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"smtpkit/internal/pgtest"
	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// BenchmarkAccept measures the accept path against a local PostgreSQL
// (fsync on): 1 KB messages committed by concurrent sessions, as
// queue.BenchmarkCommitParallel does for the files; it reports commits/s
// and the database's transactions per message (xact_commit).
func BenchmarkAccept(b *testing.B) {
	srv := pgtest.Start(b, pgtest.Options{Addr: "127.17.3.1:0"})
	msg := []byte(strings.Repeat("x", 1024))
	for i, sessions := range []int{2, 16, 64} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			dsn, err := srv.CreateDatabase(fmt.Sprintf("bench%d_%d", i, b.N))
			if err != nil {
				b.Fatal(err)
			}
			q := openTest(b, Options{Database: dsn, Courier: &nopCourier{}})
			env := queue.Envelope{From: mustAddr(b, "a@example.org"), To: []smtp.Address{mustAddr(b, "b@example.net")}}
			before := xacts(b, q)
			b.ResetTimer()
			b.SetParallelism(max(sessions/runtime.GOMAXPROCS(0), 1))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w, err := q.Begin(env)
					if err != nil {
						b.Error(err)
						return
					}
					w.Write(msg)
					if _, err := w.Commit(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			b.ReportMetric(float64(xacts(b, q)-before)/float64(b.N), "xacts/msg")
		})
	}
}

// BenchmarkDeliver measures the delivery path: b.N queued messages
// drained by one node's Run with a courier that accepts at once.
func BenchmarkDeliver(b *testing.B) {
	srv := pgtest.Start(b, pgtest.Options{Addr: "127.17.3.1:0"})
	dsn, err := srv.CreateDatabase(fmt.Sprintf("deliver%d", b.N))
	if err != nil {
		b.Fatal(err)
	}
	c := &nopCourier{}
	q := openTest(b, Options{Database: dsn, Courier: c, PollInterval: 50 * time.Millisecond})
	env := queue.Envelope{From: mustAddr(b, "a@example.org"), To: []smtp.Address{mustAddr(b, "b@example.net")}}
	for range b.N {
		w, _ := q.Begin(env)
		io.WriteString(w, strings.Repeat("x", 1024))
		if _, err := w.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	before := xacts(b, q)
	b.ResetTimer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); q.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Minute)
	for c.n.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling for the drain, bounded
	}
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(xacts(b, q)-before)/float64(b.N), "xacts/msg")
}

type nopCourier struct{ n atomic.Int64 }

func (c *nopCourier) Deliver(_ context.Context, d *queue.Attempt) []queue.Result {
	rc, err := d.Open()
	if err == nil {
		io.Copy(io.Discard, rc)
		rc.Close()
	}
	c.n.Add(int64(len(d.Recipients)))
	return results(d.Recipients, err)
}

// xacts is the database's committed transactions so far.
func xacts(tb testing.TB, q *Queue) int64 {
	var n int64
	// The statistics are sent at the end of each transaction; force a
	// fresh snapshot.
	q.pool.Exec(context.Background(), `SELECT pg_stat_clear_snapshot()`)
	if err := q.pool.QueryRow(context.Background(), `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}
