package server

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"testing"

	smtpclient "smtpkit/internal/client"
	"smtpkit/internal/smtp"
)

// discardBackend accepts every sender and recipient and throws the bytes
// away, so that the benchmarks measure the protocol, not storage.
type discardBackend struct{ committed atomic.Int64 }

func (*discardBackend) Sender(context.Context, *SessionInfo, smtp.Address) error { return nil }
func (*discardBackend) Recipient(context.Context, *SessionInfo, smtp.Address, smtp.Address) error {
	return nil
}
func (b *discardBackend) Begin(_ context.Context, env *Envelope) (MessageWriter, error) {
	return &discardWriter{b: b, id: env.ID}, nil
}

type discardWriter struct {
	b  *discardBackend
	id string
}

func (w *discardWriter) Write(p []byte) (int, error) { return io.Discard.Write(p) }
func (w *discardWriter) Commit() (string, error)     { w.b.committed.Add(1); return w.id, nil }
func (w *discardWriter) Abort()                      {}

// startBenchServer runs an mx listener without TLS on loopback.
func startBenchServer(b *testing.B) (string, *discardBackend) {
	b.Helper()
	be := &discardBackend{}
	srv := New(Options{Hostname: "mx.example.com", PostmasterDomain: "example.com",
		Listeners: []Listener{{Address: "127.0.0.1:0", Role: RoleMX, TLS: TLSNone}},
		Backend:   be, Limits: Limits{Connections: 1000, ConnectionsPerIP: 1000,
			ConnectionRate: 1 << 30, SessionRcpts: 1 << 30, SessionTxns: 1 << 30}}) // every client is 127.0.0.1
	serve(b, srv)
	return srv.Addrs()[0].String(), be
}

func benchBody(size int) []byte {
	var buf bytes.Buffer
	buf.WriteString("From: <a@example.org>\r\nTo: <alice@example.com>\r\nSubject: bench\r\n\r\n")
	for buf.Len() < size {
		buf.WriteString("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n")
	}
	return buf.Bytes()
}

func benchDial(b *testing.B, addr string) *smtpclient.Conn {
	c, err := smtpclient.Dial(context.Background(), addr, smtpclient.Options{LocalName: "client.example.org"})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Hello(); err != nil {
		b.Fatal(err)
	}
	return c
}

func benchSend(b *testing.B, c *smtpclient.Conn, body []byte) {
	env := smtpclient.Envelope{From: "a@example.org", To: []string{"alice@example.com"}, Size: int64(len(body))}
	res, err := c.Send(context.Background(), env, bytes.NewReader(body))
	if err == nil {
		err = res.Data
	}
	if err != nil {
		b.Fatal(err)
	}
}

// benchmarkSession sends b.N messages over one session (pipelined MAIL,
// RCPT, DATA, then the body): the per-message cost of the protocol.
func benchmarkSession(b *testing.B, size int) {
	addr, be := startBenchServer(b)
	body := benchBody(size)
	c := benchDial(b, addr)
	defer c.Quit()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		benchSend(b, c, body)
	}
	if be.committed.Load() < int64(b.N) {
		b.Fatalf("committed %d of %d", be.committed.Load(), b.N)
	}
}

func BenchmarkSession1KB(b *testing.B)   { benchmarkSession(b, 1<<10) }
func BenchmarkSession100KB(b *testing.B) { benchmarkSession(b, 100<<10) }

// BenchmarkSessionParallel1KB runs one session per goroutine at once.
func BenchmarkSessionParallel1KB(b *testing.B) {
	addr, _ := startBenchServer(b)
	body := benchBody(1 << 10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := benchDial(b, addr)
		defer c.Quit()
		for pb.Next() {
			benchSend(b, c, body)
		}
	})
}

// BenchmarkConnectionPerMessage opens a session for every message:
// connect, greeting, EHLO, one message, QUIT.
func BenchmarkConnectionPerMessage(b *testing.B) {
	addr, _ := startBenchServer(b)
	body := benchBody(1 << 10)
	b.ReportAllocs()
	for b.Loop() {
		c := benchDial(b, addr)
		benchSend(b, c, body)
		if err := c.Quit(); err != nil {
			b.Fatal(err)
		}
	}
}
