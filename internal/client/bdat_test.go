package client

import (
	"context"
	"errors"
	"strings"
	"testing"

	"smtpkit/internal/smtp"
)

// chunkOpts is a session whose BDAT chunks are size octets.
func chunkSession(t *testing.T, f *fake, size int) *Conn {
	t.Helper()
	o := testOpts(nil)
	o.ChunkSize = size
	c, err := Dial(context.Background(), f.addr(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSendBDATLockstep(t *testing.T) {
	// No PIPELINING: each chunk waits for its reply; text is CRLF-normalized
	// but not dot-stuffed; a body that fills the last chunk exactly ends
	// with "BDAT 0 LAST".
	f := startFake(t, []step{
		{send: greeting},
		ehloStep("CHUNKING"),
		{recv: []string{"MAIL FROM:<a@example.org>"}, send: "250 ok\r\n"},
		{recv: []string{"RCPT TO:<b@example.net>"}, send: "250 ok\r\n"},
		{chunks: []string{"BDAT 4"}, send: "250 2.0.0 4 octets\r\n"},
		{chunks: []string{"BDAT 4"}, send: "250 2.0.0 4 octets\r\n"},
		{chunks: []string{"BDAT 0 LAST"}, send: "250 2.0.0 queued\r\n"},
		quitStep(),
	})
	c := chunkSession(t, f, 4)
	res, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.net"}},
		strings.NewReader("ab\n.c"))
	if err != nil || res.Data != nil || res.Reply.Text() != "queued" {
		t.Fatalf("Send: %v %+v", err, res)
	}
	var got string
	for range 3 {
		got += <-f.data
	}
	if got != "ab\r\n.c\r\n" {
		t.Errorf("data %q", got)
	}
	finish(t, f, c)
}

func TestSendBDATPipelined(t *testing.T) {
	// With PIPELINING: MAIL and RCPT in one write, then all three chunks
	// before any reply is read.
	f := startFake(t, []step{
		{send: greeting},
		ehloStep("PIPELINING", "CHUNKING", "8BITMIME"),
		{recv: []string{"MAIL FROM:<a@example.org> BODY=8BITMIME", "RCPT TO:<b@example.net>"},
			send: "250 ok\r\n250 ok\r\n"},
		{chunks: []string{"BDAT 5", "BDAT 5", "BDAT 1 LAST"}, send: "250 ok\r\n250 ok\r\n250 2.0.0 queued\r\n"},
		quitStep(),
	})
	c := chunkSession(t, f, 5)
	res, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.net"}, EightBit: true},
		strings.NewReader("Subj\xc3\xa9\r\n.\r\n"))
	if err != nil || res.Data != nil {
		t.Fatalf("Send: %v %+v", err, res)
	}
	if got := <-f.data; got != "Subj\xc3\xa9\r\n.\r\n" {
		t.Errorf("data %q", got)
	}
	finish(t, f, c)
}

func TestSendBDATBinary(t *testing.T) {
	// BODY=BINARYMIME: octets go out as they are, bare LF, CR and NUL too.
	body := "Content-Type: application/octet-stream\r\n\r\n\x00\n\r\xff"
	f := startFake(t, []step{
		{send: greeting},
		ehloStep("PIPELINING", "CHUNKING", "BINARYMIME", "8BITMIME"),
		{recv: []string{"MAIL FROM:<a@example.org> BODY=BINARYMIME", "RCPT TO:<b@example.net>"},
			send: "250 ok\r\n250 ok\r\n"},
		{chunks: []string{"BDAT 46 LAST"}, send: "250 2.0.0 queued\r\n"},
		quitStep(),
	})
	c := chunkSession(t, f, 0)
	res, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.net"}, Binary: true, EightBit: true},
		strings.NewReader(body))
	if err != nil || res.Data != nil {
		t.Fatalf("Send: %v %+v", err, res)
	}
	if got := <-f.data; got != body {
		t.Errorf("data %q, want %q", got, body)
	}
	finish(t, f, c)
}

func TestSendBinaryRefusedBeforeMail(t *testing.T) {
	for _, exts := range [][]string{{"CHUNKING"}, {"BINARYMIME"}, {"8BITMIME"}} {
		t.Run(strings.Join(exts, ","), func(t *testing.T) {
			f := startFake(t, []step{{send: greeting}, ehloStep(exts...), quitStep()})
			c := chunkSession(t, f, 0)
			_, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.net"}, Binary: true},
				strings.NewReader("x"))
			var se *smtp.Error
			if !errors.Is(err, ErrRefused) || !errors.As(err, &se) || se.Reply.Code != 554 || se.Reply.Enhanced != "5.6.3" {
				t.Fatalf("err %v, want a 554 5.6.3 refusal", err)
			}
			if err := f.wait(); err != nil {
				t.Errorf("server: %v", err)
			}
		})
	}
}

func TestSendBDATChunkRefused(t *testing.T) {
	// Lockstep: the second chunk is refused, no third is sent, RSET follows.
	f := startFake(t, []step{
		{send: greeting},
		ehloStep("CHUNKING"),
		{recv: []string{"MAIL FROM:<a@example.org>"}, send: "250 ok\r\n"},
		{recv: []string{"RCPT TO:<b@example.net>"}, send: "250 ok\r\n"},
		{chunks: []string{"BDAT 4"}, send: "250 ok\r\n"},
		{chunks: []string{"BDAT 4"}, send: "552 5.3.4 message too big\r\n"},
		{recv: []string{"RSET"}, send: "250 ok\r\n"},
		quitStep(),
	})
	c := chunkSession(t, f, 4)
	res, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.net"}},
		strings.NewReader("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	if code(res.Data) != 552 || res.Reply.Code != 552 {
		t.Fatalf("result %+v", res)
	}
	<-f.data
	<-f.data
	finish(t, f, c)
}

func TestSendBDATPipelinedRefusal(t *testing.T) {
	// With PIPELINING at most chunkWindow chunks are in flight; after the
	// refusal of the second the client sends nothing more but reads every
	// outstanding reply, then RSET. 40 octets in chunks of 4: chunks 1-8
	// go, the reply to 1 lets chunk 9 go, the reply to 2 stops it.
	var first []string
	for range chunkWindow {
		first = append(first, "BDAT 4")
	}
	replies := "250 ok\r\n" + strings.Repeat("554 5.6.0 no\r\n", chunkWindow-1)
	f := startFake(t, []step{
		{send: greeting},
		ehloStep("PIPELINING", "CHUNKING"),
		{recv: []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>"}, send: "250 ok\r\n250 ok\r\n"},
		{chunks: first, send: replies},
		{chunks: []string{"BDAT 4"}, send: "554 5.6.0 no\r\n"},
		{recv: []string{"RSET"}, send: "250 ok\r\n"},
		quitStep(),
	})
	c := chunkSession(t, f, 4)
	res, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.net"}},
		strings.NewReader(strings.Repeat("abcd", 10)))
	if err != nil {
		t.Fatal(err)
	}
	if code(res.Data) != 554 || res.Reply.Enhanced != "5.6.0" {
		t.Fatalf("result %+v", res)
	}
	<-f.data
	<-f.data
	finish(t, f, c)
}

func TestSendBDATNoRecipients(t *testing.T) {
	f := startFake(t, []step{
		{send: greeting},
		ehloStep("PIPELINING", "CHUNKING"),
		{recv: []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>"}, send: "250 ok\r\n550 5.1.1 no\r\n"},
		{recv: []string{"RSET"}, send: "250 ok\r\n"},
		quitStep(),
	})
	c := chunkSession(t, f, 0)
	res, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.net"}},
		strings.NewReader("x\r\n"))
	if err != nil || !errors.Is(res.Data, ErrNoRecipients) {
		t.Fatalf("Send: %v %+v", err, res)
	}
	finish(t, f, c)
}

func TestSendBDATNoFinalReply(t *testing.T) {
	// The server hangs up after BDAT LAST: the message may have been taken.
	f := startFake(t, []step{
		{send: greeting},
		ehloStep("CHUNKING"),
		{recv: []string{"MAIL FROM:<a@example.org>"}, send: "250 ok\r\n"},
		{recv: []string{"RCPT TO:<b@example.net>"}, send: "250 ok\r\n"},
		{chunks: []string{"BDAT 3 LAST"}},
	})
	c := chunkSession(t, f, 0)
	_, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.net"}},
		strings.NewReader("x\r\n"))
	if !errors.Is(err, ErrNoFinalReply) {
		t.Fatalf("err %v, want ErrNoFinalReply", err)
	}
}
