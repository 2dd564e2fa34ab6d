package queue

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/smtp"
)

// TestWindow drives one destination's concurrency window through
// feedback and idle time on an injected clock.
func TestWindow(t *testing.T) {
	// Steps: "+" positive, "-" negative, "." neutral, "wD" wait D; after
	// each step the limit is checked.
	tests := []struct {
		name  string
		max   int
		steps string
		want  string // the limit after each step
	}{
		{"slow start grows one per answered attempt up to the max", 8, "+ + + + +", "6 7 8 8 8"},
		{"a max below the start starts at the max", 3, "+ - -", "3 2 1"},
		{"failures shrink it one each, never below one", 20, "- - - - - - -", "4 3 2 1 1 1 1"},
		{"recovers after failures", 20, "- - - - + +", "4 3 2 1 2 3"},
		{"neutral feedback changes nothing", 20, ". . -", "5 5 4"},
		{"forgotten after the idle spell", 20, "- - w6m -", "4 3 5 4"},
		{"not at the spell itself", 20, "- - w5m -", "4 3 3 2"},
		{"growth forgotten too", 7, "+ + w6m", "6 7 5"},
		{"an attempt within the spell keeps the state", 20, "- w4m - w4m", "4 4 3 3"},
		{"max one stays one", 1, "+ - +", "1 1 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
			w := newWindow(tt.max, 5*time.Minute)
			var got []string
			for _, s := range strings.Fields(tt.steps) {
				switch {
				case s == "+":
					w.feed(now, positive)
				case s == "-":
					w.feed(now, negative)
				case s == ".":
					w.feed(now, neutral)
				case strings.HasPrefix(s, "w"):
					d, err := time.ParseDuration(s[1:])
					if err != nil {
						t.Fatal(err)
					}
					now = now.Add(d)
				}
				got = append(got, strconv.Itoa(w.limit(now)))
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("limits %s, want %s", g, tt.want)
			}
		})
	}
}

// TestJudge classifies attempts as Postfix's feedback does: a server that
// answered is positive, a failed connection or session negative.
func TestJudge(t *testing.T) {
	refused := errors.New("connection refused")
	said := func(code int, enh string) Result {
		return Result{Rcpt: "a@x", Err: smtp.E(code, smtp.Enhanced(enh), "text"), Reply: smtp.R(code, smtp.Enhanced(enh), "text")}
	}
	tests := []struct {
		name      string
		abandoned bool
		results   []Result
		want      feedback
	}{
		{"delivered", false, []Result{{Rcpt: "a@x"}}, positive},
		{"a recipient refused with 550", false, []Result{said(550, "5.1.1")}, positive},
		{"greylisted with 450", false, []Result{said(450, "4.7.1")}, positive},
		{"connection refused", false, []Result{{Rcpt: "a@x", Err: refused}, {Rcpt: "b@x", Err: refused}}, negative},
		{"421 closing", false, []Result{said(421, "4.3.2")}, negative},
		{"one delivered among refusals", false, []Result{{Rcpt: "a@x", Err: refused}, {Rcpt: "b@x"}}, positive},
		{"our own permanent decision", false, []Result{{Rcpt: "a@x", Err: smtp.E(550, "5.7.10", "REQUIRETLS")}}, neutral},
		{"abandoned", true, []Result{{Rcpt: "a@x", Err: refused}}, neutral},
		{"no results", false, nil, neutral},
	}
	for _, tt := range tests {
		if got := judge(tt.abandoned, tt.results); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestSlowStart checks the window in the scheduler: 30 messages to one
// domain start 5 deliveries, then more as they succeed, never more than
// PerDomain; a destination whose connections fail falls to one at a time.
func TestSlowStart(t *testing.T) {
	g := newGate()
	e := open(t, g, func(o *Options) { o.PerDomain = 8 })
	for i := range 30 {
		enqueue(t, e.q, "alice@example.org", "r"+strconv.Itoa(i)+"@a.example")
	}
	done := make(chan int)
	go func() { done <- e.q.RunOnce(ctx) }()
	for range 5 {
		select {
		case <-g.entered:
		case <-time.After(10 * time.Second): // deadlock guard only
			t.Fatal("the scheduler started fewer than 5 deliveries")
		}
	}
	g.mu.Lock()
	first := g.perDomain["a.example"]
	g.mu.Unlock()
	if first != 5 {
		t.Fatalf("first wave %d, want 5", first)
	}
	close(g.release)
	if n := <-done; n != 30 {
		t.Fatalf("%d attempts, want 30", n)
	}
	e.q.mu.Lock()
	win := e.q.dests["a.example"].win.cur
	e.q.mu.Unlock()
	if win != 8 || g.maxDomain > 8 {
		t.Errorf("window %d after 30 deliveries, %d at most at once; want 8 and at most 8", win, g.maxDomain)
	}

	// Connections that fail: each failed attempt takes one off the window.
	var mu sync.Mutex
	active, peak := 0, 0
	fails := courierFunc(func(ctx context.Context, d *Attempt) []Result {
		mu.Lock()
		active++
		peak = max(peak, active)
		mu.Unlock()
		defer func() {
			mu.Lock()
			active--
			mu.Unlock()
		}()
		return allTemporary(d.Recipients, errors.New("connection refused"))
	})
	e2 := open(t, fails, func(o *Options) { o.PerDomain = 8 })
	for i := range 20 {
		enqueue(t, e2.q, "alice@example.org", "r"+strconv.Itoa(i)+"@down.example")
	}
	e2.q.RunOnce(ctx)
	e2.q.mu.Lock()
	d := e2.q.dests["down.example"]
	e2.q.mu.Unlock()
	if d == nil || d.win.cur != 1 {
		t.Fatalf("after 20 failed connections the window is %+v, want 1", d)
	}
	if peak > 5 {
		t.Errorf("%d at once to a failing destination, want at most the start of 5", peak)
	}
}

// TestSuspendedDestination: a destination whose connections keep failing
// is suspended after its window reaches one and fails again (Postfix's
// dead destination): the rest of its due messages are deferred without an
// attempt, each with a deferral that says why; after Options.RetryMin it
// is tried again, and a delivery ends it. Flush and Retry lift it at once,
// and a message past max_age bounces while its destination is suspended.
func TestSuspendedDestination(t *testing.T) {
	var mu sync.Mutex
	tries, up := 0, false
	courier := courierFunc(func(ctx context.Context, d *Attempt) []Result {
		mu.Lock()
		defer mu.Unlock()
		tries++
		if up {
			out := make([]Result, len(d.Recipients))
			for i, a := range d.Recipients {
				out[i] = Result{Rcpt: a, Reply: smtp.R(250, "2.0.0", "OK")}
			}
			return out
		}
		return allTemporary(d.Recipients, errors.New("connection refused"))
	})
	attempts := func() int { mu.Lock(); defer mu.Unlock(); n := tries; tries = 0; return n }
	e := open(t, courier, func(o *Options) { o.RetryMin, o.RetryMax, o.MaxAge = time.Minute, time.Minute, time.Hour })
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = enqueue(t, e.q, "alice@example.org", "r"+strconv.Itoa(i)+"@down.example")
	}
	if n := e.q.RunOnce(ctx); n != 20 {
		t.Fatalf("RunOnce: %d jobs, want 20 (attempts and deferrals)", n)
	}
	if n := attempts(); n != 5 {
		t.Errorf("%d connection attempts to a dead destination, want 5 (the start window)", n)
	}
	suspended := 0
	for _, id := range ids {
		st := state(t, e.q, id)
		if len(st) != 1 || st[0].State != Deferred || st[0].Attempts != 1 {
			t.Fatalf("%s: %+v, want one deferred recipient after one try", id, st)
		}
		if strings.Contains(st[0].LastReply, "suspended until") {
			suspended++
		}
	}
	if suspended != 15 {
		t.Errorf("%d deferrals say the destination is suspended, want 15", suspended)
	}

	// A minute on: the suspension is over and the retries are due; the
	// destination still fails, so it is suspended again after the probes.
	e.clock.Advance(time.Minute + time.Second)
	e.q.RunOnce(ctx)
	if n := attempts(); n != 5 {
		t.Errorf("%d attempts after the suspension, want 5 probes", n)
	}

	// Flush lifts it: attempts again at once, and now they go through.
	mu.Lock()
	up = true
	mu.Unlock()
	e.q.Flush()
	e.q.RunOnce(ctx)
	if n := attempts(); n != 20 {
		t.Errorf("%d attempts after Flush, want 20", n)
	}
	if l := e.q.List(); len(l) != 0 {
		t.Errorf("%d messages left after the destination came back", len(l))
	}

	// Retry lifts the suspension of the message's destination.
	mu.Lock()
	up = false
	mu.Unlock()
	// (the window grew to 20 with the deliveries: its 20 attempts fail,
	// the 20th at a window of one)
	ids = make([]string, 25)
	for i := range ids {
		ids[i] = enqueue(t, e.q, "alice@example.org", "s"+strconv.Itoa(i)+"@down.example")
	}
	e.q.RunOnce(ctx)
	if n := attempts(); n != 20 {
		t.Errorf("%d attempts from a window of 20 down to its suspension, want 20", n)
	}
	e.q.mu.Lock()
	dead := e.q.dests["down.example"].suspendedAt(e.clock.Now())
	e.q.mu.Unlock()
	if !dead {
		t.Fatal("not suspended after 25 failures")
	}
	if err := e.q.Retry(ids[24]); err != nil {
		t.Fatal(err)
	}
	e.q.RunOnce(ctx)
	if n := attempts(); n != 1 {
		t.Errorf("%d attempts after Retry of one message, want 1", n)
	}

	// Past max_age while suspended: the deferral bounces it.
	e.clock.Advance(time.Hour + time.Minute)
	e.q.RunOnce(ctx) // probes fail: suspended again; the rest deferred past max_age
	e.q.RunOnce(ctx)
	if l := e.q.List(); len(l) != 0 {
		t.Errorf("%d messages still queued past max_age", len(l))
	}
	if b := e.bounces.all(); len(b) != 25 {
		t.Errorf("%d bounces, want 25", len(b))
	}
}
