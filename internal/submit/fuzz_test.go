package submit

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/compose"
	"smtpkit/internal/smtp"
)

// FuzzPrepare checks sendmail's preparation of any message with -t: when
// it succeeds, every recipient is an SMTP mailbox, none twice; the result
// is CRLF text with no Bcc field and with From, Date and Message-ID; and
// the body is the input's, untouched.
func FuzzPrepare(f *testing.F) {
	for _, s := range []string{
		"To: a@t.example, \"B\" <b@t.example>\r\nBcc: d@t.example\r\n\r\nbody\r\n",
		"To: root, admin\r\nCc: x@t.example\r\n\r\n",
		"Cc: list:c@t.example, A@t.example;\r\nbcc: a@t.example,\r\n e@t.example\r\nFrom: f@t.example\r\n\r\n",
		"To: <a@\r\n\r\n", "Subject: x\r\n\r\n", "no header\r\n", "",
	} {
		f.Add(s, "")
		f.Add(s, "<>")
	}
	d := Defaults{Sender: "me@host.example", Domain: "local.example"}
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, in, from string) {
		input := compose.ToCRLF([]byte(in))
		env, msg, err := Prepare(input, Request{From: from, HeaderRcpts: true}, d, now)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, r := range env.To {
			if _, err := smtp.ParseAddress(r); err != nil {
				t.Fatalf("recipient %q: %v", r, err)
			}
			if seen[strings.ToLower(r)] {
				t.Fatalf("recipient %q twice", r)
			}
			seen[strings.ToLower(r)] = true
		}
		if !bytes.Equal(compose.ToCRLF(msg), msg) {
			t.Fatalf("bare CR or LF in %q", msg)
		}
		_, body := compose.Split(input)
		h, gotBody := compose.Split(msg)
		if h.Has("Bcc") || !h.Has("From") || !h.Has("Date") || !h.Has("Message-ID") {
			t.Fatalf("header %q", h.Fields)
		}
		if !bytes.Equal(body, gotBody) {
			t.Fatalf("body %q became %q", body, gotBody)
		}
	})
}

// FuzzMechanism checks the choice among the AUTH parameters of any EHLO:
// it is one of the mechanisms smtpkit has, and one the server offered.
func FuzzMechanism(f *testing.F) {
	for _, s := range []string{"PLAIN LOGIN SCRAM-SHA-256", "login", "CRAM-MD5", "", " plain\tx", "SCRAM-SHA-256-PLUS"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, offered string) {
		m, err := Mechanism("", offered)
		if err != nil {
			return
		}
		if _, perr := ParseMechanism(m); perr != nil {
			t.Fatalf("Mechanism(%q) = %q, not one of ours", offered, m)
		}
		found := false
		for _, o := range strings.Fields(offered) {
			found = found || strings.EqualFold(o, m)
		}
		if !found {
			t.Fatalf("Mechanism(%q) = %q, not offered", offered, m)
		}
	})
}
