package inbound

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"smtpkit/internal/authres"
	"smtpkit/internal/local"
	"smtpkit/internal/maildir"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// benchAccounts resolves every address at bench.example to itself.
type benchAccounts struct{}

func (benchAccounts) Resolve(addr string) ([]string, bool) { return []string{addr}, true }
func (benchAccounts) Owns(string, string) bool             { return true }

// benchmarkDeliver stores b.N messages for nrcpt local mailboxes through the
// Backend, as the server does after DATA: Begin, the bytes, Commit (fsync
// and link into every new/). It is the storage half of a message's cost.
func benchmarkDeliver(b *testing.B, size, nrcpt int) { benchmarkDeliverV(b, size, nrcpt, false) }

// benchmarkDeliverV is benchmarkDeliver, with verify the [verify] path:
// held, filtered, a fixed Authentication-Results on top (a check that
// does no work, so what is measured is the storage change alone).
func benchmarkDeliverV(b *testing.B, size, nrcpt int, verify bool) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := local.New(local.Options{Domains: []string{"bench.example"}, Accounts: benchAccounts{},
		MailDir: b.TempDir(), Writer: maildir.NewWriter(nil), Logger: log})
	be := New(Options{Local: store, Accounts: benchAccounts{}, Logger: log})
	if verify {
		be.opts.Verify = &Verification{
			Begin:  func(context.Context, netip.Addr, string, smtp.Address) Check { return &benchCheck{} },
			IsOurs: func(string) bool { return false },
			TmpDir: b.TempDir(),
		}
	}
	body := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"), size/74+1)[:size]
	from, err := smtp.ParseAddress("sender@client.example")
	if err != nil {
		b.Fatal(err)
	}
	env := &server.Envelope{ID: "bench", From: from, Session: &server.SessionInfo{ID: "s", Role: server.RoleMX,
		Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}}
	for i := range nrcpt {
		to, err := smtp.ParseAddress(string(rune('a'+i)) + "@bench.example")
		if err != nil {
			b.Fatal(err)
		}
		env.Recipients = append(env.Recipients, to)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		w, err := be.Begin(context.Background(), env)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(body); err != nil {
			b.Fatal(err)
		}
		if _, err := w.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeliver1KB(b *testing.B)       { benchmarkDeliver(b, 1<<10, 1) }
func BenchmarkDeliver100KB(b *testing.B)     { benchmarkDeliver(b, 100<<10, 1) }
func BenchmarkDeliver1KB5Rcpts(b *testing.B) { benchmarkDeliver(b, 1<<10, 5) }

func BenchmarkDeliverVerified1KB(b *testing.B)   { benchmarkDeliverV(b, 1<<10, 1, true) }
func BenchmarkDeliverVerified100KB(b *testing.B) { benchmarkDeliverV(b, 100<<10, 1, true) }

// benchCheck is a Check that does nothing.
type benchCheck struct{}

func (benchCheck) Write(p []byte) (int, error) { return len(p), nil }
func (benchCheck) Abort()                      {}
func (*benchCheck) Finish() authres.Result {
	return authres.Result{Header: "Authentication-Results: bench.example;\r\n\tspf=pass smtp.mailfrom=sender@client.example\r\n"}
}
