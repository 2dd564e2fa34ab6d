// Package queuetest is the conformance suite of queue.Backend: the same
// tests run against every back-end (the files in internal/queue, the
// database in internal/pgqueue) with a fake Courier that answers each
// recipient as the test scripts it and a clock the test moves by hand.
// The DSNs a back-end produces are queued in it and delivered through the
// same fake Courier, so a test sees them as the sender would.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// Options are what the suite gives a back-end: its couriers, clock and
// schedule. An Opener must honour all of them.
type Options struct {
	Courier, Local queue.Courier
	Now            func() time.Time
	RetryMin       time.Duration
	RetryMax       time.Duration
	MaxAge         time.Duration
	DelayWarning   time.Duration
	Hostname       string
}

// Opener opens the back-end on its storage; called again after Close it
// reopens the same storage (the restart test).
type Opener func(t *testing.T, o Options) queue.Backend

// NewStore returns an Opener on fresh, empty storage for one test.
type NewStore func(t *testing.T) Opener

// Run runs every conformance test against the back-end newStore makes.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"Delivered", testDelivered},
		{"DeferredThenRetried", testDeferred},
		{"FailedBounces", testFailed},
		{"Expiry", testExpiry},
		{"HoldReleaseRetry", testHoldRelease},
		{"DeleteListShow", testDeleteListShow},
		{"PrepareWithdraw", testPrepareWithdraw},
		{"DSNParameters", testDSNParameters},
		{"NotifyNever", testNotifyNever},
		{"Restart", testRestart},
		{"PreparedSurvivesRestart", testPreparedRestart},
		{"RunLoop", testRunLoop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newStore(t))
			tt.fn(t, h)
		})
	}
}

// Clock is a clock the tests move by hand.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at a fixed instant.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Delivery is one attempt the Courier saw.
type Delivery struct {
	Attempt queue.Attempt
	Body    string
}

// Courier answers each recipient with Answer (nil: delivered) and records
// every attempt with the bytes it read.
type Courier struct {
	mu       sync.Mutex
	answer   map[string][]error // per recipient, consumed in order; the last one repeats
	attempts []Delivery
}

// Script sets the answers to rcpt, in order; the last one repeats.
func (c *Courier) Script(rcpt string, errs ...error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.answer == nil {
		c.answer = make(map[string][]error)
	}
	c.answer[rcpt] = errs
}

// Deliver implements queue.Courier.
func (c *Courier) Deliver(_ context.Context, d *queue.Attempt) []queue.Result {
	var body []byte
	rc, err := d.Open()
	if err == nil {
		body, err = io.ReadAll(rc)
		rc.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts = append(c.attempts, Delivery{Attempt: *d, Body: string(body)})
	out := make([]queue.Result, len(d.Recipients))
	for i, a := range d.Recipients {
		var e error
		if err != nil {
			e = err
		} else if s := c.answer[a]; len(s) > 0 {
			e = s[0]
			if len(s) > 1 {
				c.answer[a] = s[1:]
			}
		}
		out[i] = queue.Result{Rcpt: a, Err: e, Remote: queue.Remote{Host: "mx." + d.Domain, Addr: netip.MustParseAddr("192.0.2.1")},
			Reply: replyOf(e)}
	}
	return out
}

func replyOf(err error) smtp.Reply {
	var se *smtp.Error
	switch {
	case err == nil:
		return smtp.R(smtp.CodeOK, smtp.EnhOK, "queued")
	case errors.As(err, &se):
		return se.Reply
	}
	return smtp.Reply{}
}

// Attempts returns the attempts so far.
func (c *Courier) Attempts() []Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.attempts)
}

// To returns the attempts that named rcpt.
func (c *Courier) To(rcpt string) []Delivery {
	var out []Delivery
	for _, d := range c.Attempts() {
		if slices.Contains(d.Attempt.Recipients, rcpt) {
			out = append(out, d)
		}
	}
	return out
}

// harness is one test's back-end, courier and clock.
type harness struct {
	t       *testing.T
	open    Opener
	opts    Options
	courier *Courier
	clock   *Clock
	q       queue.Backend
	ctx     context.Context
}

func newHarness(t *testing.T, open Opener) *harness {
	h := &harness{t: t, open: open, courier: &Courier{}, clock: NewClock(), ctx: context.Background()}
	h.opts = Options{Courier: h.courier, Local: h.courier, Now: h.clock.Now, RetryMin: 10 * time.Minute,
		RetryMax: time.Hour, MaxAge: 24 * time.Hour, Hostname: "mx.test.example"}
	h.q = open(t, h.opts)
	t.Cleanup(func() { h.q.Close() })
	return h
}

// reopen closes the back-end and opens it again on the same storage.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.q.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.q = h.open(h.t, h.opts)
}

const testBody = "From: Alice <alice@sender.example>\r\nTo: bob@dest.example\r\nSubject: conformance\r\nMessage-ID: <conf-1@sender.example>\r\n\r\nHello from the conformance suite.\r\n"

func addr(t *testing.T, s string) smtp.Address {
	t.Helper()
	a, err := smtp.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// send commits a message from alice@sender.example for env.
func (h *harness) send(env queue.Envelope) string {
	h.t.Helper()
	env.From = addr(h.t, "alice@sender.example")
	return h.sendFrom(env)
}

// sendFrom commits a message for env as it is.
func (h *harness) sendFrom(env queue.Envelope) string {
	h.t.Helper()
	w, err := h.q.Begin(env)
	if err != nil {
		h.t.Fatalf("Begin: %v", err)
	}
	if _, err := io.WriteString(w, testBody); err != nil {
		h.t.Fatalf("Write: %v", err)
	}
	id, err := w.Commit()
	if err != nil {
		h.t.Fatalf("Commit: %v", err)
	}
	if !queue.ValidID(id) {
		h.t.Fatalf("Commit returned id %q", id)
	}
	return id
}

func (h *harness) to(rcpts ...string) queue.Envelope {
	env := queue.Envelope{}
	for _, r := range rcpts {
		env.To = append(env.To, addr(h.t, r))
	}
	return env
}

func (h *harness) runOnce() int { return h.q.RunOnce(h.ctx) }

func (h *harness) list() []queue.Summary {
	h.t.Helper()
	l, err := h.q.List(h.ctx)
	if err != nil {
		h.t.Fatalf("List: %v", err)
	}
	return l
}

// rcpt returns the state of rcpt in message id, failing when it is absent.
func (h *harness) rcpt(id, rcpt string) queue.RcptStatus {
	h.t.Helper()
	for _, s := range h.list() {
		if s.ID != id {
			continue
		}
		for _, r := range s.Recipients {
			if r.Addr == rcpt {
				return r
			}
		}
	}
	h.t.Fatalf("%s of %s not in the queue: %+v", rcpt, id, h.list())
	return queue.RcptStatus{}
}

func temp(text string) error {
	return smtp.E(smtp.CodeLocalError, smtp.EnhSystem.Temp(), text)
}

func perm(text string) error {
	return smtp.E(smtp.CodeMailboxUnavail, smtp.EnhBadMailbox, text)
}

func testDelivered(t *testing.T, h *harness) {
	id := h.send(h.to("bob@dest.example", "carol@other.example"))
	if n := h.runOnce(); n != 2 {
		t.Fatalf("RunOnce made %d attempts, want 2 (one per domain)", n)
	}
	for _, rc := range []string{"bob@dest.example", "carol@other.example"} {
		got := h.courier.To(rc)
		if len(got) != 1 {
			t.Fatalf("%s: %d attempts, want 1", rc, len(got))
		}
		d := got[0]
		if d.Attempt.ID != id || d.Attempt.From != "alice@sender.example" || d.Body != testBody {
			t.Errorf("%s: attempt %+v body %q", rc, d.Attempt, d.Body)
		}
		if d.Attempt.Size != int64(len(testBody)) {
			t.Errorf("%s: Size %d, want %d", rc, d.Attempt.Size, len(testBody))
		}
	}
	if l := h.list(); len(l) != 0 {
		t.Errorf("queue after delivery: %+v", l)
	}
	if n := h.runOnce(); n != 0 {
		t.Errorf("a second RunOnce made %d attempts", n)
	}
}

func testDeferred(t *testing.T, h *harness) {
	h.courier.Script("bob@dest.example", temp("try later"), nil)
	id := h.send(h.to("bob@dest.example"))
	if n := h.runOnce(); n != 1 {
		t.Fatalf("first pass: %d attempts", n)
	}
	r := h.rcpt(id, "bob@dest.example")
	if r.State != queue.Deferred || r.Attempts != 1 {
		t.Fatalf("after 451: %+v", r)
	}
	if want := h.clock.Now().Add(h.opts.RetryMin); !r.NextAttempt.Equal(want) {
		t.Errorf("next attempt %v, want %v (RetryMin)", r.NextAttempt, want)
	}
	if !strings.Contains(r.LastReply, "try later") {
		t.Errorf("last reply %q", r.LastReply)
	}
	h.clock.Advance(h.opts.RetryMin - time.Second)
	if n := h.runOnce(); n != 0 {
		t.Fatalf("before the due time: %d attempts", n)
	}
	h.clock.Advance(time.Second)
	if n := h.runOnce(); n != 1 {
		t.Fatalf("at the due time: %d attempts", n)
	}
	if l := h.list(); len(l) != 0 {
		t.Errorf("queue after the retry delivered: %+v", l)
	}
	if got := len(h.courier.To("bob@dest.example")); got != 2 {
		t.Errorf("%d attempts in all, want 2", got)
	}
	// Backoff doubles: a second deferral waits twice RetryMin.
	h.courier.Script("dave@dest.example", temp("busy"), temp("busy"), nil)
	id = h.send(h.to("dave@dest.example"))
	h.runOnce()
	h.clock.Advance(h.opts.RetryMin)
	h.runOnce()
	r = h.rcpt(id, "dave@dest.example")
	if want := h.clock.Now().Add(2 * h.opts.RetryMin); r.Attempts != 2 || !r.NextAttempt.Equal(want) {
		t.Errorf("after two deferrals: %+v, want next %v", r, want)
	}
}

// bounceTo returns the DSNs delivered to the original sender.
func (h *harness) bounceTo(sender string) []Delivery {
	var out []Delivery
	for _, d := range h.courier.To(sender) {
		if d.Attempt.From == "" {
			out = append(out, d)
		}
	}
	return out
}

func testFailed(t *testing.T, h *harness) {
	h.courier.Script("nobody@dest.example", perm("no such user"))
	id := h.send(h.to("nobody@dest.example", "bob@dest.example"))
	h.runOnce()
	dsns := h.bounceTo("alice@sender.example")
	if len(dsns) != 1 {
		t.Fatalf("%d DSNs to the sender, want 1 (attempts: %+v)", len(dsns), h.courier.Attempts())
	}
	b := dsns[0].Body
	for _, want := range []string{"Final-Recipient: rfc822; nobody@dest.example", "Action: failed",
		"Status: " + string(smtp.EnhBadMailbox), "Remote-MTA: dns; mx.dest.example", "no such user",
		"Reporting-MTA: dns; mx.test.example", "Message-ID: <conf-1@sender.example>"} {
		if !strings.Contains(b, want) {
			t.Errorf("DSN lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(b, "Final-Recipient: rfc822; bob@dest.example") {
		t.Errorf("DSN names the delivered recipient:\n%s", b)
	}
	if l := h.list(); len(l) != 0 {
		t.Errorf("queue after delivery and bounce: %+v", l)
	}
	_ = id
	// A failure of the null sender's message never bounces (RFC 5321 §4.5.5).
	h.courier.Script("gone@dest.example", perm("no such user"))
	h.sendFrom(queue.Envelope{To: []smtp.Address{addr(t, "gone@dest.example")}})
	before := len(h.courier.Attempts())
	h.runOnce()
	if got := h.courier.Attempts()[before:]; len(got) != 1 {
		t.Errorf("a bounce's failure made attempts %+v, want only its own", got)
	}
	if l := h.list(); len(l) != 0 {
		t.Errorf("failed bounce still queued: %+v", l)
	}
}

func testExpiry(t *testing.T, h *harness) {
	h.courier.Script("slow@dest.example", temp("greylisted"))
	id := h.send(h.to("slow@dest.example"))
	for i := 0; i < 100 && len(h.list()) > 0 && len(h.bounceTo("alice@sender.example")) == 0; i++ {
		h.runOnce()
		h.clock.Advance(h.opts.RetryMax)
	}
	dsns := h.bounceTo("alice@sender.example")
	if len(dsns) != 1 {
		t.Fatalf("%d DSNs after expiry, want 1", len(dsns))
	}
	for _, want := range []string{"Action: failed", "Status: " + string(smtp.EnhExpired), "greylisted"} {
		if !strings.Contains(dsns[0].Body, want) {
			t.Errorf("expiry DSN lacks %q:\n%s", want, dsns[0].Body)
		}
	}
	last := h.courier.To("slow@dest.example")
	if len(last) == 0 {
		t.Fatal("no attempts")
	}
	// The last attempt is made at the expiry, not after it.
	if l := h.list(); len(l) != 0 {
		t.Errorf("expired message still queued: %+v", l)
	}
	_ = id
}

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

// Describe is a one-line account of a delivery, for failure messages.
func (d Delivery) String() string {
	return fmt.Sprintf("%s %s→%v", d.Attempt.ID, d.Attempt.From, d.Attempt.Recipients)
}
