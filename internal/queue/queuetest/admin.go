package queuetest

// admin.go: the conformance tests of the operator's commands, the
// two-phase commit, DSN parameters, restarts and the Run loop.

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

func testHoldRelease(t *testing.T, h *harness) {
	h.courier.Script("bob@dest.example", temp("later"), nil)
	id := h.send(h.to("bob@dest.example"))
	if err := h.q.Hold(h.ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := h.runOnce(); n != 0 {
		t.Fatalf("held message attempted %d times", n)
	}
	if l := h.list(); len(l) != 1 || !l[0].Held {
		t.Fatalf("list of a held message: %+v", l)
	}
	if err := h.q.Retry(h.ctx, id); err == nil {
		t.Error("Retry of a held message succeeded")
	}
	if err := h.q.Release(h.ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := h.runOnce(); n != 1 {
		t.Fatalf("released message: %d attempts", n)
	}
	if r := h.rcpt(id, "bob@dest.example"); r.State != queue.Deferred {
		t.Fatalf("after 451: %+v", r)
	}
	if err := h.q.Retry(h.ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := h.runOnce(); n != 1 {
		t.Fatalf("after Retry: %d attempts", n)
	}
	if l := h.list(); len(l) != 0 {
		t.Errorf("queue: %+v", l)
	}
	// Flush makes every deferred recipient due.
	h.courier.Script("x@dest.example", temp("later"), nil)
	h.courier.Script("y@other.example", temp("later"), nil)
	h.send(h.to("x@dest.example"))
	h.send(h.to("y@other.example"))
	h.runOnce()
	if err := h.q.Flush(h.ctx); err != nil {
		t.Fatal(err)
	}
	if n := h.runOnce(); n != 2 {
		t.Errorf("after Flush: %d attempts, want 2", n)
	}
	for _, op := range []func(context.Context, string) error{h.q.Hold, h.q.Release, h.q.Retry, h.q.Delete} {
		if err := op(h.ctx, "000000000000000000000000"); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("operation on an unknown id: %v, want ErrNotFound", err)
		}
	}
}

func testDeleteListShow(t *testing.T, h *harness) {
	h.courier.Script("bob@dest.example", temp("later"))
	env := h.to("bob@dest.example", "carol@dest.example")
	env.Meta = queue.Meta{AuthUser: "alice", ReceivedFrom: "192.0.2.7:4711", Relay: "auth", EightBit: true}
	h.courier.Script("carol@dest.example", nil)
	id := h.send(env)
	h.clock.Advance(time.Second)
	id2 := h.send(h.to("bob@dest.example"))
	h.runOnce()
	l := h.list()
	if len(l) != 2 || l[0].ID != id || l[1].ID != id2 {
		t.Fatalf("list: %+v, want %s then %s", l, id, id2)
	}
	if l[0].From != "alice@sender.example" || l[0].Size != int64(len(testBody)) || len(l[0].Recipients) != 2 {
		t.Errorf("summary %+v", l[0])
	}
	d, err := h.q.Show(h.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Meta.AuthUser != "alice" || d.Meta.ReceivedFrom != "192.0.2.7:4711" || !d.Meta.EightBit || d.Meta.Relay != "auth" {
		t.Errorf("show meta %+v", d.Meta)
	}
	if !strings.HasPrefix(d.Headers, "From: Alice") || !strings.HasSuffix(d.Headers, "Message-ID: <conf-1@sender.example>\r\n") {
		t.Errorf("show headers %q", d.Headers)
	}
	if want := l[0].Arrival.Add(h.opts.MaxAge); !d.Expires.Equal(want) {
		t.Errorf("expires %v, want %v", d.Expires, want)
	}
	states := map[string]queue.State{}
	for _, r := range d.Recipients {
		states[r.Addr] = r.State
	}
	if states["bob@dest.example"] != queue.Deferred || states["carol@dest.example"] != queue.Delivered {
		t.Errorf("recipient states %v", states)
	}
	if err := h.q.Delete(h.ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := h.q.Show(h.ctx, id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Show of a deleted message: %v", err)
	}
	if err := h.q.Delete(h.ctx, id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}
	if l := h.list(); len(l) != 1 || l[0].ID != id2 {
		t.Errorf("list after delete: %+v", l)
	}
	h.clock.Advance(h.opts.RetryMax)
	before := len(h.courier.To("bob@dest.example"))
	h.runOnce()
	for _, d := range h.courier.Attempts()[before:] {
		if d.Attempt.ID == id {
			t.Errorf("deleted message attempted: %+v", d.Attempt)
		}
	}
	if len(h.bounceTo("alice@sender.example")) != 0 {
		t.Error("a deleted message bounced")
	}
	if _, err := h.q.Show(h.ctx, "not-an-id"); err == nil {
		t.Error("Show of an invalid id succeeded")
	}
}

func testPrepareWithdraw(t *testing.T, h *harness) {
	w, err := h.q.Begin(h.to("bob@dest.example"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, testBody)
	id, err := w.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if n := h.runOnce(); n != 0 {
		t.Fatalf("a prepared message was attempted (%d)", n)
	}
	if err := w.Withdraw(); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Hour)
	if n := h.runOnce(); n != 0 {
		t.Fatalf("a withdrawn message was attempted (%d)", n)
	}
	if _, err := h.q.Show(h.ctx, id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Show of a withdrawn message: %v", err)
	}
	// Abort after Prepare withdraws too; Abort before it leaves nothing.
	w, _ = h.q.Begin(h.to("bob@dest.example"))
	io.WriteString(w, testBody)
	w.Prepare()
	w.Abort()
	w, _ = h.q.Begin(h.to("bob@dest.example"))
	io.WriteString(w, testBody)
	w.Abort()
	h.clock.Advance(time.Hour)
	if n := h.runOnce(); n != 0 || len(h.list()) != 0 {
		t.Fatalf("aborted messages: %d attempts, list %+v", n, h.list())
	}
	// Prepare, AddLocal, Publish: delivered, the local mailbox through
	// the local courier with the bytes as received (no prepended fields).
	w, _ = h.q.Begin(h.to("bob@dest.example"))
	if err := w.Prepend("DKIM-Signature: v=1; test\r\n"); err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, testBody)
	id, err = w.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddLocal([]string{"box@local.example"}); err != nil {
		t.Fatal(err)
	}
	w.Publish()
	w.Abort() // after Publish: nothing
	if n := h.runOnce(); n != 2 {
		t.Fatalf("published message: %d attempts, want 2", n)
	}
	remote, local := h.courier.To("bob@dest.example"), h.courier.To("box@local.example")
	if len(remote) != 1 || remote[0].Body != "DKIM-Signature: v=1; test\r\n"+testBody || remote[0].Attempt.Prepend == "" {
		t.Errorf("remote attempt %+v", remote)
	}
	if len(local) != 1 || local[0].Body != testBody || local[0].Attempt.Size != int64(len(testBody)) || local[0].Attempt.ID != id {
		t.Errorf("local attempt %+v", local)
	}
}

func testDSNParameters(t *testing.T, h *harness) {
	env := h.to("bob@dest.example", "nobody@dest.example")
	orcpt := smtp.ORCPT{Type: "rfc822", Addr: "Nobody@Orig.example"}
	success, _ := smtp.ParseNotify("SUCCESS,FAILURE")
	env.DSN = []smtp.RcptDSN{{Notify: success}, {ORCPT: orcpt}}
	env.Meta.Ret, env.Meta.EnvID = smtp.RetFull, "env-42"
	h.courier.Script("nobody@dest.example", perm("no such user"))
	h.send(env)
	h.runOnce()
	got := h.courier.To("bob@dest.example")
	if len(got) != 1 {
		t.Fatalf("attempts %+v", got)
	}
	a := got[0].Attempt
	if a.Ret != smtp.RetFull || a.EnvID != "env-42" || len(a.DSN) != 2 {
		t.Fatalf("attempt DSN parameters: ret %q envid %q dsn %+v", a.Ret, a.EnvID, a.DSN)
	}
	byRcpt := map[string]smtp.RcptDSN{}
	for i, r := range a.Recipients {
		byRcpt[r] = a.DSN[i]
	}
	if byRcpt["bob@dest.example"].Notify != success || byRcpt["nobody@dest.example"].ORCPT != orcpt {
		t.Errorf("per-recipient DSN %+v", byRcpt)
	}
	dsns := h.bounceTo("alice@sender.example")
	if len(dsns) != 1 {
		t.Fatalf("%d DSNs, want 1", len(dsns))
	}
	b := dsns[0].Body
	for _, want := range []string{"Original-Envelope-Id: env-42", "Original-Recipient: rfc822;Nobody@Orig.example",
		"Hello from the conformance suite."} { // RET=FULL: the whole message
		if !strings.Contains(b, want) {
			t.Errorf("DSN lacks %q:\n%s", want, b)
		}
	}
}

func testNotifyNever(t *testing.T, h *harness) {
	never, _ := smtp.ParseNotify("NEVER")
	env := h.to("nobody@dest.example")
	env.DSN = []smtp.RcptDSN{{Notify: never}}
	h.courier.Script("nobody@dest.example", perm("no such user"))
	h.send(env)
	h.runOnce()
	if d := h.bounceTo("alice@sender.example"); len(d) != 0 {
		t.Errorf("NOTIFY=NEVER got a DSN: %+v", d)
	}
	if l := h.list(); len(l) != 0 {
		t.Errorf("queue: %+v", l)
	}
	// A delay warning for a recipient that wants delay notices.
	h.opts.DelayWarning = 30 * time.Minute
	h.reopen()
	h.courier.Script("slow@dest.example", temp("later"))
	h.send(h.to("slow@dest.example"))
	h.runOnce()
	h.clock.Advance(h.opts.DelayWarning)
	h.runOnce()
	h.clock.Advance(time.Minute)
	h.runOnce()
	var warnings int
	for _, d := range h.bounceTo("alice@sender.example") {
		if strings.Contains(d.Body, "Action: delayed") {
			warnings++
		}
	}
	if warnings != 1 {
		t.Errorf("%d delay warnings, want 1", warnings)
	}
}

func testRestart(t *testing.T, h *harness) {
	h.courier.Script("bob@dest.example", temp("later"), nil)
	env := h.to("bob@dest.example")
	env.Meta.RequireTLS = true
	id := h.send(env)
	held := h.send(h.to("carol@dest.example"))
	if err := h.q.Hold(h.ctx, held); err != nil {
		t.Fatal(err)
	}
	h.runOnce()
	before := h.rcpt(id, "bob@dest.example")
	h.reopen()
	after := h.rcpt(id, "bob@dest.example")
	if after.State != queue.Deferred || after.Attempts != 1 || !after.NextAttempt.Equal(before.NextAttempt) || after.LastReply != before.LastReply {
		t.Fatalf("after restart %+v, before %+v", after, before)
	}
	d, err := h.q.Show(h.ctx, held)
	if err != nil || !d.Held {
		t.Fatalf("held message after restart: %+v %v", d.Summary, err)
	}
	if n := h.runOnce(); n != 0 {
		t.Fatalf("after restart, before the due time: %d attempts", n)
	}
	h.clock.Advance(h.opts.RetryMin)
	if n := h.runOnce(); n != 1 {
		t.Fatalf("after restart at the due time: %d attempts", n)
	}
	got := h.courier.To("bob@dest.example")
	if len(got) != 2 || !got[1].Attempt.RequireTLS || got[1].Body != testBody {
		t.Errorf("attempts after restart %+v", got)
	}
	if l := h.list(); len(l) != 1 || l[0].ID != held {
		t.Errorf("list: %+v", l)
	}
}

// testPreparedRestart: a message prepared (durable, 250 may have been
// sent) whose Publish never came — the process died in between — is
// delivered after a restart.
func testPreparedRestart(t *testing.T, h *harness) {
	w, err := h.q.Begin(h.to("bob@dest.example"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, testBody)
	id, err := w.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	h.reopen() // no Publish, no Withdraw: as after a crash
	if n := h.runOnce(); n != 1 {
		t.Fatalf("after restart: %d attempts, want 1", n)
	}
	if got := h.courier.To("bob@dest.example"); len(got) != 1 || got[0].Attempt.ID != id || got[0].Body != testBody {
		t.Errorf("attempts %+v", got)
	}
}

// testRunLoop: the scheduler's own loop (Run, not RunOnce) delivers a
// message committed while it runs, and returns once its context ends.
func testRunLoop(t *testing.T, h *harness) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.q.Run(ctx) }()
	id := h.send(h.to("bob@dest.example"))
	deadline := time.Now().Add(10 * time.Second)
	for len(h.courier.To("bob@dest.example")) == 0 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("Run did not deliver a message committed while it ran within 10s")
		}
		time.Sleep(5 * time.Millisecond) // polling for the outcome, bounded by the deadline
	}
	for len(h.list()) != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // the result is recorded after the attempt returns
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if got := h.courier.To("bob@dest.example"); len(got) != 1 || got[0].Attempt.ID != id {
		t.Errorf("attempts %+v", got)
	}
	if l := h.list(); len(l) != 0 {
		t.Errorf("queue after Run delivered: %+v", l)
	}
}
