package interop

import (
	"fmt"
	"strings"
	"testing"
)

// mailFrom opens a transaction on a greeted, EHLO'd connection.
func mailFrom(c *Conn, sender string) {
	c.t.Helper()
	c.Cmd("MAIL FROM:<"+sender+">", 250)
}

// expectReply reads one reply and checks its code and enhanced code.
func expectReply(t *testing.T, c *Conn, code int, enhanced string) Reply {
	t.Helper()
	r := c.Reply()
	if r.Code != code || r.Enhanced() != enhanced {
		t.Errorf("got %v, want %d %s", r, code, enhanced)
	}
	return r
}

// TestRawProtocol drives the server with raw bytes over TCP: framing,
// pipelining, STARTTLS and policy edges that client libraries hide.
func TestRawProtocol(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	s.AddUser(t, "user@test.example", "correct horse battery staple")
	s.AddUser(t, "smuggle@test.example", "another correct horse")

	// session returns a greeted connection to the mx listener after EHLO.
	session := func(t *testing.T) *Conn {
		c := Dial(t, s.MX)
		c.Greeting()
		c.Hello()
		return c
	}

	t.Run("pipelining in one write", func(t *testing.T) {
		c := Dial(t, s.MX)
		c.Greeting()
		c.Send("EHLO client.b.example", "MAIL FROM:<pipe@b.example>", "RCPT TO:<postmaster@test.example>",
			"RCPT TO:<nobody@test.example>", "RCPT TO:<user@test.example>", "DATA")
		if ehlo := c.Expect(250); !ehlo.Has("PIPELINING") {
			t.Errorf("EHLO does not offer PIPELINING: %v", ehlo)
		}
		c.Expect(250)
		c.Expect(250)
		expectReply(t, c, 550, "5.1.1")
		c.Expect(250)
		c.Expect(354)
		msg := testMessage("raw-pipelining")
		c.Write(string(dotStuff(msg)) + ".\r\n")
		c.Expect(250)
		c.Cmd("QUIT", 221)
		for _, rcpt := range []string{"postmaster@test.example", "user@test.example"} {
			checkDelivered(t, s.WaitMessages(t, rcpt, 1)[0], msg, "pipe@b.example")
		}
	})

	t.Run("STARTTLS discards pipelined plaintext", func(t *testing.T) {
		// RFC 3207 §4.2 and CVE-2011-0411: commands sent after STARTTLS in
		// the same packet must not be executed inside the TLS session.
		c := session(t)
		c.Write("STARTTLS\r\nRSET\r\n")
		c.Expect(220)
		c.handshake(s)
		c.Send("HELP")
		if r := c.Reply(); r.Code != 214 {
			t.Fatalf("first reply inside TLS is %v, want HELP's 214: the injected RSET was answered", r)
		}
		c.Hello()
		c.Cmd("QUIT", 221)
	})

	smuggling := map[string]string{
		"LF dot LF":     "\n.\n",
		"CR dot CR":     "\r.\r",
		"CRLF dot LF":   "\r\n.\n",
		"LF dot CRLF":   "\n.\r\n",
		"CR dot CRLF":   "\r.\r\n",
		"CRLF dot CR":   "\r\n.\r",
		"bare LF lines": "\n",
	}
	for name, seq := range smuggling {
		t.Run("smuggling "+name, func(t *testing.T) {
			// RFC 5321 §4.1.1.4 and CVE-2023-51764: only CRLF.CRLF ends the
			// data. A second transaction hidden behind a bare-LF end must
			// not be run, and the message with bare line ends is refused.
			c := session(t)
			mailFrom(c, "a@b.example")
			c.Cmd("RCPT TO:<smuggle@test.example>", 250)
			c.Cmd("DATA", 354)
			c.Write("Subject: smuggle\r\n\r\nhello" + seq +
				"MAIL FROM:<evil@b.example>\r\nRCPT TO:<smuggle@test.example>\r\nDATA\r\nsmuggled\r\n.\r\n")
			r := c.Reply()
			if r.Code < 500 || r.Code > 599 {
				t.Errorf("reply after CRLF.CRLF is %v, want 5xx", r)
			}
			t.Logf("end of data: %v", r)
			// The next reply must be QUIT's: nothing else was executed.
			c.Send("QUIT")
			if r, err := c.ReadReply(); err == nil && r.Code != 221 {
				t.Errorf("reply to QUIT is %v: a smuggled command was answered", r)
			}
			if n := s.CountFiles(t, "smuggle@test.example", "new"); n != 0 {
				t.Errorf("%d messages delivered", n)
			}
		})
	}

	t.Run("SIZE over the limit", func(t *testing.T) {
		c := session(t)
		c.Send("MAIL FROM:<a@b.example> SIZE=99999999999")
		expectReply(t, c, 552, "5.3.4")
	})

	t.Run("HTTP request closes the connection", func(t *testing.T) {
		c := Dial(t, s.MX)
		c.Greeting()
		c.Send("GET / HTTP/1.1", "Host: mx.test.example", "")
		c.ExpectClosed()
	})

	t.Run("relay attempts", func(t *testing.T) {
		for _, rcpt := range []string{
			"someone@elsewhere.example",
			"user%elsewhere.example@test.example",
			"@a.example:user@test.example",
			`"user@elsewhere"@test.example`,
		} {
			c := session(t)
			mailFrom(c, "a@b.example")
			c.Send("RCPT TO:<" + rcpt + ">")
			if r := c.Reply(); r.Code != 550 || r.Enhanced() != "5.7.1" {
				t.Errorf("RCPT TO:<%s>: %v, want 550 5.7.1", rcpt, r)
			}
			c.Cmd("QUIT", 221)
		}
	})

	t.Run("unknown local user", func(t *testing.T) {
		c := session(t)
		mailFrom(c, "a@b.example")
		c.Send("RCPT TO:<nobody@test.example>")
		expectReply(t, c, 550, "5.1.1")
	})

	t.Run("101 recipients", func(t *testing.T) {
		c := session(t)
		mailFrom(c, "a@b.example")
		// Distinct addresses (plus-addressing): a repeated address is a
		// duplicate, not another recipient.
		rcpts := make([]string, 101)
		for i := range rcpts {
			rcpts[i] = fmt.Sprintf("RCPT TO:<user+%d@test.example>", i)
		}
		c.Send(rcpts...)
		for i := 0; i < 100; i++ {
			if r := c.Reply(); r.Code != 250 {
				t.Fatalf("recipient %d: %v", i+1, r)
			}
		}
		expectReply(t, c, 452, "4.5.3")
	})

	t.Run("unknown verb", func(t *testing.T) {
		c := session(t)
		c.Send("XYZZY plugh")
		expectReply(t, c, 500, "5.5.2")
	})
}

// TestDisconnectMidData checks that a client vanishing during DATA leaves
// no message behind: nothing in new/, and tmp/ cleaned up.
func TestDisconnectMidData(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	c := Dial(t, s.MX)
	c.Greeting()
	c.Hello()
	mailFrom(c, "a@b.example")
	c.Cmd("RCPT TO:<postmaster@test.example>", 250)
	c.Cmd("DATA", 354)
	// Enough body that the server has started its temporary file.
	c.Write("Subject: cut\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 2048))
	c.Close()
	// A graceful stop waits for every session, so the server has seen the
	// disconnect and cleaned up when it returns.
	s.Stop(t)
	for _, sub := range []string{"new", "tmp"} {
		if n := s.CountFiles(t, "postmaster@test.example", sub); n != 0 {
			t.Errorf("%d files in %s/ after a disconnect mid-DATA", n, sub)
		}
	}
}
