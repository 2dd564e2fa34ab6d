package dsn

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"smtpkit/internal/smtp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	arrival = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	attempt = time.Date(2025, 3, 1, 10, 5, 0, 0, time.UTC)
)

func failedReport() Report {
	return Report{
		ReportingMTA: "mx.example.org",
		To:           "alice@example.org",
		Arrival:      arrival,
		Date:         attempt,
		MessageID:    "dsn.1@mx.example.org",
		Boundary:     "BOUNDARY",
		Recipients: []Recipient{
			{Addr: "bob@example.net", Action: Failed, Status: "5.1.1", RemoteMTA: "mx1.example.net",
				Reply: smtp.R(550, "5.1.1", "<bob@example.net>: no such user"), LastAttempt: attempt},
			{Addr: "carol@example.com", Action: Failed, Status: "5.4.7",
				Diagnostic: "delivery time expired: connection refused", DiagnosticType: "X-smtpkit", LastAttempt: attempt},
		},
		Headers: []byte("From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hello\r\nMessage-ID: <m1@example.org>\r\n\r\nbody that must not appear\r\n"),
	}
}

func TestGolden(t *testing.T) {
	got, err := Build(failedReport())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "failed.eml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update after checking):\n%s", golden, got)
	}
}

// TestParse reads the report back with the standard library's net/mail and
// mime/multipart and checks every field.
func TestParse(t *testing.T) {
	r := failedReport()
	r.Boundary = "" // random boundary must work too
	raw, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	checkCRLF(t, raw)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	for k, want := range map[string]string{
		"Subject":        "Undelivered Mail Returned to Sender",
		"Auto-Submitted": "auto-replied",
		"Message-Id":     "<dsn.1@mx.example.org>",
		"Mime-Version":   "1.0",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	from, err := mail.ParseAddress(h.Get("From"))
	if err != nil || from.Address != "MAILER-DAEMON@mx.example.org" {
		t.Errorf("From = %q (%v)", h.Get("From"), err)
	}
	to, err := mail.ParseAddress(h.Get("To"))
	if err != nil || to.Address != "alice@example.org" {
		t.Errorf("To = %q (%v)", h.Get("To"), err)
	}
	if d, err := h.Date(); err != nil || !d.Equal(attempt) {
		t.Errorf("Date = %v (%v)", d, err)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type = %q (%v)", h.Get("Content-Type"), err)
	}
	parts := readParts(t, multipart.NewReader(msg.Body, params["boundary"]))
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	wantTypes := []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}
	for i, p := range parts {
		if mt, _, _ := mime.ParseMediaType(p.header.Get("Content-Type")); mt != wantTypes[i] {
			t.Errorf("part %d is %q, want %q", i, mt, wantTypes[i])
		}
	}
	if !strings.Contains(parts[0].body, "<bob@example.net>: mx1.example.net said: 550 5.1.1") {
		t.Errorf("human part lacks bob's reason:\n%s", parts[0].body)
	}
	perMsg, perRcpt := statusGroups(t, parts[1].body)
	if got := perMsg.Get("Reporting-MTA"); got != "dns; mx.example.org" {
		t.Errorf("Reporting-MTA = %q", got)
	}
	if got := perMsg.Get("Arrival-Date"); got != arrival.Format(time.RFC1123Z) {
		t.Errorf("Arrival-Date = %q", got)
	}
	if len(perRcpt) != 2 {
		t.Fatalf("%d recipient blocks, want 2", len(perRcpt))
	}
	want := []map[string]string{
		{"Final-Recipient": "rfc822; bob@example.net", "Action": "failed", "Status": "5.1.1",
			"Remote-MTA": "dns; mx1.example.net", "Diagnostic-Code": "smtp; 550 5.1.1 <bob@example.net>: no such user",
			"Last-Attempt-Date": attempt.Format(time.RFC1123Z)},
		{"Final-Recipient": "rfc822; carol@example.com", "Action": "failed", "Status": "5.4.7",
			"Remote-MTA": "", "Diagnostic-Code": "X-smtpkit; delivery time expired: connection refused"},
	}
	for i, w := range want {
		for k, v := range w {
			if got := perRcpt[i].Get(k); got != v {
				t.Errorf("recipient %d %s = %q, want %q", i, k, got, v)
			}
		}
	}
	orig, err := mail.ReadMessage(strings.NewReader(parts[2].body + "\r\n"))
	if err != nil {
		t.Fatalf("headers part: %v", err)
	}
	if orig.Header.Get("Subject") != "hello" || orig.Header.Get("Message-Id") != "<m1@example.org>" {
		t.Errorf("original headers = %v", orig.Header)
	}
	if strings.Contains(string(raw), "must not appear") {
		t.Error("the original body leaked into the report")
	}
}

type part struct {
	header textproto.MIMEHeader
	body   string
}

func readParts(t *testing.T, mr *multipart.Reader) []part {
	t.Helper()
	var parts []part
	for range 10 {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			return parts
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, part{p.Header, string(body)})
	}
	t.Fatal("too many parts")
	return nil
}

// statusGroups splits a message/delivery-status body into its per-message
// group and per-recipient groups (RFC 3464 §2.1).
func statusGroups(t *testing.T, body string) (textproto.MIMEHeader, []textproto.MIMEHeader) {
	t.Helper()
	r := textproto.NewReader(bufio.NewReader(strings.NewReader(body + "\r\n")))
	var groups []textproto.MIMEHeader
	for range 20 {
		h, err := r.ReadMIMEHeader()
		if len(h) > 0 {
			groups = append(groups, h)
		}
		if err != nil {
			break
		}
	}
	if len(groups) == 0 {
		t.Fatal("empty delivery-status")
	}
	return groups[0], groups[1:]
}

func checkCRLF(t *testing.T, p []byte) {
	t.Helper()
	for i, c := range p {
		if c == '\n' && (i == 0 || p[i-1] != '\r') {
			t.Fatalf("bare LF at %d", i)
		}
		if c == '\r' && (i+1 == len(p) || p[i+1] != '\n') {
			t.Fatalf("bare CR at %d", i)
		}
	}
	for _, line := range bytes.Split(p, []byte("\r\n")) {
		if len(line) > 998 {
			t.Fatalf("line of %d octets", len(line))
		}
	}
}

func TestBuildTable(t *testing.T) {
	long := strings.Repeat("x", 2000)
	tests := []struct {
		name    string
		edit    func(*Report)
		err     error
		has     []string
		hasNot  []string
		anyErr  bool
		intl    bool
		delayed bool
	}{
		{name: "null sender", edit: func(r *Report) { r.To = "" }, err: ErrNullSender},
		{name: "null sender brackets", edit: func(r *Report) { r.To = "<>" }, err: ErrNullSender},
		{name: "no recipients", edit: func(r *Report) { r.Recipients = nil }, anyErr: true},
		{name: "no host", edit: func(r *Report) { r.ReportingMTA = "" }, anyErr: true},
		{name: "header injection", edit: func(r *Report) { r.To = "a@b\r\nBcc: x@y" }, anyErr: true},
		{name: "delay warning", delayed: true, edit: func(r *Report) {
			r.Recipients = []Recipient{{Addr: "bob@example.net", Action: Delayed, Status: "4.4.1",
				Diagnostic: "connection refused", DiagnosticType: "X-smtpkit", WillRetryUntil: arrival.Add(120 * time.Hour)}}
		}, has: []string{"Subject: Delayed Mail (still being retried)\r\n", "Action: delayed\r\n", "Status: 4.4.1\r\n",
			"Will-Retry-Until: Thu, 06 Mar 2025 10:00:00 +0000\r\n"}},
		{name: "status class fixed", edit: func(r *Report) { r.Recipients[0].Status = "4.2.2" },
			has: []string{"Status: 5.2.2\r\n"}},
		{name: "status invalid", edit: func(r *Report) { r.Recipients[0].Status = "5.1" },
			has: []string{"Status: 5.0.0\r\n"}},
		{name: "reply injection", edit: func(r *Report) { r.Recipients[0].Reply = smtp.R(550, "", "no\r\nAction: delivered") },
			has: []string{"Diagnostic-Code: smtp; 550 no  Action: delivered\r\n"}, hasNot: []string{"\r\nAction: delivered"}},
		{name: "long diagnostic cut", edit: func(r *Report) { r.Recipients[0].Reply = smtp.R(550, "", long) },
			hasNot: []string{long}},
		{name: "long own diagnostic cut", edit: func(r *Report) { r.Recipients[1].Diagnostic = long },
			hasNot: []string{long}},
		{name: "utf8 diagnostic in ascii report", edit: func(r *Report) { r.Recipients[0].Reply = smtp.R(550, "", "nö") },
			has: []string{"smtp; 550 n?\r\n"}, hasNot: []string{"charset=utf-8"}},
		// A refusal smtpkit made itself names no Remote-MTA, even when the
		// caller knows which server it was talking to.
		{name: "own refusal names no remote MTA", edit: func(r *Report) {
			r.Recipients[0].Reply = smtp.Reply{}
			r.Recipients[0].Diagnostic = "553 5.6.7 message needs SMTPUTF8 but the server does not support it"
			r.Recipients[0].DiagnosticType = "X-smtpkit"
		}, has: []string{"Diagnostic-Code: X-smtpkit; 553 5.6.7 message needs SMTPUTF8",
			"<bob@example.net>: 553 5.6.7 message needs SMTPUTF8"},
			hasNot: []string{"Remote-MTA", "mx1.example.net"}},
		{name: "headers without body", edit: func(r *Report) { r.Headers = []byte("Subject: only\r\n") },
			has: []string{"Subject: only\r\n"}},
		{name: "bare LF headers normalized", edit: func(r *Report) { r.Headers = []byte("Subject: lf\nX: y\n\nbody") },
			has: []string{"Subject: lf\r\nX: y\r\n"}, hasNot: []string{"body"}},
		{name: "huge headers bounded", edit: func(r *Report) {
			r.Headers = []byte(strings.Repeat("X-Pad: "+strings.Repeat("p", 90)+"\r\n", 2000))
		}, hasNot: []string{strings.Repeat("X-Pad: "+strings.Repeat("p", 90)+"\r\n", 700)}},
		{name: "international recipient", intl: true, edit: func(r *Report) { r.Recipients[0].Addr = "bjørn@example.net" },
			has: []string{"Final-Recipient: utf-8; bjørn@example.net\r\n", "message/global-delivery-status", "message/global-headers"}},
		// RFC 8689 §5: a report on a REQUIRETLS message returns nothing
		// of it, headers included; non-ASCII headers then do not make the
		// report international.
		{name: "redacted for REQUIRETLS", edit: func(r *Report) { r.Redacted = true },
			has:    []string{"REQUIRETLS", "Final-Recipient: rfc822; bob@example.net\r\n", "message/delivery-status", "\r\n--BOUNDARY--\r\n"},
			hasNot: []string{"text/rfc822-headers", "Subject: hello", "m1@example.org", "body that must not appear", "headers are attached"}},
		{name: "redacted international headers", edit: func(r *Report) {
			r.Redacted, r.Headers = true, []byte("Subject: grüße\r\n\r\n")
		}, hasNot: []string{"grüße", "global-headers"}},
		{name: "redacted delay warning", delayed: true, edit: func(r *Report) {
			r.Redacted = true
			r.Recipients = []Recipient{{Addr: "bob@example.net", Action: Delayed, Status: "4.4.1", Diagnostic: "connection refused", DiagnosticType: "X-smtpkit"}}
		}, has: []string{"Action: delayed\r\n"}, hasNot: []string{"Subject: hello", "text/rfc822-headers"}},
		{name: "international headers", intl: true, edit: func(r *Report) { r.Headers = []byte("Subject: grüße\r\n\r\n") },
			has: []string{"Final-Recipient: rfc822; bob@example.net\r\n", "Subject: grüße\r\n", "charset=utf-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := failedReport()
			tt.edit(&r)
			got, err := Build(r)
			if tt.err != nil || tt.anyErr {
				if err == nil || (tt.err != nil && !errors.Is(err, tt.err)) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkCRLF(t, got)
			if r.International() != tt.intl || r.Delayed() != tt.delayed {
				t.Errorf("International, Delayed = %v, %v", r.International(), r.Delayed())
			}
			if !tt.intl {
				for i, c := range got {
					if c >= 0x80 {
						t.Fatalf("8-bit octet at %d in an ASCII report", i)
					}
				}
			}
			for _, s := range tt.has {
				if !bytes.Contains(got, []byte(s)) {
					t.Errorf("missing %q in\n%s", s, got)
				}
			}
			for _, s := range tt.hasNot {
				if bytes.Contains(got, []byte(s)) {
					t.Errorf("unexpected %q", s)
				}
			}
			if _, err := mail.ReadMessage(bytes.NewReader(got)); err != nil {
				t.Errorf("not a parseable message: %v", err)
			}
		})
	}
}
