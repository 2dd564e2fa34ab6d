package delivery

import (
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"

	"smtpkit/internal/client"
	"smtpkit/internal/queue"
	"smtpkit/internal/tlspolicy"
)

const eightBitBody = "From: a@local.example\r\nTo: x@remote.example\r\nSubject: Grüße\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln\r\n.dot\r\n"

func attemptOf(body string, eightBit bool) *queue.Attempt {
	d := delivery("remote.example", "x@remote.example")
	d.EightBit, d.Size = eightBit, int64(len(body))
	d.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	return d
}

// TestRemoteDowngrade8Bit: an 8-bit message to a server without 8BITMIME
// is converted to 7 bit (RFC 6152 §3) and accepted, instead of refused.
func TestRemoteDowngrade8Bit(t *testing.T) {
	f1, _, port := twoMX(t, &script{no8BITMIME: true}, nil)
	e := newEnv(t, port, envOpts{policy: tlspolicy.None})
	wantOutcomes(t, e.deliver(t, attemptOf(eightBitBody, true)), "ok")
	msgs := f1.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages arrived", len(msgs))
	}
	got := msgs[0]
	if strings.Contains(got.MailArgs, "BODY=") {
		t.Errorf("MAIL %q: want no BODY parameter", got.MailArgs)
	}
	for i := 0; i < len(got.Body); i++ {
		if got.Body[i] >= 0x80 {
			t.Fatalf("8-bit octet in what arrived: %q", got.Body)
		}
	}
	m, err := mail.ReadMessage(strings.NewReader(got.Body))
	if err != nil {
		t.Fatal(err)
	}
	if cte := m.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Errorf("Content-Transfer-Encoding %q", cte)
	}
	if s, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); err != nil || s != "Grüße" {
		t.Errorf("Subject %q (%q), err %v", m.Header.Get("Subject"), s, err)
	}
	text, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
	if string(text) != "Grüße aus Köln\r\n.dot\r\n" {
		t.Errorf("decoded body %q", text)
	}
}

// TestRemoteDowngradeRefused: a message that cannot be converted (binary
// content without MIME structure) fails with 554 5.6.3 before MAIL, the
// client's own refusal, and nothing half-converted is sent.
func TestRemoteDowngradeRefused(t *testing.T) {
	f1, _, port := twoMX(t, &script{no8BITMIME: true}, nil)
	e := newEnv(t, port, envOpts{policy: tlspolicy.None})
	res := e.deliver(t, attemptOf("Subject: x\r\n\r\nnul\x00 and \xff\r\n", true))
	wantOutcomes(t, res, "perm 554 5.6.3")
	if r := res[0]; r.Said() || !errors.Is(r.Err, client.ErrRefused) {
		t.Errorf("reply %v, err %v: want the client's own refusal", r.Reply, r.Err)
	}
	if f1.sawVerb("MAIL") {
		t.Errorf("server saw %q: want no MAIL", f1.Commands())
	}
}

// TestRemote8BitOffered: with 8BITMIME offered the message goes as it is.
func TestRemote8BitOffered(t *testing.T) {
	f1, _, port := twoMX(t, &script{}, nil)
	e := newEnv(t, port, envOpts{policy: tlspolicy.None})
	wantOutcomes(t, e.deliver(t, attemptOf(eightBitBody, true)), "ok")
	if m := f1.Messages(); len(m) != 1 || m[0].Body != eightBitBody || !strings.Contains(m[0].MailArgs, "BODY=8BITMIME") {
		t.Errorf("arrived %+v", m)
	}
}

// TestRemoteDowngradeBinary: a BINARYMIME message to a server without
// BINARYMIME (RFC 3030 §4) goes with its binary part in base64; a binary
// message without MIME structure fails 554 5.6.3 before MAIL.
func TestRemoteDowngradeBinary(t *testing.T) {
	const part = "\x00\x01\r\xff\n\r\n\x00"
	body := "From: a@local.example\r\nSubject: bin\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" + part + "\r\n--b--\r\n"
	f1, _, port := twoMX(t, &script{}, nil)
	e := newEnv(t, port, envOpts{policy: tlspolicy.None})
	d := attemptOf(body, false)
	d.Binary = true
	wantOutcomes(t, e.deliver(t, d), "ok")
	msgs := f1.Messages()
	if len(msgs) != 1 || strings.Contains(msgs[0].MailArgs, "BODY=") {
		t.Fatalf("arrived %+v", msgs)
	}
	want := "--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte(part)) + "\r\n--b--\r\n"
	if !strings.HasSuffix(msgs[0].Body, want) {
		t.Errorf("arrived %q, want it to end %q", msgs[0].Body, want)
	}

	d = attemptOf("Subject: bin\r\n\r\n\x00\xff\r\n", false)
	d.Binary = true
	wantOutcomes(t, e.deliver(t, d), "perm 554 5.6.3")
	if n := len(f1.Messages()); n != 1 {
		t.Errorf("%d messages arrived, want the first only", n)
	}
}
