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

// Describe is a one-line account of a delivery, for failure messages.
func (d Delivery) String() string {
	return fmt.Sprintf("%s %s→%v", d.Attempt.ID, d.Attempt.From, d.Attempt.Recipients)
}
