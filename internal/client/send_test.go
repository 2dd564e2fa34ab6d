package client

import (
	"context"
	"errors"
	"strings"
	"testing"

	"smtpkit/internal/smtp"
)

// session dials the fake, says EHLO and returns the conn.
func session(t *testing.T, f *fake, tr *strings.Builder) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), f.addr(), testOpts(tr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello(); err != nil {
		t.Fatal(err)
	}
	return c
}

func finish(t *testing.T, f *fake, c *Conn) {
	t.Helper()
	if err := c.Quit(); err != nil {
		t.Errorf("Quit: %v", err)
	}
	if err := f.wait(); err != nil {
		t.Errorf("server: %v", err)
	}
}

// code returns the reply code of an *smtp.Error, or 0.
func code(err error) int {
	var se *smtp.Error
	if errors.As(err, &se) {
		return se.Reply.Code
	}
	return 0
}

func TestSendPipelinedOneWrite(t *testing.T) {
	// The server reads MAIL, both RCPTs and DATA before it answers anything:
	// a client that waited for the MAIL reply would time out here.
	f := startFake(t, []step{
		{send: greeting},
		ehloStep("PIPELINING", "SIZE 10000", "8BITMIME"),
		{recv: []string{"MAIL FROM:<a@example.org> SIZE=12 BODY=8BITMIME", "RCPT TO:<b@example.net>",
			"RCPT TO:<c@example.net>", "DATA"},
			send: "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n"},
		{data: true, send: "250 2.0.0 queued as X\r\n"},
		quitStep(),
	})
	c := session(t, f, nil)
	res, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.net", "c@example.net"},
		Size: 12, EightBit: true}, strings.NewReader("Subject: x\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Rcpt[0] != nil || code(res.Rcpt[1]) != 550 || res.Data != nil || res.Reply.Code != 250 {
		t.Fatalf("result %+v", res)
	}
	var se *smtp.Error
	if !errors.As(res.Rcpt[1], &se) || !se.Permanent() || se.Reply.Enhanced != "5.1.1" {
		t.Errorf("rcpt error %v", res.Rcpt[1])
	}
	if got := <-f.data; got != "Subject: x\r\n.\r\n" {
		t.Errorf("data %q", got)
	}
	finish(t, f, c)
}

func TestSendLockstep(t *testing.T) {
	f := startFake(t, []step{
		{send: greeting},
		ehloStep("SIZE"),
		{recv: []string{"MAIL FROM:<> SIZE=3"}, send: "250 ok\r\n"},
		{recv: []string{"RCPT TO:<b@example.net>"}, send: "250 ok\r\n"},
		{recv: []string{"RCPT TO:<Postmaster>"}, send: "250 ok\r\n"},
		{recv: []string{"DATA"}, send: "354 go\r\n"},
		{data: true, send: "250 ok\r\n"},
		quitStep(),
	})
	c := session(t, f, nil)
	res, err := c.Send(context.Background(), Envelope{To: []string{"b@example.net", "Postmaster"}, Size: 3},
		strings.NewReader(".a\nb"))
	if err != nil || res.Data != nil {
		t.Fatalf("Send: %v %+v", err, res)
	}
	// Dot stuffing and bare LF → CRLF, last line completed.
	if got := <-f.data; got != "..a\r\nb\r\n.\r\n" {
		t.Errorf("data %q", got)
	}
	finish(t, f, c)
}

func TestSendAllRecipientsRefused(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"lockstep: RSET, no DATA", []step{
			{recv: []string{"MAIL FROM:<a@example.org>"}, send: "250 ok\r\n"},
			{recv: []string{"RCPT TO:<b@example.net>"}, send: "550 5.1.1 no\r\n"},
			{recv: []string{"RCPT TO:<c@example.net>"}, send: "450 4.2.1 later\r\n"},
			{recv: []string{"RSET"}, send: "250 ok\r\n"},
		}},
		{"pipelined: DATA refused, RSET", []step{
			{recv: []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>", "RCPT TO:<c@example.net>", "DATA"},
				send: "250 ok\r\n550 5.1.1 no\r\n450 4.2.1 later\r\n554 5.5.1 no valid recipients\r\n"},
			{recv: []string{"RSET"}, send: "250 ok\r\n"},
		}},
		{"pipelined: DATA accepted anyway, empty message then RSET", []step{
			{recv: []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>", "RCPT TO:<c@example.net>", "DATA"},
				send: "250 ok\r\n550 5.1.1 no\r\n450 4.2.1 later\r\n354 go\r\n"},
			{recv: []string{"."}, send: "554 no recipients\r\n"},
			{recv: []string{"RSET"}, send: "250 ok\r\n"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ehlo := ehloStep("SIZE")
			if strings.HasPrefix(tt.name, "pipelined") {
				ehlo = ehloStep("PIPELINING")
			}
			f := startFake(t, append(append([]step{{send: greeting}, ehlo}, tt.steps...), quitStep()))
			c := session(t, f, nil)
			res, err := c.Send(context.Background(), Envelope{From: "a@example.org",
				To: []string{"b@example.net", "c@example.net"}}, strings.NewReader("x\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			if !errors.Is(res.Data, ErrNoRecipients) {
				t.Errorf("Data = %v", res.Data)
			}
			var e0, e1 *smtp.Error
			if !errors.As(res.Rcpt[0], &e0) || !e0.Permanent() || !errors.As(res.Rcpt[1], &e1) || !e1.Temporary() {
				t.Errorf("Rcpt = %v", res.Rcpt)
			}
			finish(t, f, c)
		})
	}
}

func TestSendRefusedBeforeMail(t *testing.T) {
	tests := []struct {
		name string
		ext  []string
		env  Envelope
		code int
		enh  smtp.Enhanced
	}{
		{"size over limit", []string{"SIZE 1000"}, Envelope{From: "a@example.org", To: []string{"b@example.net"}, Size: 2000}, 552, "5.3.4"},
		{"smtputf8 missing", []string{"8BITMIME"}, Envelope{From: "a@example.org", To: []string{"b@example.net"}, SMTPUTF8: true}, 553, "5.6.7"},
		{"utf8 address implies smtputf8", nil, Envelope{From: "a@example.org", To: []string{"jürgen@example.net"}}, 553, "5.6.7"},
		{"8bitmime missing", []string{"SIZE"}, Envelope{From: "a@example.org", To: []string{"b@example.net"}, EightBit: true}, 554, "5.6.3"},
		{"bad sender", nil, Envelope{From: "a@b\r\nRSET", To: []string{"b@example.net"}}, 553, "5.1.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, []step{{send: greeting}, ehloStep(tt.ext...), quitStep()})
			c := session(t, f, nil)
			_, err := c.Send(context.Background(), tt.env, strings.NewReader("x\r\n"))
			var se *smtp.Error
			if !errors.As(err, &se) || se.Reply.Code != tt.code || se.Reply.Enhanced != tt.enh || !se.Permanent() {
				t.Fatalf("err = %v, want %d %s", err, tt.code, tt.enh)
			}
			finish(t, f, c)
		})
	}
}

// TestSendRefusedEndsWithQuit: a message the client refuses itself ends the
// session with QUIT, sent by Send (the script's last step), and nothing
// else: no MAIL, no bare close. The refusal is marked as the client's own.
func TestSendRefusedEndsWithQuit(t *testing.T) {
	tests := []struct {
		name string
		ext  []string
		env  Envelope
	}{
		{"size over limit", []string{"SIZE 1000"}, Envelope{From: "a@example.org", To: []string{"b@example.net"}, Size: 2000}},
		{"smtputf8 missing", []string{"8BITMIME"}, Envelope{From: "a@example.org", To: []string{"b@example.net"}, SMTPUTF8: true}},
		{"8bitmime missing", nil, Envelope{From: "a@example.org", To: []string{"b@example.net"}, EightBit: true}},
		{"bad sender", nil, Envelope{From: "a@b\r\nRSET", To: []string{"b@example.net"}}},
		{"every recipient invalid", nil, Envelope{From: "a@example.org", To: []string{"x>\r\nDATA", "@"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, []step{{send: greeting}, ehloStep(tt.ext...), quitStep()})
			c := session(t, f, nil)
			res, err := c.Send(context.Background(), tt.env, strings.NewReader("x\r\n"))
			if !errors.Is(err, ErrRefused) || code(err) < 500 {
				t.Fatalf("err = %v, want a permanent refusal of the client's own", err)
			}
			for i, e := range res.Rcpt {
				if e != nil && !errors.Is(e, ErrRefused) {
					t.Errorf("Rcpt[%d] = %v, not marked as the client's own", i, e)
				}
			}
			if err := f.wait(); err != nil {
				t.Fatalf("server: %v", err)
			}
			if err := c.Noop(); err == nil {
				t.Error("the connection is still usable after the session ended")
			}
			if err := c.Quit(); err != nil {
				t.Errorf("Quit after the session ended: %v", err)
			}
		})
	}
}

// TestSendServerRefusalNotOurs: what a server said is never marked as the
// client's own refusal.
func TestSendServerRefusalNotOurs(t *testing.T) {
	f := startFake(t, []step{
		{send: greeting}, ehloStep(),
		{recv: []string{"MAIL FROM:<a@example.org>"}, send: "250 ok\r\n"},
		{recv: []string{"RCPT TO:<b@example.net>"}, send: "550 5.1.1 no such user\r\n"},
		{recv: []string{"RCPT TO:<c@example.net>"}, send: "250 ok\r\n"},
		{recv: []string{"DATA"}, send: "354 go\r\n"},
		{data: true, send: "554 5.6.0 spam\r\n"},
		{recv: []string{"MAIL FROM:<a@example.org>"}, send: "550 5.7.1 go away\r\n"},
		{recv: []string{"RSET"}, send: "250 ok\r\n"},
		quitStep(),
	})
	c := session(t, f, nil)
	env := Envelope{From: "a@example.org", To: []string{"b@example.net", "c@example.net"}}
	res, err := c.Send(context.Background(), env, strings.NewReader("x\r\n"))
	if err != nil || code(res.Rcpt[0]) != 550 || errors.Is(res.Rcpt[0], ErrRefused) ||
		code(res.Data) != 554 || errors.Is(res.Data, ErrRefused) {
		t.Fatalf("%v %+v", err, res)
	}
	<-f.data
	_, err = c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.net"}}, strings.NewReader("x\r\n"))
	if code(err) != 550 || errors.Is(err, ErrRefused) {
		t.Fatalf("MAIL refused: %v", err)
	}
	finish(t, f, c)
}

func TestSendInvalidRecipientNotSent(t *testing.T) {
	f := startFake(t, []step{
		{send: greeting}, ehloStep(),
		{recv: []string{"MAIL FROM:<a@example.org>"}, send: "250 ok\r\n"},
		{recv: []string{"RCPT TO:<b@example.net>"}, send: "250 ok\r\n"},
		{recv: []string{"DATA"}, send: "354 go\r\n"},
		{data: true, send: "250 ok\r\n"},
		quitStep(),
	})
	c := session(t, f, nil)
	res, err := c.Send(context.Background(), Envelope{From: "a@example.org",
		To: []string{"x>\r\nDATA", "b@example.net"}}, strings.NewReader("x\r\n"))
	if err != nil || code(res.Rcpt[0]) != 553 || res.Rcpt[1] != nil || res.Data != nil {
		t.Fatalf("%v %+v", err, res)
	}
	<-f.data
	finish(t, f, c)
}

func TestSendClassification(t *testing.T) {
	tests := []struct {
		name      string
		steps     []step
		wantErr   int // code of Send's error
		wantData  int // code of Result.Data
		temporary bool
	}{
		{"MAIL 451 temporary", []step{
			{recv: []string{"MAIL FROM:<a@example.org>"}, send: "451 4.3.0 try later\r\n"},
			{recv: []string{"RSET"}, send: "250 ok\r\n"},
		}, 451, 451, true},
		{"MAIL 550 permanent", []step{
			{recv: []string{"MAIL FROM:<a@example.org>"}, send: "550 5.7.1 go away\r\n"},
			{recv: []string{"RSET"}, send: "250 ok\r\n"},
		}, 550, 550, false},
		{"DATA command 451", []step{
			{recv: []string{"MAIL FROM:<a@example.org>"}, send: "250 ok\r\n"},
			{recv: []string{"RCPT TO:<b@example.net>"}, send: "250 ok\r\n"},
			{recv: []string{"DATA"}, send: "451 4.3.0 not now\r\n"},
			{recv: []string{"RSET"}, send: "250 ok\r\n"},
		}, 0, 451, true},
		{"final 554 permanent", []step{
			{recv: []string{"MAIL FROM:<a@example.org>"}, send: "250 ok\r\n"},
			{recv: []string{"RCPT TO:<b@example.net>"}, send: "250 ok\r\n"},
			{recv: []string{"DATA"}, send: "354 go\r\n"},
			{data: true, send: "554 5.6.0 spam\r\n"},
		}, 0, 554, false},
		{"final 452 temporary", []step{
			{recv: []string{"MAIL FROM:<a@example.org>"}, send: "250 ok\r\n"},
			{recv: []string{"RCPT TO:<b@example.net>"}, send: "250 ok\r\n"},
			{recv: []string{"DATA"}, send: "354 go\r\n"},
			{data: true, send: "452 4.3.1 full\r\n"},
		}, 0, 452, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, append(append([]step{{send: greeting}, ehloStep()}, tt.steps...), quitStep()))
			c := session(t, f, nil)
			res, err := c.Send(context.Background(), Envelope{From: "a@example.org", To: []string{"b@example.net"}},
				strings.NewReader("x\r\n"))
			if code(err) != tt.wantErr || (err != nil) != (tt.wantErr != 0) {
				t.Fatalf("err = %v, want code %d", err, tt.wantErr)
			}
			var se *smtp.Error
			if !errors.As(res.Data, &se) || se.Reply.Code != tt.wantData || se.Temporary() != tt.temporary || se.Permanent() == tt.temporary {
				t.Fatalf("Data = %v, want %d temporary=%v", res.Data, tt.wantData, tt.temporary)
			}
			finish(t, f, c)
		})
	}
}
