package queue

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the log lines containing every one of words.
func (l *logBuf) lines(words ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		ok := line != ""
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// TestPossibleDuplicateIsLogged: an attempt that lost the connection after
// the end of data (Result.PossibleDuplicate) is deferred, and it and the
// retry that delivers are logged with possible_duplicate=true; the mark
// survives a restart.
func TestPossibleDuplicateIsLogged(t *testing.T) {
	var attempts int
	var mu sync.Mutex
	c := courierFunc(func(_ context.Context, d *Attempt) []Result {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		out := make([]Result, len(d.Recipients))
		for i, a := range d.Recipients {
			out[i] = Result{Rcpt: a}
			if attempts == 1 {
				out[i] = Result{Rcpt: a, Err: temp, PossibleDuplicate: true}
			}
		}
		return out
	})
	logs := &logBuf{}
	e := open(t, c, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	id := enqueue(t, e.q, "alice@example.org", "bob@example.net")
	e.q.RunOnce(context.Background())
	if got := logs.lines("delivery deferred", "possible_duplicate=true"); len(got) != 1 {
		t.Errorf("deferral logged as a possible duplicate %d times, want 1", len(got))
	}
	env, err := os.ReadFile(e.q.dir.env(id))
	if err != nil || !strings.Contains(string(env), `"maybe_delivered": true`) {
		t.Errorf("the mark is not in the envelope (%v):\n%s", err, env)
	}
	e.clock.Advance(time.Hour)
	e.q.RunOnce(context.Background())
	if got := logs.lines("delivered", "msgid="+id, "possible_duplicate=true"); len(got) != 1 {
		t.Errorf("the retry that delivered was logged as a possible duplicate %d times, want 1:\n%s", len(got), logs.b.String())
	}
	if got := logs.lines("possible_duplicate=true"); len(got) != 2 {
		t.Errorf("%d possible-duplicate lines, want 2", len(got))
	}
}

// TestUnsavedDeliveryIsAPossibleDuplicate: when the state change that
// marks a recipient delivered cannot be written, a restart delivers it
// again: the failure is logged as a possible duplicate.
func TestUnsavedDeliveryIsAPossibleDuplicate(t *testing.T) {
	ffs := &faultFS{}
	logs := &logBuf{}
	rec := &recorder{}
	e := open(t, courierFunc(func(ctx context.Context, d *Attempt) []Result {
		if d.Domain == "later.example" {
			return allTemporary(d.Recipients, temp)
		}
		return rec.Deliver(ctx, d)
	}), func(o *Options) {
		o.FS = ffs
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
		o.Concurrency = 1 // one attempt after the other
	})
	enqueue(t, e.q, "alice@example.org", "carol@example.net", "dave@later.example")
	ffs.set(func(op, path string) error {
		if op == "rename" && under(path, "env") {
			return &os.PathError{Op: op, Path: path, Err: syscall.ENOSPC}
		}
		return nil
	})
	e.q.RunOnce(context.Background()) // carol delivered, dave deferred: the env rewrite fails
	got := logs.lines("saving state", "possible_duplicate=true", "carol@example.net")
	if len(got) == 0 {
		t.Errorf("the unsaved delivery to carol is not logged as a possible duplicate:\n%s", logs.b.String())
	}
	if bad := logs.lines("saving state", "possible_duplicate=true", "dave@later.example"); len(bad) != 0 {
		t.Errorf("the deferred recipient is logged as a possible duplicate: %v", bad)
	}
}
