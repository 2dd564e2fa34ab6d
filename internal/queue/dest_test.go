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
