package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"
)

var ctx = context.Background()

func TestTemporaryThenSuccess(t *testing.T) {
	rec := &recorder{script: []error{temp, nil}}
	e := open(t, rec, nil)
	id := enqueue(t, e.q, "alice@example.org", "bob@example.net")
	if n := e.q.RunOnce(ctx); n != 1 {
		t.Fatalf("first run: %d attempts", n)
	}
	st := state(t, e.q, id)
	if len(st) != 1 || st[0].State != Deferred || st[0].Attempts != 1 || !st[0].NextAttempt.Equal(e.clock.Now().Add(5*time.Minute)) ||
		!strings.Contains(st[0].LastReply, "451 4.7.1 try again later") || st[0].Status != "4.7.1" {
		t.Fatalf("after 4xx: %+v", st)
	}
	if n := e.q.RunOnce(ctx); n != 0 {
		t.Fatalf("retried before the backoff: %d", n)
	}
	e.clock.Advance(5*time.Minute - time.Second)
	if n := e.q.RunOnce(ctx); n != 0 {
		t.Fatalf("retried before the backoff: %d", n)
	}
	e.clock.Advance(time.Second)
	if n := e.q.RunOnce(ctx); n != 1 {
		t.Fatalf("second run: %d attempts", n)
	}
	if st := state(t, e.q, id); st != nil {
		t.Fatalf("delivered message still queued: %+v", st)
	}
	e.clock.Advance(24 * time.Hour)
	e.q.RunOnce(ctx)
	if rec.count() != 2 || len(e.bounces.all()) != 0 {
		t.Fatalf("%d attempts, %d bounces; want 2 and 0", rec.count(), len(e.bounces.all()))
	}
}

func TestPermanentFailureBouncesOnce(t *testing.T) {
	rec := &recorder{script: []error{perm}}
	e := open(t, rec, nil)
	id := enqueue(t, e.q, "alice@example.org", "bob@example.net")
	e.q.RunOnce(ctx)
	for range 3 {
		e.clock.Advance(time.Hour)
		e.q.Flush()
		e.q.RunOnce(ctx)
	}
	b := e.bounces.all()
	if len(b) != 1 || rec.count() != 1 {
		t.Fatalf("%d bounces after %d attempts, want 1 and 1", len(b), rec.count())
	}
	if b[0].To != "alice@example.org" || b[0].ID != id || b[0].Delayed {
		t.Errorf("bounce %+v", b[0])
	}
	checkDSN(t, b[0].Message, "Undelivered Mail Returned to Sender",
		"Final-Recipient: rfc822; bob@example.net", "Action: failed", "Status: 5.1.1",
		"Remote-MTA: dns; mx.example.net", "Diagnostic-Code: smtp; 550 5.1.1 no such user", "Subject: test")
	if state(t, e.q, id) != nil {
		t.Error("bounced message still queued")
	}
}

// checkDSN parses a DSN and checks it contains each of want.
func checkDSN(t *testing.T, msg []byte, subject string, want ...string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("Subject"); got != subject {
		t.Errorf("Subject %q, want %q", got, subject)
	}
	if mt, _, _ := mime.ParseMediaType(m.Header.Get("Content-Type")); mt != "multipart/report" {
		t.Errorf("Content-Type %q", mt)
	}
	for _, w := range want {
		if !bytes.Contains(msg, []byte(w+"\r\n")) {
			t.Errorf("DSN lacks %q:\n%s", w, msg)
		}
	}
}

func TestBackoffAndExpiry(t *testing.T) {
	rec := &recorder{script: make([]error, 100)}
	for i := range rec.script {
		rec.script[i] = errors.New("connection refused")
	}
	e := open(t, rec, func(o *Options) { o.MaxAge = 24 * time.Hour })
	start := e.clock.Now()
	id := enqueue(t, e.q, "alice@example.org", "bob@example.net")
	// 5m, 10m, 20m, 40m, 80m, 160m, then 4h, the last gap cut at the expiry.
	var attemptsAt []time.Duration
	for i := 0; i < 30 && state(t, e.q, id) != nil; i++ {
		if e.q.RunOnce(ctx) > 0 {
			attemptsAt = append(attemptsAt, e.clock.Now().Sub(start))
		}
		if st := state(t, e.q, id); st != nil {
			e.clock.Advance(st[0].NextAttempt.Sub(e.clock.Now()))
		}
	}
	var gaps []string
	for i := 1; i < len(attemptsAt); i++ {
		gaps = append(gaps, (attemptsAt[i] - attemptsAt[i-1]).String())
	}
	var want []string
	for total, n := time.Duration(0), 1; total < 24*time.Hour; n++ {
		d := min(5*time.Minute<<(n-1), 4*time.Hour, 24*time.Hour-total)
		total += d
		want = append(want, d.String())
	}
	if strings.Join(gaps, " ") != strings.Join(want, " ") {
		t.Errorf("retry gaps %v, want %v", gaps, want)
	}
	if last := attemptsAt[len(attemptsAt)-1]; last != 24*time.Hour {
		t.Errorf("last attempt at %v, want at expiry", last)
	}
	b := e.bounces.all()
	if len(b) != 1 {
		t.Fatalf("%d bounces, want 1", len(b))
	}
	checkDSN(t, b[0].Message, "Undelivered Mail Returned to Sender", "Action: failed", "Status: 5.4.7",
		"Diagnostic-Code: X-smtpkit; connection refused")
	e.clock.Advance(48 * time.Hour)
	e.q.Flush()
	e.q.RunOnce(ctx)
	if len(e.bounces.all()) != 1 || state(t, e.q, id) != nil {
		t.Error("expired message bounced again or stayed")
	}
}

func TestDelayWarningOnce(t *testing.T) {
	rec := &recorder{script: []error{temp, temp, temp, temp, temp, nil}}
	e := open(t, rec, func(o *Options) { o.DelayWarning = 30 * time.Minute; o.RetryMin = 10 * time.Minute })
	id := enqueue(t, e.q, "alice@example.org", "bob@example.net")
	for range 8 {
		e.q.RunOnce(ctx)
		e.clock.Advance(10 * time.Minute)
		e.q.Flush()
	}
	if state(t, e.q, id) != nil {
		t.Fatalf("not delivered: %+v", state(t, e.q, id))
	}
	b := e.bounces.all()
	if len(b) != 1 || !b[0].Delayed {
		t.Fatalf("bounces %+v, want one delay warning", b)
	}
	checkDSN(t, b[0].Message, "Delayed Mail (still being retried)", "Action: delayed", "Status: 4.7.1",
		"Will-Retry-Until: Thu, 06 Mar 2025 10:00:00 +0000")
}

func TestNullSenderNeverBounced(t *testing.T) {
	e := open(t, &recorder{script: []error{perm}}, func(o *Options) { o.DelayWarning = time.Minute })
	id := enqueue(t, e.q, "", "bob@example.net")
	e.q.RunOnce(ctx)
	if len(e.bounces.all()) != 0 || state(t, e.q, id) != nil {
		t.Fatalf("bounces %d, state %+v", len(e.bounces.all()), state(t, e.q, id))
	}
}

func TestBounceHandOffRetried(t *testing.T) {
	e := open(t, &recorder{script: []error{perm}}, nil)
	e.bounces.err = errors.New("disk full")
	id := enqueue(t, e.q, "alice@example.org", "bob@example.net")
	e.q.RunOnce(ctx)
	if st := state(t, e.q, id); len(st) != 1 || st[0].State != Failed {
		t.Fatalf("state %+v", st)
	}
	e.bounces.mu.Lock()
	e.bounces.err = nil
	e.bounces.mu.Unlock()
	e.q.RunOnce(ctx)
	if len(e.bounces.all()) != 0 {
		t.Fatal("hand-off retried before RetryMin")
	}
	e.clock.Advance(5 * time.Minute)
	e.q.RunOnce(ctx)
	if len(e.bounces.all()) != 1 || state(t, e.q, id) != nil {
		t.Fatalf("%d bounces, state %+v", len(e.bounces.all()), state(t, e.q, id))
	}
}

// TestDefaultBounceIsQueued: without Options.Bounce the DSN is queued
// from the null sender, and its own failure is dropped.
func TestDefaultBounceIsQueued(t *testing.T) {
	rec := &recorder{script: []error{perm, perm}}
	e := open(t, rec, func(o *Options) { o.Bounce = nil })
	enqueue(t, e.q, "alice@example.org", "bob@example.net")
	// The bounce is queued and, being due at once, attempted in the same run.
	e.q.RunOnce(ctx)
	if rec.count() != 2 || !strings.Contains(rec.attempts[1].body, "Action: failed") || rec.attempts[1].d.From != "" ||
		fmt.Sprint(rec.attempts[1].d.Recipients) != "[alice@example.org]" {
		t.Fatalf("bounce not delivered as a DSN from <>: %+v", rec.attempts)
	}
	if len(e.q.List()) != 0 {
		t.Fatalf("bounce of a bounce stayed: %+v", e.q.List())
	}
}

func TestMissingResultIsTemporary(t *testing.T) {
	e := open(t, courierFunc(func(ctx context.Context, d *Attempt) []Result {
		return []Result{{Rcpt: "other@example.net", Err: perm}}
	}), nil)
	id := enqueue(t, e.q, "alice@example.org", "bob@example.net")
	e.q.RunOnce(ctx)
	if st := state(t, e.q, id); len(st) != 1 || st[0].State != Deferred {
		t.Fatalf("state %+v", st)
	}
}

func TestUnknownErrorIsTemporary(t *testing.T) {
	e := open(t, &recorder{script: []error{fmt.Errorf("wrapped: %w", errors.New("boom"))}}, nil)
	id := enqueue(t, e.q, "alice@example.org", "bob@example.net")
	e.q.RunOnce(ctx)
	if st := state(t, e.q, id); len(st) != 1 || st[0].State != Deferred || st[0].Status != "4.0.0" {
		t.Fatalf("state %+v", st)
	}
}

// gate is a Courier that blocks every delivery until released and tracks
// how many run at once, in total and per domain.
type gate struct {
	entered chan *Attempt
	release chan struct{}

	mu        sync.Mutex
	active    int
	perDomain map[string]int
	maxActive int
	maxDomain int
}

func newGate() *gate {
	return &gate{entered: make(chan *Attempt, 100), release: make(chan struct{}), perDomain: map[string]int{}}
}

func (g *gate) Deliver(ctx context.Context, d *Attempt) []Result {
	g.mu.Lock()
	g.active++
	g.perDomain[d.Domain]++
	g.maxActive = max(g.maxActive, g.active)
	g.maxDomain = max(g.maxDomain, g.perDomain[d.Domain])
	g.mu.Unlock()
	g.entered <- d
	var err error
	select {
	case <-g.release:
	case <-ctx.Done():
		err = ctx.Err()
	}
	g.mu.Lock()
	g.active--
	g.perDomain[d.Domain]--
	g.mu.Unlock()
	out := make([]Result, len(d.Recipients))
	for i, r := range d.Recipients {
		out[i] = Result{Rcpt: r, Err: err}
	}
	return out
}

func TestConcurrencyLimits(t *testing.T) {
	g := newGate()
	e := open(t, g, func(o *Options) { o.Concurrency = 3; o.PerDomain = 2 })
	for i := range 6 { // oldest first: a, b, a, b, ...
		enqueue(t, e.q, "alice@example.org", fmt.Sprintf("r%d@a.example", i))
		e.clock.Advance(time.Second)
		enqueue(t, e.q, "alice@example.org", fmt.Sprintf("r%d@b.example", i))
		e.clock.Advance(time.Second)
	}
	done := make(chan int)
	go func() { done <- e.q.RunOnce(ctx) }()
	// The first pass starts as many as fit, 3: two of a.example and one of
	// b.example (oldest first), and they block until released; a fourth
	// would be counted by the gate. Then everything is let go.
	for range 3 {
		select {
		case <-g.entered:
		case <-time.After(10 * time.Second): // deadlock guard only
			t.Fatal("the scheduler started fewer deliveries than the limits allow")
		}
	}
	g.mu.Lock()
	active, a, b := g.active, g.perDomain["a.example"], g.perDomain["b.example"]
	g.mu.Unlock()
	if active != 3 || a != 2 || b != 1 {
		t.Fatalf("first pass: %d active (a %d, b %d), want 3 (2, 1)", active, a, b)
	}
	close(g.release)
	if n := <-done; n != 12 {
		t.Fatalf("%d attempts, want 12", n)
	}
	if g.maxDomain != 2 || g.maxActive > 3 {
		t.Fatalf("max %d at once (limit 3), %d per domain (limit 2)", g.maxActive, g.maxDomain)
	}
	if len(e.q.List()) != 0 {
		t.Fatal("messages left")
	}
}
