package interop

// CHUNKING and BINARYMIME (RFC 3030) against real peers: smtpkit's client
// sends BDAT to Postfix (which offers CHUNKING, not BINARYMIME) and falls
// back to DATA with aiosmtpd (no CHUNKING); a BODY=BINARYMIME message goes
// through smtpkit's queue — across a restart — to smtpkit as the
// BINARYMIME peer and into a local Maildir. What arrived is compared byte
// for byte with what was sent.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smtpkit/internal/client"
	"smtpkit/internal/sasl"
	"smtpkit/internal/smtp"
)

// bdatText is a text message of about 20 KiB: many chunks of 1 KiB, with
// lines a DATA transfer would have to dot-stuff.
func bdatText(tag string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: bdat %s\r\nMessage-ID: <%s@b.example>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\n", outSender, relayRcpt, tag, tag)
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&b, "line %03d of the chunked body %s\r\n", i, tag)
		if i%50 == 0 {
			b.WriteString(".\r\n..a leading dot\r\n")
		}
	}
	return b.Bytes()
}

// bdatBinary is a BODY=BINARYMIME message: a MIME part with
// Content-Transfer-Encoding: binary holding every octet value, bare CR and
// LF, NUL, and a 3000-octet line — none of which text may carry.
func bdatBinary(tag string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nSubject: binary %s\r\nMessage-ID: <%[2]s@test.example>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n", outSender, tag)
	for i := 0; i < 256; i++ {
		b.WriteByte(byte(i))
	}
	b.WriteString("\n.\n\r.\r\x00")
	b.Write(bytes.Repeat([]byte{'y'}, 3000))
	b.WriteString("\r\n.\r\n")
	return b.Bytes()
}

// firstDiff describes where got and want part.
func firstDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-40)
	return fmt.Sprintf("%d vs %d octets, first difference at %d:\n got …%q\nwant …%q", len(got), len(want), i,
		got[lo:min(len(got), i+40)], want[lo:min(len(want), i+40)])
}

// mustSend sends msg on c and returns the result; c's transcript is tr.
func mustSend(t *testing.T, c *client.Conn, env client.Envelope, msg []byte) client.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), outWait)
	defer cancel()
	res, err := c.Send(ctx, env, bytes.NewReader(msg))
	if err != nil || res.Data != nil {
		t.Fatalf("Send: %v / %v (rcpts %v)", err, res.Data, res.Rcpt)
	}
	return res
}

func TestBDATToPostfix(t *testing.T) {
	p := startRelayPostfix(t)
	var tr strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), outWait)
	defer cancel()
	c, err := client.Dial(ctx, p.addr, client.Options{LocalName: "bdat.example", ChunkSize: 1024, Transcript: &tr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(&tls.Config{ServerName: relayHost, RootCAs: rootsFromFile(t, p.cert)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Ext("CHUNKING"); !ok {
		t.Fatalf("Postfix does not offer CHUNKING: %v", c.Extensions())
	}
	if _, ok := c.Ext("BINARYMIME"); ok {
		t.Fatalf("Postfix offers BINARYMIME; the test expects it not to")
	}
	if err := c.Auth(sasl.NewPlainClient("", relayUser, relayPassword)); err != nil {
		t.Fatal(err)
	}
	msg := bdatText("postfix-bdat")
	mustSend(t, c, client.Envelope{From: outSender, To: []string{relayRcpt}}, msg)
	log := tr.String()
	chunks := strings.Count(log, "C: BDAT 1024\n")
	if chunks < len(msg)/1024 || !strings.Contains(log, " LAST\n") || strings.Contains(log, "C: DATA") {
		t.Errorf("not sent in BDAT chunks of 1024 (%d full chunks for %d octets):\n%s", chunks, len(msg), log)
	}
	// Postfix offers no BINARYMIME: a binary message is refused before MAIL
	// (smtpkit never sends binary data where it is not offered).
	_, err = c.Send(ctx, client.Envelope{From: outSender, To: []string{relayRcpt}, Binary: true}, bytes.NewReader(bdatBinary("postfix")))
	var se *smtp.Error
	if !errors.Is(err, client.ErrRefused) || !errors.As(err, &se) || se.Reply.Code != 554 || se.Reply.Enhanced != "5.6.3" {
		t.Errorf("binary message to Postfix: %v, want a 554 5.6.3 refusal of our own", err)
	}
	eventually(t, "the message in Postfix's mailbox", func() bool {
		return len(p.delivered(t, relayRcpt, "postfix-bdat")) == 1
	})
	got := p.delivered(t, relayRcpt, "postfix-bdat")[0]
	// virtual(8) writes LF line ends; above the message only its trace.
	want := bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
	if !bytes.HasSuffix(got, want) {
		t.Fatalf("message changed on the way: %s", firstDiff(got[max(0, len(got)-len(want)):], want))
	}
	var names []string
	for _, f := range relayTraceFields(string(got[:len(got)-len(want)])) {
		name, _, _ := strings.Cut(f, ":")
		names = append(names, name)
	}
	if strings.Join(names, ",") != "Return-Path,X-Original-To,Delivered-To,Received" {
		t.Errorf("Postfix added %v above the message, want only its trace fields", names)
	}
}

func TestBDATFallbackDataToAiosmtpd(t *testing.T) {
	p := startAio(t)
	var tr strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), outWait)
	defer cancel()
	c, err := client.Dial(ctx, p.addr, client.Options{LocalName: "bdat.example", Transcript: &tr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Ext("CHUNKING"); ok {
		t.Fatalf("aiosmtpd offers CHUNKING; the test expects a DATA-only peer")
	}
	msg := bdatText("aiosmtpd-data")
	mustSend(t, c, client.Envelope{From: outSender, To: []string{"x@peer.example"}}, msg)
	if log := tr.String(); !strings.Contains(log, "C: DATA\n") || strings.Contains(log, "BDAT") {
		t.Errorf("not sent with DATA:\n%s", log)
	}
	_, err = c.Send(ctx, client.Envelope{From: outSender, To: []string{"x@peer.example"}, Binary: true}, bytes.NewReader(bdatBinary("aio")))
	if !errors.Is(err, client.ErrRefused) {
		t.Errorf("binary message to a DATA-only peer: %v, want refused before MAIL", err)
	}
	eventually(t, "the message at aiosmtpd", func() bool { return len(p.messages()) >= 1 })
	if got := []byte(p.messages()[0].Data); !bytes.Equal(got, msg) {
		t.Errorf("aiosmtpd got %d octets, not the %d sent byte for byte", len(got), len(msg))
	}
	if n := len(p.messages()); n != 1 {
		t.Errorf("aiosmtpd got %d messages, want 1 (the binary one must not arrive)", n)
	}
}

// TestBinaryMIMEEndToEnd: a BODY=BINARYMIME message submitted to smtpkit A
// for a local mailbox and for a domain routed to smtpkit B. The local copy
// is stored as sent; the remote copy waits in A's queue while B is down,
// keeps its BINARYMIME flag across A's restart, and reaches B's Maildir
// byte for byte (B refuses NUL and bare LF in text, so it can only have
// come with BDAT BODY=BINARYMIME).
func TestBinaryMIMEEndToEnd(t *testing.T) {
	b := StartServer(t, ServerOptions{IP: "127.16.2.1", Domains: []string{"remote.example"}})
	b.AddUser(t, "bob@remote.example", "bob pw")
	b.Stop(t)
	conf := outConf{routes: []outRoute{{domain: "remote.example", host: b.MX, tls: "opportunistic"}}}
	a := StartServer(t, ServerOptions{IP: "127.16.2.2", ExtraTOML: conf.toml()})
	a.AddUser(t, outSender, outPassword)
	const local = "carol@" + testDomain
	a.AddUser(t, local, "carol pw")

	msg := bdatBinary("end-to-end")
	var tr strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), outWait)
	defer cancel()
	c, err := client.Dial(ctx, a.Submission, client.Options{LocalName: "submitter.example", Transcript: &tr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(&tls.Config{ServerName: testHostname, RootCAs: rootsFromFile(t, a.CertPath)}); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", outSender, outPassword)); err != nil {
		t.Fatal(err)
	}
	mustSend(t, c, client.Envelope{From: outSender, To: []string{"bob@remote.example", local}, Binary: true}, msg)
	c.Quit()
	if log := tr.String(); !strings.Contains(log, "BODY=BINARYMIME") || !strings.Contains(log, " LAST\n") {
		t.Errorf("not submitted with BDAT BODY=BINARYMIME:\n%s", log)
	}
	if got := StripTrace(a.WaitMessages(t, local, 1)[0]); !bytes.Equal(got, msg) {
		t.Errorf("local copy changed: %s", firstDiff(got, msg))
	}

	waitLogCount(t, a, "delivery deferred", 1) // B is down
	if n := queued(t, a); n != 1 {
		t.Fatalf("%d queued messages, want 1", n)
	}
	// A small message is a journal record until the next checkpoint
	// writes its env file (within a second).
	var envs []string
	eventually(t, "the deferred message's env file", func() bool {
		envs, _ = filepath.Glob(filepath.Join(a.DataDir, "queue", "env", "*.json"))
		return len(envs) == 1
	})
	a.Restart(t)
	raw, err := os.ReadFile(envs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"binary": true`)) {
		t.Errorf("queued envelope lacks the BINARYMIME flag:\n%s", raw)
	}
	b.Restart(t)
	got := b.WaitMessages(t, "bob@remote.example", 1)[0]
	rest := StripTrace(got) // B's Return-Path and Received
	if !hasFieldPrefix(rest, "Received:") {
		t.Fatalf("no Received of A under B's:\n%q", rest)
	}
	if body := StripTrace(rest); !bytes.Equal(body, msg) {
		t.Errorf("relayed copy changed: %s", firstDiff(body, msg))
	}
	eventually(t, "A's queue to empty", func() bool { return queued(t, a) == 0 })
}

// TestSendBinary: `smtpkit send --binary --data FILE` sends the file with
// BDAT BODY=BINARYMIME and smtpkit stores it octet for octet; --binary
// without --data is a usage error.
func TestSendBinary(t *testing.T) {
	s := StartServer(t, ServerOptions{IP: "127.16.2.3"})
	s.AddUser(t, "user@test.example", "send binary pw")
	msg := bdatBinary("send-binary")
	r := mustSmtpkit(t, 0, nil, nil, append(sendArgs(s, s.MX, "a@b.example", "user@test.example"),
		"--data", writeMessage(t, msg), "--binary", "-v")...)
	if !strings.Contains(r.Stderr, "BODY=BINARYMIME") || !strings.Contains(r.Stderr, "C: BDAT ") {
		t.Errorf("not sent with BDAT BODY=BINARYMIME:\n%s", r.Stderr)
	}
	if got := StripTrace(s.WaitMessages(t, "user@test.example", 1)[0]); !bytes.Equal(got, msg) {
		t.Errorf("stored copy changed: %s", firstDiff(got, msg))
	}
	mustSmtpkit(t, 2, nil, nil, append(sendArgs(s, s.MX, "a@b.example", "user@test.example"), "--body", "x", "--binary")...)
}
