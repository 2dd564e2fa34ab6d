package server

import (
	"bytes"
	"context"
	"errors"
	"net"
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
// wait, sweeping srv meanwhile instead of waiting for its sweeper's tick
// (nil: the tick only); it polls for the state, not for a time.
func waitHandedOff(t *testing.T, srv *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for handedOff() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions handed off their wait, want %d", handedOff(), n)
		}
		if srv != nil {
			srv.sweepOnce()
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
		waitHandedOff(t, ts.srv, 1)
		c.cmd("NOOP", "250 2.0.0")
		waitHandedOff(t, ts.srv, 1)
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
	waitHandedOff(t, ts.srv, 1)
	c.startTLS()
	c.cmd("EHLO c", "250-")
	waitHandedOff(t, ts.srv, 1)
	c.cmd("NOOP", "250 2.0.0")
	waitHandedOff(t, ts.srv, 1)
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
	waitHandedOff(t, ts.srv, 2)
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
	ts := startServer(t, Limits{CommandTimeout: time.Second}, Listener{Role: RoleMX, TLS: TLSNone})
	c := dial(t, ts.addrs[0])
	c.cmd("EHLO c", "250-")
	waitHandedOff(t, ts.srv, 1)
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
	waitHandedOff(t, ts.srv, 1)
	c.cmd("MAIL FROM:<a@b.example>", "250 2.1.0")
	// A second session that hands off shows that time has passed.
	c2 := dial(t, ts.addrs[0])
	c2.cmd("EHLO c", "250-")
	waitHandedOff(t, ts.srv, 1)
	for range 3 {
		ts.srv.sweepOnce()
	}
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

// TestIdleSweeper: the sweeper that Serve starts hands an idle session's
// wait off by itself within two of its periods, and the session goes on.
func TestIdleSweeper(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	c := dial(t, ts.addrs[0])
	c.cmd("EHLO c", "250-")
	start := time.Now()
	waitHandedOff(t, nil, 1)
	if waited := time.Since(start); waited > 2*idleHandOffAfter+time.Second {
		t.Errorf("handed off after %v, want within 2×%v", waited, idleHandOffAfter)
	}
	c.cmd("NOOP", "250 2.0.0")
	c.cmd("QUIT", "221 2.0.0")
	c.closed()
	waitNoSessions(t, ts.srv)
}

// TestIdleHandOffPartialLine: once part of a command line has come, the
// sweeper leaves the session alone (its interrupt would look like a
// command timeout), and the line is answered when it is complete.
func TestIdleHandOffPartialLine(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleMX, TLS: TLSNone})
	c := dial(t, ts.addrs[0])
	c.cmd("EHLO c", "250-")
	waitHandedOff(t, ts.srv, 1)
	c.cmd("NOOP", "250 2.0.0") // in the session's own goroutine: parked again
	c.send("NO")
	for range 5 {
		ts.srv.sweepOnce()
		time.Sleep(10 * time.Millisecond)
	}
	c.send("OP\r\n")
	c.expect("250 2.0.0")
	c.cmd("QUIT", "221 2.0.0")
	c.closed()
}

// TestIdleHandOffInputWins: a session whose read got input although the
// sweeper had interrupted it puts its command deadline back on the
// connection, whether it is busy at once or still waits for the rest of
// the line; otherwise its next read would fail at once as a timeout.
func TestIdleHandOffInputWins(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := New(Options{Hostname: "mx.example.com"})
	for _, stillIdle := range []bool{false, true} {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c := &srv.newSession(conn, Listener{}).conn
		c.readArmed = time.Now().Add(time.Minute)
		conn.SetReadDeadline(c.readArmed)
		c.setIdle(true, true)
		c.sweep()
		c.sweep() // the interrupt: a deadline in the past
		if c.handOff != handOffAsked {
			t.Fatalf("handOff %d after two sweeps of a parked session, want asked", c.handOff)
		}
		c.setIdle(stillIdle, false)
		if c.handOff != handOffNone {
			t.Errorf("stillIdle %v: handOff %d, want none", stillIdle, c.handOff)
		}
		go func() {
			time.Sleep(20 * time.Millisecond)
			client.Write([]byte("NOOP\r\n"))
		}()
		if n, err := conn.Read(make([]byte, 16)); n == 0 {
			t.Errorf("stillIdle %v: read after the input won: %v (deadline not restored)", stillIdle, err)
		}
		client.Close()
		conn.Close()
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
	waitHandedOff(t, ts.srv, 1)
	ts.srv.mu.Lock()
	defer ts.srv.mu.Unlock()
	for sess := range ts.srv.sessions {
		if sess.backendCtx.ctx != nil {
			t.Error("an idle session holds a backend context")
		}
	}
}

// newSession prepares a session for a connection on a copy of l.
func (s *Server) newSession(c net.Conn, l Listener) *session { return s.newSessionOn(c, &l) }
