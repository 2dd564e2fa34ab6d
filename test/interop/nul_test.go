package interop

import (
	"strconv"
	"strings"
	"testing"
)

// TestNULSmuggling sends the smuggling scanners' "null" cases over a raw
// socket: a NUL where a next hop that strips NUL would see an end of data,
// and NUL inside ordinary lines. Text may not hold NUL (RFC 5322 §2.1,
// RFC 2045 §2.8; only BODY=BINARYMIME data may, RFC 3030 §3, and these
// messages do not declare it), so each message is refused with 554 5.6.0 once the real
// CRLF.CRLF (or the last BDAT chunk) has arrived, nothing is delivered, and
// the session stays in step: the smuggled commands are never answered.
func TestNULSmuggling(t *testing.T) {
	s := StartServer(t, ServerOptions{})
	s.AddUser(t, "nul@test.example", "correct horse battery staple")
	const rcpt = "nul@test.example"
	smuggled := "MAIL FROM:<admin@bank.example>\r\nRCPT TO:<" + rcpt + ">\r\nDATA\r\nFrom: admin@bank.example\r\n\r\nsmuggled\r\n"
	data := map[string]string{
		"CRLF NUL dot CRLF": "\r\n\x00.\r\n" + smuggled,
		"CRLF dot NUL CRLF": "\r\n.\x00\r\n" + smuggled,
		"NUL LF dot LF":     "\x00\n.\n" + smuggled, // bare LF too; either is refused
		"NUL in a line":     "\r\nhel\x00lo\r\n",
		"NUL only line":     "\r\n\x00\r\n",
	}
	for name, seq := range data {
		t.Run("DATA "+name, func(t *testing.T) {
			c := Dial(t, s.MX)
			c.Greeting()
			c.Hello()
			mailFrom(c, "a@b.example")
			c.Cmd("RCPT TO:<"+rcpt+">", 250)
			c.Cmd("DATA", 354)
			c.Write("Subject: null\r\n\r\nhello" + seq + ".\r\n")
			r := c.Reply()
			if r.Code < 500 || r.Code > 599 {
				t.Fatalf("end of data with NUL: %v, want 5xx", r)
			}
			if !strings.Contains(name, "LF dot LF") && (r.Code != 554 || r.Enhanced() != "5.6.0") {
				t.Errorf("end of data with NUL: %v, want 554 5.6.0", r)
			}
			c.Cmd("NOOP", 250) // in step: the next reply is NOOP's
			c.Cmd("QUIT", 221)
		})
	}
	t.Run("BDAT", func(t *testing.T) {
		c := Dial(t, s.MX)
		c.Greeting()
		c.Hello()
		mailFrom(c, "a@b.example")
		c.Cmd("RCPT TO:<"+rcpt+">", 250)
		chunk := "Subject: null\r\n\r\nhello\r\n\x00.\r\n"
		c.Write("BDAT " + strconv.Itoa(len(chunk)) + " LAST\r\n" + chunk)
		r := c.Reply()
		if r.Code != 554 || r.Enhanced() != "5.6.0" {
			t.Errorf("BDAT with NUL: %v, want 554 5.6.0", r)
		}
		c.Cmd("NOOP", 250)
		c.Cmd("QUIT", 221)
	})
	if n := s.CountFiles(t, rcpt, "new"); n != 0 {
		t.Errorf("%d messages with NUL delivered, want none", n)
	}
}
