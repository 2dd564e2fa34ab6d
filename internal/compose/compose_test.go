package compose

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"
)

var testDate = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func baseMessage() Message {
	return Message{
		From:      mail.Address{Name: "Alice", Address: "alice@a.example"},
		To:        []mail.Address{{Address: "bob@b.example"}},
		Subject:   "hello",
		Date:      testDate,
		MessageID: "id1@a.example",
		Body:      "hi\n",
		Boundary:  "=_test-boundary",
	}
}

// checkWire checks the rules every built message must follow: CRLF only,
// no line over 998 octets (RFC 5322 §2.1.1, §2.3).
func checkWire(t *testing.T, msg []byte) {
	t.Helper()
	for i, c := range msg {
		if c == '\n' && (i == 0 || msg[i-1] != '\r') {
			t.Fatalf("bare LF at %d: %q", i, msg)
		}
		if c == '\r' && (i+1 == len(msg) || msg[i+1] != '\n') {
			t.Fatalf("bare CR at %d: %q", i, msg)
		}
	}
	for _, l := range bytes.Split(msg, []byte("\r\n")) {
		if len(l) > maxLine {
			t.Fatalf("line of %d octets", len(l))
		}
	}
	if !bytes.HasSuffix(msg, []byte("\r\n")) {
		t.Fatalf("message does not end in CRLF: %q", msg)
	}
}

func build(t *testing.T, m Message) (*mail.Message, []byte) {
	t.Helper()
	raw, err := m.Build()
	if err != nil {
		t.Fatal(err)
	}
	checkWire(t, raw)
	pm, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail cannot read the message: %v\n%s", err, raw)
	}
	return pm, raw
}

func decodeHeader(t *testing.T, v string) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(v)
	if err != nil {
		t.Fatalf("decoding %q: %v", v, err)
	}
	return s
}

func TestHeaders(t *testing.T) {
	long := strings.Repeat("word ", 60) + "end"
	tests := []struct {
		name, subject, fromName string
		wantRaw                 string // a substring of the raw message
	}{
		{"ascii", "hello world", "Alice", "Subject: hello world\r\n"},
		{"non-ASCII subject", "Café au lait", "Alice", "Subject: =?utf-8?q?Caf=C3=A9_au_lait?=\r\n"},
		{"mostly non-ASCII uses B", "日本語のメール", "Alice", "Subject: =?utf-8?b?"},
		{"non-ASCII display name", "x", "Jöhn Smith", "From: =?utf-8?q?J=C3=B6hn_Smith?= <alice@a.example>\r\n"},
		{"folded long subject", long, "Alice", "Subject: word word"},
		{"looks encoded", "=?utf-8?q?x?=", "Alice", "Subject: =?utf-8?q?=3D=3Futf-8=3Fq=3Fx=3F=3D?=\r\n"},
		{"quoted display name", "x", "Smith, John", "From: \"Smith, John\" <alice@a.example>\r\n"},
		{"unbreakable long subject", strings.Repeat("x", 1200), "Alice", "Subject: =?utf-8?q?xxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := baseMessage()
			m.Subject, m.From.Name = tt.subject, tt.fromName
			pm, raw := build(t, m)
			if !strings.Contains(string(raw), tt.wantRaw) {
				t.Errorf("raw message lacks %q:\n%s", tt.wantRaw, raw)
			}
			// net/mail joins folds with one space, which is exact here
			// because no test subject has runs of spaces.
			if got := decodeHeader(t, pm.Header.Get("Subject")); got != tt.subject {
				t.Errorf("Subject = %q, want %q", got, tt.subject)
			}
			from, err := pm.Header.AddressList("From")
			if err != nil || len(from) != 1 || from[0].Name != tt.fromName || from[0].Address != "alice@a.example" {
				t.Errorf("From = %v, %v", from, err)
			}
			for _, l := range strings.Split(string(raw[:bytes.Index(raw, []byte("\r\n\r\n"))]), "\r\n") {
				// A longer line is fine when it is a field name and one
				// word (or one continuation word): nowhere to fold.
				if len(l) > foldAt && len(strings.Fields(l)) > 2 {
					t.Errorf("header line of %d octets could have been folded: %q", len(l), l)
				}
			}
		})
	}
}

func TestStandardFields(t *testing.T) {
	m := baseMessage()
	m.To = []mail.Address{{Address: "bob@b.example"}, {Name: "Carol", Address: "carol@c.example"}}
	m.Cc = []mail.Address{{Address: "dave@d.example"}}
	pm, raw := build(t, m)
	want := map[string]string{
		"Date":                      "Mon, 02 Mar 2026 10:00:00 +0000",
		"Message-ID":                "<id1@a.example>",
		"From":                      "\"Alice\" <alice@a.example>",
		"To":                        "<bob@b.example>, \"Carol\" <carol@c.example>",
		"Cc":                        "<dave@d.example>",
		"MIME-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "7bit",
	}
	for k, v := range want {
		if got := pm.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if pm.Header.Get("Bcc") != "" || bytes.Contains(raw, []byte("Bcc")) {
		t.Error("message has a Bcc field")
	}
	if d, err := pm.Header.Date(); err != nil || !d.Equal(testDate) {
		t.Errorf("Date: %v %v", d, err)
	}
}

func TestGeneratedIDAndDate(t *testing.T) {
	m := baseMessage()
	m.MessageID, m.Date = "", time.Time{}
	pm, _ := build(t, m)
	id := pm.Header.Get("Message-ID")
	if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@a.example>") || len(id) < 30 {
		t.Errorf("Message-ID = %q", id)
	}
	if _, err := pm.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if a, b := NewMessageID("x"), NewMessageID("x"); a == b {
		t.Errorf("two message IDs are equal: %s", a)
	}
}

func TestBodyEncoding(t *testing.T) {
	longLine := strings.Repeat("a", 1500)
	tests := []struct {
		name, body string
		eightBit   bool
		wantCTE    string
		want       string // decoded body
	}{
		{"ascii", "line one\nline two\n", false, "7bit", "line one\r\nline two\r\n"},
		{"no final newline", "x", false, "7bit", "x\r\n"},
		{"empty", "", false, "7bit", ""},
		{"utf8 with 8BITMIME", "Grüße\r\n", true, "8bit", "Grüße\r\n"},
		{"utf8 without 8BITMIME", "Grüße\r\n", false, "quoted-printable", "Grüße\r\n"},
		{"long ascii line", longLine + "\n", true, "quoted-printable", longLine + "\r\n"},
		{"long utf8 line", strings.Repeat("é", 600) + "\n", true, "quoted-printable", strings.Repeat("é", 600) + "\r\n"},
		{"998 octets is fine", strings.Repeat("b", 998) + "\n", false, "7bit", strings.Repeat("b", 998) + "\r\n"},
		{"invalid utf8", "\xff\xfe\n", true, "quoted-printable", "\xff\xfe\r\n"},
		{"bare CR", "a\rb\r\n", false, "7bit", "a\r\nb\r\n"},
		{"trailing space kept", "x  \n=y\n", false, "7bit", "x  \r\n=y\r\n"},
		{"NUL", "a\x00b\n", true, "quoted-printable", "a\x00b\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := baseMessage()
			m.Body, m.EightBit = tt.body, tt.eightBit
			pm, raw := build(t, m)
			if got := pm.Header.Get("Content-Transfer-Encoding"); got != tt.wantCTE {
				t.Fatalf("CTE = %q, want %q", got, tt.wantCTE)
			}
			if tt.wantCTE != "8bit" && Has8Bit(raw) {
				t.Errorf("%s message has 8-bit octets", tt.wantCTE)
			}
			var r io.Reader = pm.Body
			if tt.wantCTE == "quoted-printable" {
				r = quotedprintable.NewReader(pm.Body)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("body = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAttachments(t *testing.T) {
	binary := make([]byte, 1000)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	m := baseMessage()
	m.Body = "see attached\n"
	m.Attachments = []Attachment{
		{Filename: "report.pdf", Data: binary},
		{Filename: "Überblick März.txt", Data: []byte("text\n")},
		{Filename: "noext", Data: nil},
		{Filename: "data.bin", ContentType: "application/x-custom; version=2", Data: []byte{0, 1, 2}},
		{Filename: strings.Repeat("long name ", 20) + ".pdf", Data: []byte("x")},
	}
	pm, raw := build(t, m)
	if Has8Bit(raw) {
		t.Error("multipart message with 7bit parts has 8-bit octets")
	}
	mt, params, err := mime.ParseMediaType(pm.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" || params["boundary"] != "=_test-boundary" {
		t.Fatalf("Content-Type: %s %v %v", mt, params, err)
	}
	mr := multipart.NewReader(pm.Body, params["boundary"])
	text, err := mr.NextRawPart()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(text); string(b) != "see attached\r\n" {
		t.Errorf("text part = %q", b)
	}
	wantTypes := []string{"application/pdf", "text/plain; charset=utf-8", "application/octet-stream", "application/x-custom; version=2", "application/pdf"}
	for i, a := range m.Attachments {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if p.FileName() != a.Filename {
			t.Errorf("part %d: filename %q, want %q", i, p.FileName(), a.Filename)
		}
		if got := p.Header.Get("Content-Type"); got != wantTypes[i] {
			t.Errorf("part %d: Content-Type %q, want %q", i, got, wantTypes[i])
		}
		if p.Header.Get("Content-Transfer-Encoding") != "base64" {
			t.Errorf("part %d: not base64", i)
		}
		enc, _ := io.ReadAll(p)
		for _, l := range strings.Split(strings.TrimSuffix(string(enc), "\r\n"), "\r\n") {
			if len(l) > 76 {
				t.Errorf("part %d: base64 line of %d characters", i, len(l))
			}
		}
		got, err := io.ReadAll(base64Reader(enc))
		if err != nil || !bytes.Equal(got, a.Data) {
			t.Errorf("part %d: data %q (%v), want %q", i, got, err, a.Data)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("after the last part: %v", err)
	}
	if !strings.Contains(string(raw), "filename*=utf-8''%C3%9Cberblick%20M%C3%A4rz.txt") {
		t.Errorf("non-ASCII filename is not RFC 2231 encoded:\n%s", raw)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Message)
	}{
		{"no from", func(m *Message) { m.From = mail.Address{} }},
		{"bad extra name", func(m *Message) { m.Extra = []string{"Bad Name: x"} }},
		{"extra without colon", func(m *Message) { m.Extra = []string{"NoColon"} }},
		{"extra with LF", func(m *Message) { m.Extra = []string{"X-A: b\nBcc: c"} }},
		{"extra with CR", func(m *Message) { m.Extra = []string{"X-A: b\rc"} }},
		{"extra content type", func(m *Message) { m.Extra = []string{"Content-Type: text/html"} }},
		{"extra mime version", func(m *Message) { m.Extra = []string{"MIME-Version: 2.0"} }},
		{"extra bcc", func(m *Message) { m.Extra = []string{"Bcc: x@y.example"} }},
		{"extra too long", func(m *Message) { m.Extra = []string{"X-A: " + strings.Repeat("y", 1000)} }},
		{"attachment with directory", func(m *Message) { m.Attachments = []Attachment{{Filename: "a/b"}} }},
		{"attachment without name", func(m *Message) { m.Attachments = []Attachment{{}} }},
		{"attachment name too long", func(m *Message) { m.Attachments = []Attachment{{Filename: strings.Repeat("n", 256)}} }},
		{"bad content type", func(m *Message) { m.Attachments = []Attachment{{Filename: "a", ContentType: "/"}} }},
		{"boundary in text", func(m *Message) {
			m.Body = "--=_test-boundary\n"
			m.Attachments = []Attachment{{Filename: "a", Data: []byte("x")}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := baseMessage()
			tt.edit(&m)
			if raw, err := m.Build(); err == nil {
				t.Errorf("Build succeeded:\n%s", raw)
			}
		})
	}
}

func TestExtraHeaders(t *testing.T) {
	m := baseMessage()
	m.Extra = []string{"X-Mailer: smtpkit", "Message-ID: <given@x.example>", "Reply-To: r@x.example"}
	pm, raw := build(t, m)
	if got := pm.Header["Message-Id"]; len(got) != 1 || got[0] != "<given@x.example>" {
		t.Errorf("Message-ID fields: %q", got)
	}
	if pm.Header.Get("X-Mailer") != "smtpkit" || pm.Header.Get("Reply-To") != "r@x.example" {
		t.Errorf("extra headers missing:\n%s", raw)
	}
}

// base64Reader decodes base64 lines; the decoder skips CR and LF.
func base64Reader(enc []byte) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, bytes.NewReader(enc))
}
