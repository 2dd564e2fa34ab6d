package queue

// depth_test.go: what the depth of the queue costs. BenchmarkQueueDepth
// (time per delivery with 1k, 10k and 100k deferred messages held) and
// BenchmarkOpenDeferred (start-up time and memory with 100k and 1M) are
// not run by CI (-bench); TestDepthSmall runs the same code at a small
// scale in every test run. Numbers: docs/performance.md.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeDeferred creates n deferred messages in the spool at dir directly
// (msg and env files, as Commit and a failed attempt leave them), each
// to one recipient in one of 100 domains, due an hour after now.
func writeDeferred(tb testing.TB, dir string, n int, now time.Time) {
	tb.Helper()
	for _, d := range []string{"msg", "env", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			tb.Fatal(err)
		}
	}
	body := []byte(testMessage)
	for i := range n {
		id := fmt.Sprintf("%012x%012x", uint64(now.Add(-time.Hour).UnixMilli()), i)
		e := &envelope{Version: envelopeVersion, ID: id, From: "alice@example.org", Arrival: now.Add(-time.Hour),
			Size: int64(len(body)), Meta: Meta{ReceivedFrom: "192.0.2.9", AuthUser: "alice", Relay: "auth"},
			Rcpts: []*rcpt{{Addr: "bob" + strconv.Itoa(i) + "@d" + strconv.Itoa(i%100) + ".example",
				Domain: "d" + strconv.Itoa(i%100) + ".example", State: Deferred, Attempts: 1,
				Next: now.Add(time.Hour), Last: now.Add(-time.Hour), Status: "4.4.1",
				Diagnostic: "connection refused", DiagType: diagOurs, Detail: "mx.example.net[192.0.2.1]: connection refused"}}}
		data, err := e.marshal()
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "msg", id), body, 0o600); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "env", id+".json"), data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// delivered is a Courier that delivers every recipient at once.
var delivered = courierFunc(func(ctx context.Context, d *Attempt) []Result {
	out := make([]Result, len(d.Recipients))
	for i, r := range d.Recipients {
		out[i] = Result{Rcpt: r}
	}
	return out
})

// benchDir is a fresh directory for a benchmark's spool: in /dev/shm when
// there is one (fsync costs nothing there, so the scheduler's share shows),
// else the test's temporary directory.
func benchDir(tb testing.TB, ram bool) string {
	tb.Helper()
	if ram {
		if d, err := os.MkdirTemp("/dev/shm", "smtpkit-queue-bench-"); err == nil {
			tb.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return tb.TempDir()
}

// deliverOne commits a message and runs the queue until it is delivered.
func deliverOne(tb testing.TB, q *Queue) {
	w, err := q.Begin(envelopeOf("carol@example.org", []string{"dave@fresh.example"}, Meta{}))
	if err != nil {
		tb.Fatal(err)
	}
	io.WriteString(w, testMessage)
	if _, err := w.Commit(); err != nil {
		tb.Fatal(err)
	}
	if n := q.RunOnce(context.Background()); n != 1 {
		tb.Fatalf("%d attempts, want 1", n)
	}
}

// BenchmarkQueueDepth measures the time per delivery — Commit, the
// scheduler's pass, the attempt, the removal — while 1k, 10k and 100k
// deferred messages wait in the queue. It should not grow with the depth.
func BenchmarkQueueDepth(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		clk := newClock()
		dir := benchDir(b, true)
		writeDeferred(b, dir, n, clk.Now())
		q, err := Open(Options{Dir: dir, Courier: delivered, Now: clk.Now,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		q.RunOnce(context.Background()) // nothing is due; a first look
		b.Run("deferred="+strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				deliverOne(b, q)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/delivery")
		})
		q.Close()
		os.RemoveAll(dir)
	}
}

// BenchmarkOpenDeferred measures Open on a spool of 100k and 1M deferred
// messages (on the real disk, page cache warm after writing it): its
// time, and the heap the open queue holds, per message. Set
// SMTPKIT_BENCH_OPEN to a list of sizes to change them ("100000"), and
// SMTPKIT_BENCH_SPOOL to a directory to keep the spools in between runs.
func BenchmarkOpenDeferred(b *testing.B) {
	sizes := []int{100000, 1000000}
	if s := os.Getenv("SMTPKIT_BENCH_OPEN"); s != "" {
		sizes = nil
		for _, f := range strings.Fields(s) {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		clk := newClock()
		dir := benchDir(b, false)
		if keep := os.Getenv("SMTPKIT_BENCH_SPOOL"); keep != "" {
			// A spool kept between runs (to compare builds on one spool).
			dir = filepath.Join(keep, strconv.Itoa(n))
		}
		if _, err := os.Stat(filepath.Join(dir, "env")); err != nil {
			writeDeferred(b, dir, n, clk.Now())
		}
		// "prefixes": no snapshot, every env file's prefix is read (a
		// start after a crash); "snapshot": after a clean Close.
		for _, mode := range []string{"prefixes", "snapshot"} {
			b.Run("deferred="+strconv.Itoa(n)+"/"+mode, func(b *testing.B) {
				for range b.N {
					if mode == "prefixes" {
						os.Remove(filepath.Join(dir, snapName))
					}
					openMeasured(b, dir, n, clk)
				}
			})
		}
		if os.Getenv("SMTPKIT_BENCH_SPOOL") == "" {
			os.RemoveAll(dir)
		}
	}
}

// openMeasured opens the spool at dir (n messages) and reports the time
// Open took, the heap it holds and the process's RSS; then checks that
// List sees every message, and closes the queue (which writes the
// snapshot).
func openMeasured(b *testing.B, dir string, n int, clk *clock) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	q, err := Open(Options{Dir: dir, Courier: delivered, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(took.Seconds(), "s/open")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "heap-B/msg")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(rss())/(1<<20), "rss-MiB")
	q.mu.Lock()
	got := q.idx.len() + len(q.msgs)
	q.mu.Unlock()
	if got != n {
		b.Fatalf("the queue holds %d messages, want %d", got, n)
	}
	if err := q.Close(); err != nil {
		b.Fatal(err)
	}
}

// rss is the process's resident set size in bytes (Linux), 0 if unknown.
func rss() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestDepthSmall runs the benchmarks' code at a small scale: 2,000
// deferred messages written directly are indexed by Open without being
// decoded, a fresh message is delivered past them with a pass that pops
// one item, and every one of them is listed and, when due, delivered
// within ActiveLimit.
func TestDepthSmall(t *testing.T) {
	const n = 2000
	clk := newClock()
	dir := t.TempDir()
	writeDeferred(t, dir, n, clk.Now())
	var q *Queue
	maxActive := 0
	count := courierFunc(func(ctx context.Context, d *Attempt) []Result {
		q.mu.Lock()
		maxActive = max(maxActive, len(q.msgs))
		q.mu.Unlock()
		return delivered(ctx, d)
	})
	q, err := Open(Options{Dir: dir, Courier: count, Now: clk.Now, ActiveLimit: 300, Concurrency: 50,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	q.mu.Lock()
	active, indexed := len(q.msgs), q.idx.len()
	q.mu.Unlock()
	if active != 0 || indexed != n {
		t.Fatalf("after Open: %d decoded, %d indexed; want 0 and %d", active, indexed, n)
	}
	for range 20 {
		deliverOne(t, q)
	}
	q.mu.Lock()
	active, heapLen := len(q.msgs), len(q.tl)
	q.mu.Unlock()
	if active != 0 || heapLen != 0 {
		t.Fatalf("after the fresh deliveries: %d in memory, %d items; want 0 and 0", active, heapLen)
	}
	if got := len(q.List()); got != n {
		t.Fatalf("List: %d, want %d", got, n)
	}
	checkCounts(t, q)
	clk.Advance(time.Hour)
	if got := q.RunOnce(ctx); got != n {
		t.Fatalf("%d attempts when due, want %d", got, n)
	}
	if maxActive > 300 {
		t.Errorf("%d messages in memory at once, ActiveLimit 300", maxActive)
	}
	if got := len(q.List()); got != 0 {
		t.Fatalf("%d left", got)
	}
}
