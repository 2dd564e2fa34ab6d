package server

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// handedOff reports how many sessions wait in a goroutine started by a
// handoff: the innermost session frame of the goroutine is resume (the
// read at its start), not a wait further on.
func handedOff() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	for n == len(buf) {
		buf = make([]byte, 2*len(buf))
		n = runtime.Stack(buf, true)
	}
	count := 0
	for _, g := range bytes.Split(buf[:n], []byte("\n\n")) {
		if i := bytes.Index(g, []byte("server.(*session).")); i >= 0 &&
			bytes.HasPrefix(g[i:], []byte("server.(*session).resume(")) {
			count++
		}
	}
	return count
}

// waitHandedOff waits (at most 5 s) until n sessions have handed off their
// wait; it polls for the state, not for a time.
func waitHandedOff(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for handedOff() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions handed off their wait, want %d", handedOff(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitNoSessions waits (at most 5 s) until the server holds no session:
// each one gave its slot back.
func waitNoSessions(t *testing.T, srv *Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		srv.mu.Lock()
		n, ips := len(srv.sessions), len(srv.perIP)
		srv.mu.Unlock()
		if n == 0 && ips == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions (%d IPs) still held", n, ips)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIdleHandOff: a session that was handed to a fresh goroutine goes on
// as before: single commands, a pipelined transaction (RFC 2920) and
// STARTTLS (RFC 3207) after a handoff, a handoff over TLS, and its end.
func TestIdleHandOff(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSOpportunistic})
	c := dial(t, ts.addrs[0])
	c.cmd("EHLO c", "250-")
	for i := range 3 {
		waitHandedOff(t, 1)
		c.cmd("NOOP", "250 2.0.0")
		waitHandedOff(t, 1)
		c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
		c.expect("250 2.1.0")
		c.expect("250 2.1.5")
		c.expect("354 ")
		c.send("Subject: " + string(rune('0'+i)) + "\r\n\r\nbody\r\n.\r\n")
		c.expect("250 2.0.0")
	}
	if got := len(ts.backend.messages()); got != 3 {
		t.Fatalf("stored %d messages, want 3", got)
	}
	waitHandedOff(t, 1)
	c.startTLS()
	c.cmd("EHLO c", "250-")
	waitHandedOff(t, 1)
	c.cmd("NOOP", "250 2.0.0")
	waitHandedOff(t, 1)
	c.cmd("QUIT", "221 2.0.0")
	c.closed()
	waitNoSessions(t, ts.srv)
}

// TestIdleHandOffShutdown: sessions waiting in handed-off goroutines get
// 421 at shutdown (RFC 5321 §3.8) and are counted down, so Shutdown
// returns before its deadline.
func TestIdleHandOffShutdown(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSOpportunistic})
	c1 := dial(t, ts.addrs[0])
	c1.cmd("EHLO c", "250-")
	c2 := dial(t, ts.addrs[0])
	c2.cmd("EHLO c", "250-")
	c2.startTLS()
	c2.cmd("EHLO c", "250-")
	waitHandedOff(t, 2)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextWithTimeout(5 * time.Second)
		defer cancel()
		done <- ts.srv.Shutdown(ctx)
	}()
	c1.expect("421 4.3.2")
	c2.expect("421 4.3.2")
	c1.closed()
	c2.closed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v (sessions were not counted down)", err)
	}
}

// TestIdleHandOffTimeout: the command timeout (RFC 5321 §4.5.3.2.7) still
// ends a session whose wait was handed off, with 421.
func TestIdleHandOffTimeout(t *testing.T) {
	ts := startServer(t, Limits{CommandTimeout: 20 * idleHandOffAfter}, Listener{Role: RoleMX, TLS: TLSNone})
	c := dial(t, ts.addrs[0])
	c.cmd("EHLO c", "250-")
	waitHandedOff(t, 1)
	c.expect("421 4.4.2")
	c.closed()
	waitNoSessions(t, ts.srv)
}

// TestIdleHandOffNotInTransaction: a client that pauses inside a
// transaction keeps its goroutine, and the transaction goes on.
func TestIdleHandOffNotInTransaction(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	c := dial(t, ts.addrs[0])
	c.cmd("EHLO c", "250-")
	waitHandedOff(t, 1)
	c.cmd("MAIL FROM:<a@b.example>", "250 2.1.0")
	// A second session that hands off shows that time has passed.
	c2 := dial(t, ts.addrs[0])
	c2.cmd("EHLO c", "250-")
	waitHandedOff(t, 1)
	if n := handedOff(); n != 1 {
		t.Fatalf("%d sessions handed off, want only the one outside a transaction", n)
	}
	c.cmd("RCPT TO:<alice@example.com>", "250 2.1.5")
	c.cmd("DATA", "354 ")
	c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
	c.expect("250 2.0.0")
	if got := len(ts.backend.messages()); got != 1 {
		t.Fatalf("stored %d messages, want 1", got)
	}
}

// TestBackendCtx: the session's backend context is made on first use, is
// done at the session deadline, and ends (with what was derived from it)
// at the end of the session, used or not.
func TestBackendCtx(t *testing.T) {
	used := &backendCtx{deadline: time.Now().Add(time.Hour)}
	derived, cancel := context.WithCancel(used)
	defer cancel()
	if d, ok := derived.Deadline(); !ok || !d.Equal(used.deadline) {
		t.Fatalf("derived deadline %v %v, want %v", d, ok, used.deadline)
	}
	if derived.Err() != nil {
		t.Fatal("derived context done before the session ended")
	}
	used.end()
	select {
	case <-derived.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a context derived from the backend context outlived the session")
	}
	if !errors.Is(used.Err(), context.Canceled) {
		t.Fatalf("used: Err %v after end", used.Err())
	}

	unused := &backendCtx{deadline: time.Now().Add(time.Hour)}
	unused.end()
	if !errors.Is(unused.Err(), context.Canceled) {
		t.Fatalf("unused: Err %v after end", unused.Err())
	}

	late := &backendCtx{deadline: time.Now().Add(-time.Second)}
	defer late.end()
	<-late.Done()
	if !errors.Is(late.Err(), context.DeadlineExceeded) {
		t.Fatalf("past deadline: Err %v", late.Err())
	}

	// A session that said EHLO and waits has made none.
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	dial(t, ts.addrs[0]).cmd("EHLO c", "250-")
	waitHandedOff(t, 1)
	ts.srv.mu.Lock()
	defer ts.srv.mu.Unlock()
	for sess := range ts.srv.sessions {
		if sess.bc.ctx != nil {
			t.Error("an idle session holds a backend context")
		}
	}
}
