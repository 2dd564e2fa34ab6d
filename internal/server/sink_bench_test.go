package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// BenchmarkSinkDialogue is the load of bench/sinkab.sh and the sink row of
// bench/run.sh in one session: Postfix's smtp-source without pipelining,
// so MAIL, RCPT, DATA and the body each wait for their reply. The client
// is raw bytes on a loopback socket and allocates nothing, so allocs/op
// is the server's cost per message; the server logs at info level through
// a text handler, as `smtpkit serve` does.
func BenchmarkSinkDialogue(b *testing.B) {
	srv := New(Options{Hostname: "mx.example.com", PostmasterDomain: "example.com",
		Listeners: []Listener{{Address: "127.0.0.1:0", Role: RoleSink, TLS: TLSNone, Backend: Discard{}}},
		Backend:   Discard{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Limits: Limits{Connections: 1000, ConnectionsPerIP: 1000, ConnectionRate: 1 << 30, SessionRcpts: 1 << 30}})
	if err := srv.Listen(); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}()

	c, err := net.Dial("tcp", srv.Addrs()[0].String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	expect := func(code string) {
		for {
			line, err := r.ReadSlice('\n')
			if err != nil || !bytes.HasPrefix(line, []byte(code)) {
				b.Fatalf("want %s, got %q (%v)", code, line, err)
			}
			if line[3] == ' ' {
				return
			}
		}
	}
	send := func(p []byte, code string) {
		if _, err := c.Write(p); err != nil {
			b.Fatal(err)
		}
		expect(code)
	}
	body := append([]byte("From: <sender@client.example>\r\nTo: <user@bench.example>\r\n\r\n"),
		bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxy\r\n"), 14)...)
	body = append(body, ".\r\n"...)
	mail, rcpt, data := []byte("MAIL FROM:<sender@client.example>\r\n"), []byte("RCPT TO:<user@bench.example>\r\n"), []byte("DATA\r\n")

	expect("220")
	send([]byte("HELO client.example\r\n"), "250")
	b.ReportAllocs()
	for b.Loop() {
		send(mail, "250")
		send(rcpt, "250")
		send(data, "354")
		send(body, "250")
	}
	send([]byte("QUIT\r\n"), "221")
}
