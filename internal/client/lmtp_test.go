package client

import (
	"context"
	"errors"
	"strings"
	"testing"

	"smtpkit/internal/smtp"
)

// lmtpSession dials the fake as an LMTP client and says LHLO.
func lmtpSession(t *testing.T, f *fake) *Conn {
	t.Helper()
	o := testOpts(nil)
	o.LMTP = true
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

// TestLMTPReplies is RFC 2033 §4.2 as a table: after the data one reply
// per recipient accepted at RCPT, in RCPT order, each kept for its
// recipient; CHUNKING offered is not used (DATA); a connection lost after
// some replies keeps those and marks the rest unread (ErrNoFinalReply).
func TestLMTPReplies(t *testing.T) {
	lhlo := step{recv: []string{"LHLO client.test"},
		send: "250-lmtp.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"}
	envCmds := []string{"MAIL FROM:<s@example.org> BODY=8BITMIME", "RCPT TO:<a@example.org>",
		"RCPT TO:<b@example.org>", "RCPT TO:<c@example.org>", "RCPT TO:<d@example.org>", "DATA"}
	rcptReplies := "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 <b@example.org> User doesn't exist\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go\r\n"
	cases := []struct {
		name     string
		final    string // the replies after "."
		quit     bool
		wantCode []int // per recipient: RCPT refusal or final reply
		wantLost bool
	}{
		{"mixed", "250 2.0.0 <a@example.org> Saved\r\n552 5.2.2 <c@example.org> Quota exceeded\r\n452 4.2.2 <d@example.org> Quota exceeded\r\n",
			true, []int{250, 550, 552, 452}, false},
		{"all delivered", "250 2.0.0 ok a\r\n250 2.0.0 ok c\r\n250 2.0.0 ok d\r\n", true, []int{250, 550, 250, 250}, false},
		{"lost after the first", "250 2.0.0 ok a\r\n", false, []int{250, 550, 0, 0}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			steps := []step{{send: "220 lmtp.test LMTP ready\r\n"}, lhlo,
				{recv: envCmds, send: rcptReplies}, {data: true, send: tc.final, hangup: !tc.quit}}
			if tc.quit {
				steps = append(steps, quitStep())
			}
			f := startFake(t, steps)
			c := lmtpSession(t, f)
			res, err := c.Send(context.Background(), Envelope{From: "s@example.org",
				To: []string{"a@example.org", "b@example.org", "c@example.org", "d@example.org"}, EightBit: true},
				strings.NewReader("Subject: x\r\n\r\nhi\r\n"))
			if tc.wantLost {
				if !errors.Is(err, ErrNoFinalReply) || !errors.Is(res.Data, ErrNoFinalReply) {
					t.Fatalf("err %v, Data %v: want ErrNoFinalReply", err, res.Data)
				}
			} else if err != nil || res.Data != nil {
				t.Fatalf("err %v, Data %v", err, res.Data)
			}
			if len(res.Final) != 4 {
				t.Fatalf("Final %v", res.Final)
			}
			for i, want := range tc.wantCode {
				got := res.Final[i].Code
				if res.Rcpt[i] != nil {
					got = code(res.Rcpt[i])
					if res.Final[i].Code != 0 {
						t.Errorf("rcpt %d refused at RCPT has a final reply %v", i, res.Final[i])
					}
				}
				if got != want {
					t.Errorf("rcpt %d: code %d, want %d", i, got, want)
				}
			}
			if tc.name == "mixed" && (res.Final[2].Enhanced != "5.2.2" || res.Final[3].Enhanced != "4.2.2") {
				t.Errorf("enhanced codes %v %v", res.Final[2], res.Final[3])
			}
			if got := <-f.data; got != "Subject: x\r\n\r\nhi\r\n.\r\n" {
				t.Errorf("data %q", got)
			}
			if tc.quit {
				finish(t, f, c)
			} else {
				c.Close()
			}
		})
	}
}

// TestLMTPHello: an LMTP client says LHLO and does not fall back to HELO
// when it is refused (RFC 2033 §4.1).
func TestLMTPHello(t *testing.T) {
	f := startFake(t, []step{
		{send: "220 lmtp.test\r\n"},
		{recv: []string{"LHLO client.test"}, send: "500 5.5.1 unknown command\r\n"},
	})
	o := testOpts(nil)
	o.LMTP = true
	c, err := Dial(context.Background(), f.addr(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Hello()
	var se *smtp.Error
	if !errors.As(err, &se) || se.Reply.Code != 500 {
		t.Fatalf("Hello: %v", err)
	}
	c.Close()
	if err := f.wait(); err != nil {
		t.Errorf("server: %v", err)
	}
}
