package server

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestStressLevels(t *testing.T) {
	tests := []struct {
		conns, pct   int
		enter, leave int
	}{
		{1000, 80, 800, 720},
		{1000, 100, 1000, 900},
		{10, 100, 10, 9},
		{6, 50, 3, 2},
		{3, 50, 2, 1},
		{1, 80, 1, 0},
	}
	for _, tt := range tests {
		enter, leave := stressLevels(&Limits{Connections: tt.conns, StressThreshold: tt.pct})
		if enter != tt.enter || leave != tt.leave {
			t.Errorf("%d connections, %d%%: levels %d/%d, want %d/%d", tt.conns, tt.pct, enter, leave, tt.enter, tt.leave)
		}
	}
}

// waitWaiting waits (at most 5 s) until n sessions wait for a command, or
// for message data under a deadline at least 30 s away: the waits that
// stress mode cuts short.
func waitWaiting(t *testing.T, srv *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := 0
		srv.mu.Lock()
		for sess := range srv.sessions {
			c := &sess.conn
			c.mu.Lock()
			if c.idle || c.inData && c.armedAt.Load() > time.Now().Add(30*time.Second).UnixNano() {
				got++
			}
			c.mu.Unlock()
		}
		srv.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions waiting, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStressMode: with half of the connections in use the server goes
// into stress mode; the sessions already waiting, one between commands and
// one stalled in DATA, are told and cut after the short stress timeout
// (the idle one may also see it when it hands off its wait, idle.go)
// with 421 4.4.2 (their own timeouts are a minute, and the client gives up
// after 10 s); when the slots are given back stress mode ends, and a new
// session gets the normal timeouts. Both changes are logged.
func TestStressMode(t *testing.T) {
	logs := &syncLog{}
	srv := New(Options{
		Hostname: "mx.example.com", PostmasterDomain: "example.com",
		Listeners: []Listener{{Address: "127.0.0.1:0", Role: RoleMX}}, Backend: &memBackend{},
		Limits: Limits{
			Connections: 6, ConnectionsPerIP: 6, StressThreshold: 50,
			CommandTimeout: time.Minute, DataTimeout: time.Minute,
			StressCommandTimeout: 200 * time.Millisecond, StressDataTimeout: 200 * time.Millisecond,
		},
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	serve(t, srv)
	addr := srv.Addrs()[0].String()

	idle := dial(t, addr)
	idle.cmd("EHLO idle", "250-")
	stalled := dial(t, addr)
	stalled.cmd("EHLO stalled", "250-")
	stalled.cmd("MAIL FROM:<a@b.example>", "250")
	stalled.cmd("RCPT TO:<alice@example.com>", "250")
	stalled.cmd("DATA", "354") // and then nothing
	waitWaiting(t, srv, 2)
	if srv.stressed.Load() {
		t.Fatal("stressed with 2 of 6 connections in use")
	}

	third := dial(t, addr) // the third of six: stress mode begins
	if !srv.stressed.Load() {
		t.Error("not stressed with 3 of 6 connections in use")
	}
	idle.expect("421 4.4.2")
	idle.closed()
	stalled.expect("421 4.4.2")
	stalled.closed()
	third.conn.Close()
	waitNoSessions(t, srv)
	if srv.stressed.Load() {
		t.Error("still stressed with no connection in use")
	}
	fresh := dial(t, addr) // after the stress: the normal timeouts
	fresh.cmd("EHLO fresh", "250-")
	srv.mu.Lock()
	for sess := range srv.sessions {
		if sess.conn.stressed.Load() {
			t.Error("a session started after stress mode has the stress timeouts")
		}
	}
	srv.mu.Unlock()
	for _, want := range []string{"stress mode on", "stress mode off"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, logs.String())
		}
	}
}
