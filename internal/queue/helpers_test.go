package queue

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/smtp"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// courierFunc adapts a function to Courier.
type courierFunc func(ctx context.Context, d *Attempt) []Result

func (f courierFunc) Deliver(ctx context.Context, d *Attempt) []Result { return f(ctx, d) }

// recorder is a Courier that answers every recipient with the next of its
// scripted errors (nil = delivered; when the script runs out, delivered)
// and records every attempt with the bytes it read.
type recorder struct {
	mu       sync.Mutex
	script   []error
	attempts []attempt
}

type attempt struct {
	d    Attempt
	body string
}

func (r *recorder) Deliver(ctx context.Context, d *Attempt) []Result {
	rc, err := d.Open()
	var body []byte
	if err == nil {
		body, _ = io.ReadAll(rc)
		rc.Close()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, attempt{*d, string(body)})
	var e error
	if len(r.script) > 0 {
		e, r.script = r.script[0], r.script[1:]
	}
	out := make([]Result, len(d.Recipients))
	for i, a := range d.Recipients {
		out[i] = Result{Rcpt: a, Err: e, Remote: Remote{Host: "mx.example.net", Addr: netip.MustParseAddr("192.0.2.1")},
			Reply: replyOf(e)}
	}
	return out
}

// replyOf is the server's reply behind a scripted outcome: 250 for a
// delivery, the reply of an *smtp.Error; none for other errors (the
// connection failed, no server said anything).
func replyOf(err error) smtp.Reply {
	var se *smtp.Error
	switch {
	case err == nil:
		return smtp.R(250, "2.0.0", "OK")
	case errors.As(err, &se):
		return se.Reply
	}
	return smtp.Reply{}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.attempts)
}

// bounces collects the DSNs handed off.
type bounces struct {
	mu   sync.Mutex
	list []Bounce
	err  error // returned by the hand-off when set
}

func (b *bounces) take(ctx context.Context, x Bounce) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	b.list = append(b.list, x)
	return nil
}

func (b *bounces) all() []Bounce {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Bounce(nil), b.list...)
}

var (
	temp = smtp.E(451, "4.7.1", "try again later")
	perm = smtp.E(550, "5.1.1", "no such user")
)

type env struct {
	q       *Queue
	clock   *clock
	bounces *bounces
	dir     string
}

// open opens a queue in a temporary directory with a fake clock; edit
// changes the options first.
func open(t *testing.T, c Courier, edit func(*Options)) *env {
	t.Helper()
	e := &env{clock: newClock(), bounces: &bounces{}, dir: t.TempDir()}
	opts := Options{
		Dir: e.dir, Courier: c, Bounce: e.bounces.take, Now: e.clock.Now,
		Hostname: "mx.example.org", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if edit != nil {
		edit(&opts)
	}
	q, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	e.q = q
	return e
}

const testMessage = "From: alice@example.org\r\nTo: bob@example.net\r\nSubject: test\r\n\r\nHello.\r\n"

// enqueue commits testMessage and returns its id.
func enqueue(t *testing.T, q *Queue, from string, rcpts ...string) string {
	t.Helper()
	w, err := q.Begin(envelopeOf(from, rcpts, Meta{ReceivedFrom: "192.0.2.9", AuthUser: "alice"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, testMessage); err != nil {
		t.Fatal(err)
	}
	id, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// state returns the states of message id's recipients, or nil when it is
// no longer queued.
func state(t *testing.T, q *Queue, id string) []RcptStatus {
	t.Helper()
	for _, s := range q.List() {
		if s.ID == id {
			return s.Recipients
		}
	}
	return nil
}

// testAddr splits a test address at its last '@' without checking its
// syntax ("" is the null sender, "nodomain" has no domain).
func testAddr(s string) smtp.Address {
	i := strings.LastIndexByte(s, '@')
	if i < 0 {
		return smtp.Address{Local: s}
	}
	return smtp.Address{Local: s[:i], Domain: s[i+1:]}
}

// envelopeOf is the Envelope from from to rcpts with meta.
func envelopeOf(from string, rcpts []string, meta Meta) Envelope {
	e := Envelope{From: testAddr(from), Meta: meta}
	for _, r := range rcpts {
		e.To = append(e.To, testAddr(r))
	}
	return e
}
