package mimeconv

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
)

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func TestTo7Bit(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // "" = same as in
		changed bool
		err     error
	}{
		{name: "7-bit MIME unchanged", in: crlf("MIME-Version: 1.0\nSubject: hi\nContent-Type: text/plain\n\nhello\n")},
		{name: "7-bit non-MIME unchanged", in: crlf("Subject: hi\n\nhello\n.dot\n")},
		{name: "8bit text part to quoted-printable",
			in:      crlf("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGrüße \nline2\n"),
			want:    crlf("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe=20\nline2\n"),
			changed: true},
		{name: "no CTE but 8-bit octets: converted",
			in:      crlf("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nçà\n"),
			want:    crlf("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n=C3=A7=C3=A0\n"),
			changed: true},
		{name: "binary attachment to base64, boundaries kept",
			in: crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n\npreamble\n--XX\nContent-Type: text/plain\n\nplain\n--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n") +
				"\x00\xff\r\x01\n" + crlf("\n--XX--  \nepilogue\n"),
			want: crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n\npreamble\n--XX\nContent-Type: text/plain\n\nplain\n--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n") +
				"AP8NAQo=" + crlf("\n--XX--  \nepilogue\n"),
			changed: true},
		{name: "message/rfc822 8bit: converted inside, CTE becomes 7bit",
			in:      crlf("MIME-Version: 1.0\nContent-Type: message/rfc822\nContent-Transfer-Encoding: 8bit\n\nSubject: é\n\nbody é\n"),
			want:    crlf("MIME-Version: 1.0\nContent-Type: message/rfc822\nContent-Transfer-Encoding: 7bit\n\nSubject: =?utf-8?b?w6k=?=\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nbody =C3=A9\n"),
			changed: true},
		{name: "non-MIME 8-bit text made MIME",
			in:      crlf("Subject: x\n\ncafé\n"),
			want:    crlf("Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9\n"),
			changed: true},
		{name: "non-MIME latin-1 text: unknown-8bit",
			in:      crlf("Subject: x\n\ncaf\xe9\n"),
			want:    crlf("Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=unknown-8bit\nContent-Transfer-Encoding: quoted-printable\n\ncaf=E9\n"),
			changed: true},
		{name: "non-MIME binary", in: "Subject: x\r\n\r\nab\x00c\r\n", err: ErrNotMIME},
		{name: "8-bit in a base64 part", in: crlf("MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\nQUJD\xff\n"), err: ErrCannotConvert},
		{name: "8-bit Message-ID", in: crlf("Message-ID: <é@x>\nMIME-Version: 1.0\n\nx\n"), err: ErrCannotConvert},
		{name: "UTF-8 address needs SMTPUTF8", in: crlf("From: é@x.org\nMIME-Version: 1.0\n\nx\n"), err: ErrCannotConvert},
		{name: "display name and filename",
			in:      crlf("From: Jörg <j@x.org>\nMIME-Version: 1.0\nContent-Type: application/pdf; name=\"ü.pdf\"\nContent-Transfer-Encoding: base64\n\nQUJD\n"),
			want:    crlf("From: =?utf-8?q?J=C3=B6rg?= <j@x.org>\nMIME-Version: 1.0\nContent-Type: application/pdf; name*=utf-8''%C3%BC.pdf\nContent-Transfer-Encoding: base64\n\nQUJD\n"),
			changed: true},
		{name: "8-bit preamble replaced",
			in:      crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\npré\n--b\n\nx\n--b--\n"),
			want:    crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\npr??\n--b\n\nx\n--b--\n"),
			changed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			changed, err := To7Bit(&out, strings.NewReader(tt.in))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = tt.in
			}
			if out.String() != want {
				t.Errorf("got\n%q\nwant\n%q", out.String(), want)
			}
			if changed != tt.changed {
				t.Errorf("changed = %v, want %v", changed, tt.changed)
			}
			checkSevenBit(t, out.Bytes())
		})
	}
}

// checkSevenBit fails when b is not 7-bit data.
func checkSevenBit(t *testing.T, b []byte) {
	t.Helper()
	for i, c := range b {
		if c >= 0x80 || c == 0 {
			t.Fatalf("octet %#x at %d in output", c, i)
		}
	}
}

func TestLongQPLines(t *testing.T) {
	body := strings.Repeat("é", 600) + " \r\n" + strings.Repeat("a", 2000) + "\r\n"
	in := "MIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
	var out bytes.Buffer
	if _, err := To7Bit(&out, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out.String(), "\r\n") {
		if len(l) > 76 && !strings.HasPrefix(l, "Content-") {
			t.Fatalf("line of %d octets: %q", len(l), l)
		}
	}
	m, _ := mail.ReadMessage(&out)
	got, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
	if string(got) != body {
		t.Errorf("decoded body differs")
	}
}

const fuzzBoundary = "=_b0und_="

// buildMessage is a multipart message with an 8bit text part, a binary
// part and a message/rfc822 part, and subject as Subject.
func buildMessage(subject string, text, bin, inner []byte) string {
	var b strings.Builder
	b.WriteString("Subject: " + subject + "\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"" + fuzzBoundary + "\"\r\n\r\n")
	b.WriteString("--" + fuzzBoundary + "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.Write(text)
	b.WriteString("\r\n--" + fuzzBoundary + "\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n")
	b.Write(bin)
	b.WriteString("\r\n--" + fuzzBoundary + "\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: binary\r\n\r\nSubject: inner\r\nMIME-Version: 1.0\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: binary\r\n\r\n")
	b.Write(inner)
	b.WriteString("\r\n--" + fuzzBoundary + "--\r\n")
	return b.String()
}

// decodeParts parses msg with the standard library and returns the
// decoded Subject and the decoded contents of its three parts.
func decodeParts(t *testing.T, msg []byte) (string, [][]byte) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("output is not a message: %v", err)
	}
	dec := mime.WordDecoder{CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil }}
	subject, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("Subject: %v", err)
	}
	mr := multipart.NewReader(m.Body, fuzzBoundary)
	var parts [][]byte
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("part %d: %v", len(parts), err)
		}
		var r io.Reader = p
		if p.Header.Get("Content-Type") == "message/rfc822" {
			im, err := mail.ReadMessage(p)
			if err != nil {
				t.Fatalf("inner message: %v", err)
			}
			r = transferDecoder(im.Header.Get("Content-Transfer-Encoding"), im.Body)
		} else {
			r = transferDecoder(p.Header.Get("Content-Transfer-Encoding"), p)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("part %d: %v", len(parts), err)
		}
		parts = append(parts, b)
	}
	return subject, parts
}

func transferDecoder(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(cte) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r)
	}
	return r
}
