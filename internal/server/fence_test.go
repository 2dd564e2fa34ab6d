package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"smtpkit/internal/smtp"
)

// panicBackend is memBackend with faults: RCPT TO a "panic" local part
// dereferences nil, and so does writing message data that contains PANIC.
// It counts the writers aborted.
type panicBackend struct {
	memBackend
	aborted atomic.Int32
}

type nilThing struct{ n int }

func nilDeref() int {
	var p *nilThing
	return p.n
}

func (b *panicBackend) Recipient(ctx context.Context, s *SessionInfo, from, rcpt smtp.Address) error {
	if strings.HasPrefix(rcpt.Local, "panic") {
		nilDeref()
	}
	return b.memBackend.Recipient(ctx, s, from, rcpt)
}

func (b *panicBackend) Begin(ctx context.Context, env *Envelope) (MessageWriter, error) {
	w, _ := b.memBackend.Begin(ctx, env)
	return &panicWriter{MessageWriter: w, b: b}, nil
}

type panicWriter struct {
	MessageWriter
	b *panicBackend
}

func (w *panicWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("PANIC")) {
		nilDeref()
	}
	return w.MessageWriter.Write(p)
}

func (w *panicWriter) Abort() { w.b.aborted.Add(1); w.MessageWriter.Abort() }

// syncLog is a log destination safe for concurrent sessions.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestPanicFence: a nil dereference in the backend (at RCPT, during DATA,
// and in a session that had handed its wait to a fresh goroutine) ends
// that session only, with 421 4.3.0; the message being received is
// aborted; the panic is logged once with its stack; a session open beside
// them delivers; and every slot comes back: afterwards the full number of
// connections is admitted, and one more is refused as usual.
func TestPanicFence(t *testing.T) {
	const conns = 3
	b := &panicBackend{}
	logs := &syncLog{}
	srv := New(Options{
		Hostname: "mx.example.com", PostmasterDomain: "example.com",
		Listeners: []Listener{{Address: "127.0.0.1:0", Role: RoleMX}}, Backend: b,
		Limits: Limits{Connections: conns, ConnectionsPerIP: conns},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	serve(t, srv)
	addr := srv.Addrs()[0].String()

	healthy := dial(t, addr)
	healthy.cmd("EHLO ok", "250-")
	healthy.cmd("MAIL FROM:<a@b.example>", "250")
	healthy.cmd("RCPT TO:<alice@example.com>", "250")

	tests := []struct {
		name   string
		script func(c *client)
	}{
		{"RCPT", func(c *client) {
			c.cmd("MAIL FROM:<a@b.example>", "250")
			c.send("RCPT TO:<panic@example.com>\r\n")
		}},
		{"DATA", func(c *client) {
			c.cmd("MAIL FROM:<a@b.example>", "250")
			c.cmd("RCPT TO:<alice@example.com>", "250")
			c.cmd("DATA", "354")
			c.send("Subject: x\r\n\r\nPANIC\r\n.\r\n")
		}},
		{"after an idle handoff", func(c *client) {
			waitHandedOff(t, srv, 1)
			c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<panic2@example.com>\r\n")
			c.expect("250 2.1.0")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, addr)
			c.cmd("EHLO c", "250-")
			tt.script(c)
			c.expect("421 4.3.0")
			c.closed()
		})
	}
	if n := b.aborted.Load(); n != 1 {
		t.Errorf("%d message writers aborted, want 1 (the DATA one)", n)
	}
	if n := strings.Count(logs.String(), "panic in session"); n != len(tests) {
		t.Errorf("%d panic log lines, want %d:\n%s", n, len(tests), logs.String())
	}
	if n := strings.Count(logs.String(), "server.nilDeref"); n != len(tests) {
		t.Errorf("stack logged %d times, want %d", n, len(tests))
	}

	healthy.cmd("DATA", "354")
	healthy.cmd("Subject: fine\r\n\r\nbody\r\n.", "250 2.0.0")
	healthy.cmd("QUIT", "221")
	healthy.closed()
	if n := len(b.messages()); n != 1 {
		t.Errorf("%d messages stored, want the healthy one", n)
	}

	waitNoSessions(t, srv)
	for range conns {
		dial(t, addr).cmd("EHLO c", "250-")
	}
	refused := rawDial(t, addr)
	refused.expect("421 4.7.0")
}
