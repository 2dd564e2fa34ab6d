package interop

// auth_raw_test.go: AUTH (RFC 4954) and submission rules (RFC 6409) over
// raw sockets, where the exact replies are visible, and the failed-login
// throttle.

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"
)

// submissionConn returns a connection to the submission listener after
// EHLO, STARTTLS and EHLO again, with the second EHLO reply.
func submissionConn(t *testing.T, s *Server) (*Conn, Reply) {
	t.Helper()
	c := Dial(t, s.Submission)
	c.Greeting()
	c.Hello()
	c.StartTLS(s)
	return c, c.Hello()
}

// submissionsConn returns an implicit-TLS connection to the submissions
// listener after EHLO.
func submissionsConn(t *testing.T, s *Server) *Conn {
	t.Helper()
	c := DialTLS(t, s, s.Submissions)
	c.Greeting()
	c.Hello()
	return c
}

// login authenticates with AUTH PLAIN and an initial response.
func login(t *testing.T, c *Conn, user, password string) {
	t.Helper()
	c.Send("AUTH PLAIN " + plainResponse(user, password))
	expectReply(t, c, 235, "2.7.0")
}

// rawData sends DATA and msg (dot-stuffed here) and expects 250.
func rawData(t *testing.T, c *Conn, msg []byte) {
	t.Helper()
	c.Cmd("DATA", 354)
	c.Write(string(dotStuff(msg)) + ".\r\n")
	c.Expect(250)
}

func TestAuthRaw(t *testing.T) {
	t.Parallel()
	s := authServer(t)
	addAlias(t, s, "sales@test.example", aliceAddr)

	t.Run("no relay without AUTH on any role", func(t *testing.T) {
		mx := Dial(t, s.MX)
		mx.Greeting()
		mx.Hello()
		mailFrom(mx, "a@b.example")
		mx.Send("RCPT TO:<" + otherAddr + ">")
		expectReply(t, mx, 550, "5.7.1")
		mx.Cmd("RSET", 250)
		mx.StartTLS(s)
		mx.Hello()
		mailFrom(mx, "a@b.example")
		mx.Send("RCPT TO:<" + otherAddr + ">")
		expectReply(t, mx, 550, "5.7.1")

		sub := Dial(t, s.Submission)
		sub.Greeting()
		sub.Hello()
		sub.Send("MAIL FROM:<" + aliceAddr + ">") // before STARTTLS
		expectReply(t, sub, 530, "5.7.0")
		sub.StartTLS(s)
		sub.Hello()
		sub.Send("MAIL FROM:<" + aliceAddr + ">")
		expectReply(t, sub, 530, "5.7.0")

		subs := submissionsConn(t, s)
		subs.Send("MAIL FROM:<" + aliceAddr + ">")
		expectReply(t, subs, 530, "5.7.0")
	})

	t.Run("AUTH only inside TLS and only where enabled", func(t *testing.T) {
		c := Dial(t, s.Submission)
		c.Greeting()
		if ehlo := c.Hello(); ehlo.Has("AUTH") {
			t.Errorf("AUTH advertised before TLS: %v", ehlo)
		}
		c.Send("AUTH PLAIN " + plainResponse(aliceAddr, alicePW))
		expectReply(t, c, 538, "5.7.11")
		c.StartTLS(s)
		ehlo := c.Hello()
		if !regexp.MustCompile(`^AUTH( [A-Z0-9-]+)+$`).MatchString(authLine(ehlo)) ||
			!strings.Contains(authLine(ehlo)+" ", " SCRAM-SHA-256 ") {
			t.Errorf("EHLO after STARTTLS: %v, want AUTH with PLAIN, LOGIN and SCRAM-SHA-256", ehlo)
		}
		login(t, c, aliceAddr, alicePW)

		mx := Dial(t, s.MX)
		mx.Greeting()
		mx.Hello()
		mx.Send("AUTH PLAIN " + plainResponse(aliceAddr, alicePW))
		expectReply(t, mx, 502, "5.5.1")
		mx.StartTLS(s)
		if ehlo := mx.Hello(); ehlo.Has("AUTH") {
			t.Errorf("AUTH advertised on mx: %v", ehlo)
		}
		mx.Send("AUTH PLAIN " + plainResponse(aliceAddr, alicePW))
		expectReply(t, mx, 502, "5.5.1")
	})

	t.Run("exchanges", func(t *testing.T) {
		c, _ := submissionConn(t, s)
		// PLAIN without an initial response: an empty 334, then the response.
		c.Send("AUTH PLAIN")
		if r := c.Expect(334); len(r.Lines) != 1 || r.Lines[0] != "" {
			t.Errorf("AUTH PLAIN challenge %v, want an empty 334", r)
		}
		c.Send(plainResponse(aliceAddr, alicePW))
		expectReply(t, c, 235, "2.7.0")
		c.Send("AUTH PLAIN " + plainResponse(aliceAddr, alicePW))
		expectReply(t, c, 503, "5.5.1")

		// LOGIN, step by step, on the implicit-TLS listener.
		c = submissionsConn(t, s)
		c.Send("AUTH LOGIN")
		checkChallenge(t, c.Expect(334), "Username:")
		c.Send(base64.StdEncoding.EncodeToString([]byte(aliceAddr)))
		checkChallenge(t, c.Expect(334), "Password:")
		c.Send(base64.StdEncoding.EncodeToString([]byte(alicePW)))
		expectReply(t, c, 235, "2.7.0")
	})

	t.Run("cancel and bad base64", func(t *testing.T) {
		c, _ := submissionConn(t, s)
		c.Send("AUTH LOGIN")
		c.Expect(334)
		c.Send("*")
		expectReply(t, c, 501, "5.0.0")
		c.Send("AUTH PLAIN !!not-base64!!")
		expectReply(t, c, 501, "5.5.2")
		c.Send("AUTH CRAM-MD5") // no exchange starts: not a failed login
		expectReply(t, c, 504, "5.5.4")
		// Two aborted exchanges count as two failed logins; the session
		// still works.
		login(t, c, aliceAddr, alicePW)
		c.Send("MAIL FROM:<" + aliceAddr + ">")
		expectReply(t, c, 250, "2.1.0")

		// A third aborted exchange in one session ends it, as a third
		// wrong password does.
		c, _ = submissionConn(t, s)
		for _, line := range []string{"*", "@@@"} {
			c.Send("AUTH LOGIN")
			c.Expect(334)
			c.Send(line)
			c.Expect(501)
		}
		c.Send("AUTH LOGIN " + base64.StdEncoding.EncodeToString([]byte(aliceAddr)))
		c.Expect(334)
		c.Send("*")
		expectReply(t, c, 501, "5.0.0")
		if rest := c.ExpectClosed(); len(rest) != 1 || rest[0].Code != 421 {
			t.Errorf("after the third aborted exchange: %v, want 421 and the end of the connection", rest)
		}
	})

	t.Run("sender ownership", func(t *testing.T) {
		c, _ := submissionConn(t, s)
		login(t, c, aliceAddr, alicePW)
		for _, tc := range []struct {
			from, enhanced string
			code           int
		}{
			{bobAddr, "5.7.1", 553},   // another account
			{"", "5.7.1", 553},        // null sender on submission
			{otherAddr, "5.7.1", 553}, // a remote address
			{aliceAddr, "2.1.0", 250},
			{"Alice@Test.Example", "2.1.0", 250},
			{"alice+lists@test.example", "2.1.0", 250},
			{"sales@test.example", "2.1.0", 250}, // alias pointing to alice
		} {
			c.Send("MAIL FROM:<" + tc.from + ">")
			if r := expectReply(t, c, tc.code, tc.enhanced); r.Code == 250 {
				c.Cmd("RSET", 250)
			}
		}
		c.Send("MAIL FROM:<" + aliceAddr + "> AUTH=<>")
		expectReply(t, c, 250, "2.1.0")
		c.Cmd("RSET", 250)
		c.Send("MAIL FROM:<" + aliceAddr + "> AUTH=alice+2Btag@test.example")
		expectReply(t, c, 250, "2.1.0")
		// An authenticated user may relay: the remote recipient is taken
		// for the outbound queue (outbound_test.go follows such mail to its
		// next hop; no DATA here, so nothing is queued or looked up).
		c.Send("RCPT TO:<" + otherAddr + ">")
		expectReply(t, c, 250, "2.1.5")
		c.Send("RCPT TO:<nobody@test.example>")
		expectReply(t, c, 550, "5.1.1")
		c.Cmd("RSET", 250)
	})

	t.Run("Message-ID and Date added when missing", func(t *testing.T) {
		const rcpt = "sales@test.example" // delivered to alice
		bare := []byte("From: <alice@test.example>\r\nTo: <bob@test.example>\r\nSubject: no ids\r\n\r\nbody\r\n.dot\r\n")
		full := mailMessage("raw-full", bobAddr)
		c := submissionsConn(t, s)
		login(t, c, aliceAddr, alicePW)
		for _, msg := range [][]byte{bare, full} {
			mailFrom(c, aliceAddr)
			c.Cmd("RCPT TO:<"+rcpt+">", 250)
			rawData(t, c, msg)
		}
		c.Cmd("QUIT", 221)
		got := s.WaitMessages(t, aliceAddr, 2)
		checkESMTPSA(t, got[0])
		checkAddedIDs(t, StripTrace(got[0]), bare)
		checkDelivered(t, got[1], full, aliceAddr)
	})
	checkNoSecrets(t, s, aliceAddr)
}

// authLine returns the AUTH line of an EHLO reply, or "".
func authLine(ehlo Reply) string {
	for _, l := range ehlo.Lines {
		if strings.HasPrefix(strings.ToUpper(l), "AUTH ") {
			return l
		}
	}
	return ""
}

// checkChallenge checks a 334 reply carries want in base64.
func checkChallenge(t *testing.T, r Reply, want string) {
	t.Helper()
	got, err := base64.StdEncoding.DecodeString(strings.Join(r.Lines, ""))
	if err != nil || string(got) != want {
		t.Errorf("challenge %v decodes to %q (%v), want %q", r, got, err, want)
	}
}

// checkAddedIDs checks that got is sent with a Message-ID and a Date field
// inserted at the end of its header block (RFC 6409 §8.2, §8.3), and
// nothing else changed.
func checkAddedIDs(t *testing.T, got, sent []byte) {
	t.Helper()
	end := bytes.Index(sent, []byte("\r\n\r\n")) + 2
	head, tail := sent[:end], sent[end:]
	if !bytes.HasPrefix(got, head) || !bytes.HasSuffix(got, tail) || len(got) < len(sent) {
		t.Fatalf("delivered message is not the sent one plus fields:\n got: %q\nsent: %q", got, sent)
	}
	added := string(got[len(head) : len(got)-len(tail)])
	m := regexp.MustCompile(`^Message-ID: <[^<>@\s]+@mx\.test\.example>\r\nDate: ([^\r\n]+)\r\n$`).FindStringSubmatch(added)
	if m == nil {
		t.Fatalf("added fields %q, want a Message-ID and a Date", added)
	}
	date, err := time.Parse(time.RFC1123Z, m[1])
	if err != nil {
		t.Fatalf("Date %q: %v", m[1], err)
	}
	if d := time.Since(date); d < -time.Minute || d > time.Hour {
		t.Errorf("Date %q is %v away from now", m[1], d)
	}
}

// TestAuthThrottle makes three failed logins in one session: each 535 comes
// after a doubling delay (1s, 2s, 4s with the server's default base), and
// the third is followed by 421 and the end of the connection. The log names
// the client IP and never the password.
func TestAuthThrottle(t *testing.T) {
	t.Parallel()
	s := authServer(t)
	c, _ := submissionConn(t, s)
	start := time.Now()
	for i := range 3 {
		if i%2 == 0 {
			c.Send("AUTH PLAIN " + plainResponse(aliceAddr, wrongPW))
		} else {
			c.Send("AUTH LOGIN " + base64.StdEncoding.EncodeToString([]byte(aliceAddr)))
			c.Expect(334)
			c.Send(base64.StdEncoding.EncodeToString([]byte(wrongPW)))
		}
		expectReply(t, c, 535, "5.7.8")
	}
	rest := c.ExpectClosed()
	if len(rest) != 1 || rest[0].Code != 421 || rest[0].Enhanced() != "4.7.0" {
		t.Errorf("after the third failure: %v, want one 421 4.7.0 and the end of the connection", rest)
	}
	// The delays are the server's; 1s+2s+4s is the least it may take.
	if d := time.Since(start); d < 7*time.Second {
		t.Errorf("three failed logins took %v, want at least 7s of delays", d)
	}
	logs := s.Logs()
	if n := strings.Count(logs, "auth failed"); n != 3 {
		t.Errorf("%d \"auth failed\" log lines, want 3", n)
	}
	if !regexp.MustCompile(`auth failed.*ip=127\.0\.0\.1`).MatchString(logs) {
		t.Errorf("failed logins not logged with the client IP:\n%s", logs)
	}
	checkNoSecrets(t, s, aliceAddr)
	if strings.Contains(logs, base64.StdEncoding.EncodeToString([]byte(wrongPW))) {
		t.Error("server output contains the base64 of the wrong password")
	}

	// The right password still works afterwards: three failures slow the
	// account down but do not lock it.
	c, _ = submissionConn(t, s)
	login(t, c, aliceAddr, alicePW)
}
