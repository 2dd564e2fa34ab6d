package queue

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
)

// prepare begins and prepares testMessage to rcpts.
func prepare(t *testing.T, q *Queue, rcpts ...string) (*Writer, string) {
	t.Helper()
	w, err := q.Begin(envelopeOf("alice@example.org", rcpts, Meta{}))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, testMessage)
	id, err := w.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	return w, id
}

// reopen opens e's spool again (as after a restart) with courier c.
func reopen(t *testing.T, e *env, c, local Courier) *Queue {
	t.Helper()
	e.q.Close()
	q, err := Open(Options{Dir: e.dir, Courier: c, Local: local, Bounce: e.bounces.take, Now: e.clock.Now,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func TestPreparedIsNotDeliveredBeforePublish(t *testing.T) {
	rec := &recorder{}
	e := open(t, rec, nil)
	w, id := prepare(t, e.q, "bob@example.net")
	if n := e.q.RunOnce(context.Background()); n != 0 || rec.count() != 0 {
		t.Fatalf("a prepared message was attempted (%d attempts)", n)
	}
	w.Publish()
	if n := e.q.RunOnce(context.Background()); n != 1 {
		t.Fatalf("%d attempts after Publish, want 1", n)
	}
	if s := state(t, e.q, id); s != nil {
		t.Errorf("message still queued after delivery: %+v", s)
	}
}

func TestAddLocalQueuesForTheLocalCourier(t *testing.T) {
	remote, local := &recorder{}, &recorder{}
	e := open(t, remote, func(o *Options) { o.Local = local })
	w, _ := prepare(t, e.q, "bob@example.net")
	if err := w.AddLocal([]string{"carol@example.org", "dave@example.org"}); err != nil {
		t.Fatal(err)
	}
	// The change is durable: a restart (before Publish) finds the local
	// recipients, marked local, and delivers them through Local.
	remote2, local2 := &recorder{}, &recorder{}
	q := reopen(t, e, remote2, local2)
	q.RunOnce(context.Background())
	if remote2.count() != 1 || !slices.Equal(remote2.attempts[0].d.Recipients, []string{"bob@example.net"}) {
		t.Errorf("remote attempts %+v, want one for bob", remote2.attempts)
	}
	if local2.count() != 1 || !slices.Equal(local2.attempts[0].d.Recipients, []string{"carol@example.org", "dave@example.org"}) {
		t.Errorf("local attempts %+v, want one for carol and dave", local2.attempts)
	}
	if local2.count() == 1 && local2.attempts[0].body != testMessage {
		t.Errorf("local courier read %q", local2.attempts[0].body)
	}
	if len(q.List()) != 0 {
		t.Errorf("queue not empty after both deliveries: %+v", q.List())
	}
}

func TestAddLocalWithoutLocalCourier(t *testing.T) {
	e := open(t, &recorder{}, nil)
	w, id := prepare(t, e.q, "bob@example.net")
	if err := w.AddLocal([]string{"carol@example.org"}); err == nil {
		t.Fatal("AddLocal succeeded without a local courier")
	}
	if err := w.Withdraw(); err != nil {
		t.Fatal(err)
	}
	if s := state(t, e.q, id); s != nil {
		t.Errorf("withdrawn message listed: %+v", s)
	}
	q := reopen(t, e, &recorder{}, nil)
	if len(q.List()) != 0 {
		t.Errorf("withdrawn message back after a restart: %+v", q.List())
	}
}

func TestAbortAfterPrepareWithdraws(t *testing.T) {
	rec := &recorder{}
	e := open(t, rec, nil)
	w, _ := prepare(t, e.q, "bob@example.net")
	w.Abort()
	e.q.RunOnce(context.Background())
	if rec.count() != 0 || len(e.q.List()) != 0 {
		t.Errorf("aborted message delivered or listed")
	}
}
