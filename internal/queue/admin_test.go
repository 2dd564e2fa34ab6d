package queue

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestHoldReleaseDeleteFlush(t *testing.T) {
	rec := &recorder{script: []error{temp, temp}}
	e := open(t, rec, nil)
	held := enqueue(t, e.q, "alice@example.org", "bob@example.net")
	gone := enqueue(t, e.q, "alice@example.org", "carol@example.net")
	if err := e.q.Hold(held); err != nil {
		t.Fatal(err)
	}
	if err := e.q.Retry(held); err == nil {
		t.Error("Retry of a held message succeeded")
	}
	if err := e.q.Delete(gone); err != nil {
		t.Fatal(err)
	}
	if err := e.q.Delete(gone); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}
	for _, p := range []string{filepath.Join(e.dir, "msg", gone), filepath.Join(e.dir, "env", gone+".json")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists", p)
		}
	}
	if n := e.q.RunOnce(ctx); n != 0 {
		t.Fatalf("%d attempts while held/deleted", n)
	}
	// Hold is on disk.
	e.q.Close()
	q, err := Open(Options{Dir: e.dir, Courier: rec, Now: e.clock.Now, Bounce: e.bounces.take})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if l := q.List(); len(l) != 1 || !l[0].Held {
		t.Fatalf("after reopen: %+v", l)
	}
	e.clock.Advance(10 * 24 * time.Hour) // a held message does not expire while held
	if n := q.RunOnce(ctx); n != 0 || len(e.bounces.all()) != 0 {
		t.Fatalf("held message attempted (%d) or bounced", n)
	}
	if err := q.Release(held); err != nil {
		t.Fatal(err)
	}
	// After release it gets its attempt; past MaxAge, a temporary failure expires it.
	if n := q.RunOnce(ctx); n != 1 || len(e.bounces.all()) != 1 {
		t.Fatalf("after release: %d attempts, %d bounces", n, len(e.bounces.all()))
	}

	// Flush and Retry make deferred recipients due now.
	id := enqueue(t, q, "alice@example.org", "dave@example.net")
	q.RunOnce(ctx) // temp failure: deferred for 5m
	if n := q.RunOnce(ctx); n != 0 {
		t.Fatal("retried early")
	}
	q.Flush()
	if n := q.RunOnce(ctx); n != 1 || state(t, q, id) != nil {
		t.Fatalf("flush: %d attempts, state %+v", n, state(t, q, id))
	}
	for _, f := range []func(string) error{q.Retry, q.Hold, q.Release, q.Delete} {
		if err := f("0123456789abcdef01234567"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown id: %v", err)
		}
		if err := f("../../etc/passwd"); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("bad id: %v", err)
		}
	}
	if _, err := q.Show("nope"); err == nil {
		t.Error("Show of a bad id")
	}
}

func TestRetryOne(t *testing.T) {
	rec := &recorder{script: []error{temp, temp}}
	e := open(t, rec, nil)
	a := enqueue(t, e.q, "alice@example.org", "a@example.net")
	b := enqueue(t, e.q, "alice@example.org", "b@example.net")
	e.q.RunOnce(ctx)
	if err := e.q.Retry(a); err != nil {
		t.Fatal(err)
	}
	if n := e.q.RunOnce(ctx); n != 1 || state(t, e.q, a) != nil || state(t, e.q, b) == nil {
		t.Fatalf("retry: %d attempts", n)
	}
}

// TestAbandonedAttempt: a delivery cancelled by shutdown changes nothing.
func TestAbandonedAttempt(t *testing.T) {
	g := newGate()
	e := open(t, g, nil)
	id := enqueue(t, e.q, "alice@example.org", "bob@example.net")
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan int)
	go func() { done <- e.q.RunOnce(cctx) }()
	<-g.entered
	if st := state(t, e.q, id); !st[0].InFlight {
		t.Errorf("not shown in flight: %+v", st)
	}
	cancel()
	<-done
	st := state(t, e.q, id)
	if len(st) != 1 || st[0].State != Queued || st[0].Attempts != 0 || st[0].InFlight {
		t.Fatalf("state after an abandoned attempt: %+v", st)
	}
}

// TestRun drives the real scheduler loop: a commit wakes it, and it
// returns when its context ends.
func TestRun(t *testing.T) {
	delivered := make(chan string, 1)
	e := open(t, courierFunc(func(ctx context.Context, d *Attempt) []Result {
		delivered <- d.Recipients[0]
		return []Result{{Rcpt: d.Recipients[0]}}
	}), func(o *Options) { o.Now = time.Now })
	rctx, cancel := context.WithCancel(ctx)
	stopped := make(chan error)
	go func() { stopped <- e.q.Run(rctx) }()
	enqueue(t, e.q, "alice@example.org", "bob@example.net")
	if got := <-delivered; got != "bob@example.net" {
		t.Fatal(got)
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}
