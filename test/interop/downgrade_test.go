package interop

// 8BITMIME downgrade (RFC 6152 §3): smtpkit A takes an 8-bit message on
// submission and relays it to a next hop that does not offer 8BITMIME —
// aiosmtpd with 8BITMIME removed from its EHLO reply. A converts it to 7
// bit (internal/mimeconv) instead of bouncing it, and Python's email
// module, on the peer, decodes every part back to the octets that were
// submitted. Addresses: 127.16.3.0/24.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"smtpkit/internal/client"
	"smtpkit/internal/sasl"
)

const downgradeIP = "127.16.3.1"

// pyDecoded is what downgrade_aiosmtpd.py reports of one message.
type pyDecoded struct {
	From        string   `json:"from"`
	MailOptions []string `json:"mail_options"`
	Data        string   `json:"data"`
	Subject     string   `json:"subject"`
	HeaderFrom  string   `json:"header_from"`
	Parts       []struct {
		Type, CTE, Payload string
		Filename           *string
	} `json:"parts"`
}

// no8BitPeer is a running downgrade_aiosmtpd.py.
type no8BitPeer struct {
	addr string
	mu   sync.Mutex
	msgs []pyDecoded
}

func (p *no8BitPeer) messages() []pyDecoded {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]pyDecoded(nil), p.msgs...)
}

func startNo8BitPeer(t *testing.T, ip string, args ...string) *no8BitPeer {
	t.Helper()
	python := NeedPython(t)
	if err := exec.Command(python, "-c", "import aiosmtpd").Run(); err != nil {
		missing(t, "python3-aiosmtpd", err)
	}
	cmd := exec.Command(python, append([]string{"testdata/downgrade_aiosmtpd.py", ip}, args...)...)
	p := &no8BitPeer{}
	port := startScriptPeer(t, "aiosmtpd peer", cmd, func(line []byte) {
		var m pyDecoded
		if json.Unmarshal(line, &m) == nil {
			p.mu.Lock()
			p.msgs = append(p.msgs, m)
			p.mu.Unlock()
		}
	})
	p.addr = ip + ":" + port
	return p
}

// submit8Bit submits msg with BODY=8BITMIME on s's submission port.
func submit8Bit(t *testing.T, s *Server, msg []byte, rcpt string) {
	t.Helper()
	submitBody(t, s, msg, rcpt, client.Envelope{EightBit: true})
}

// submitBody submits msg with env's BODY on s's submission port.
func submitBody(t *testing.T, s *Server, msg []byte, rcpt string, env client.Envelope) {
	t.Helper()
	c := dialHello(t, s.Submission, "submitter.example")
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: testHostname, RootCAs: rootsFromFile(t, s.CertPath)}); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(sasl.NewPlainClient("", outSender, outPassword)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), outWait)
	defer cancel()
	env.From, env.To = outSender, []string{rcpt}
	res, err := c.Send(ctx, env, bytes.NewReader(msg))
	if err != nil || res.Data != nil {
		t.Fatalf("submitting: %v / %v (rcpts %v)", err, res.Data, res.Rcpt)
	}
	c.Quit()
}

// downgradeParts are the leaf parts of downgradeMessage, decoded (the CRLF
// before a delimiter belongs to it, RFC 2046 §5.1.1, not to the part).
var downgradeParts = []struct{ typ, payload string }{
	{"text/plain", "Grüße aus Köln — ünïcödé\r\ntrailing space \r\n.a dot line"},
	{"application/octet-stream", "\x89\xfe\xff high octets \x80\x81\r\n\xe9\xe8"},
	{"text/plain", "inner naïve body"},
}

// downgradeMessage is an 8-bit multipart message: an 8bit text part, an
// 8bit attachment with a UTF-8 file name, and a message/rfc822 whose own
// header and body are 8-bit.
func downgradeMessage(id string) []byte {
	return []byte(strings.Join([]string{
		"From: Jörg Müller <" + outSender + ">",
		"To: x@no8bit.example",
		"Subject: Grüße " + id,
		"Message-ID: <" + id + "@" + testDomain + ">",
		"MIME-Version: 1.0",
		`Content-Type: multipart/mixed; boundary="=_outer"`,
		"",
		"--=_outer",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: 8bit",
		"",
		downgradeParts[0].payload,
		"--=_outer",
		`Content-Type: application/octet-stream; name="résumé.bin"`,
		`Content-Disposition: attachment; filename="résumé.bin"`,
		"Content-Transfer-Encoding: 8bit",
		"",
		downgradeParts[1].payload,
		"--=_outer",
		"Content-Type: message/rfc822",
		"Content-Transfer-Encoding: 8bit",
		"",
		"Subject: inner ünï",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: 8bit",
		"",
		downgradeParts[2].payload,
		"--=_outer--",
		"",
	}, "\r\n"))
}

func TestDowngradeAiosmtpd(t *testing.T) {
	p := startNo8BitPeer(t, downgradeIP)
	a := StartServer(t, ServerOptions{IP: "127.16.3.2", ExtraTOML: outConf{routes: []outRoute{{domain: "*", host: p.addr, tls: "none"}}}.toml()})
	a.AddUser(t, outSender, outPassword)
	msg := downgradeMessage("downgrade-1")
	submit8Bit(t, a, msg, "x@no8bit.example")
	eventually(t, "the message at aiosmtpd", func() bool { return len(p.messages()) >= 1 })
	m := p.messages()[0]
	for _, o := range m.MailOptions {
		if strings.HasPrefix(strings.ToUpper(o), "BODY=") {
			t.Errorf("MAIL carried %q to a server without 8BITMIME", o)
		}
	}
	checkDowngraded(t, m, "downgrade-1", false)
	eventually(t, "the queue to empty", func() bool { return queued(t, a) == 0 })
}

// checkDowngraded checks that m, downgradeMessage(id) as it arrived, is
// 7-bit and decodes (Python's email module) to what was sent.
// With lf (a copy Postfix's virtual(8) stored, with LF line ends), text
// parts decode with LF line ends too.
func checkDowngraded(t *testing.T, m pyDecoded, id string, lf bool) {
	t.Helper()
	for i := 0; i < len(m.Data); i++ {
		if m.Data[i] >= 0x80 {
			t.Fatalf("8-bit octet at %d in what arrived:\n%s", i, m.Data)
		}
	}
	if m.Subject != "Grüße "+id || m.HeaderFrom != "Jörg Müller <"+outSender+">" {
		t.Errorf("decoded Subject %q, From %q", m.Subject, m.HeaderFrom)
	}
	if len(m.Parts) != len(downgradeParts) {
		t.Fatalf("%d leaf parts decoded, want %d:\n%s", len(m.Parts), len(downgradeParts), m.Data)
	}
	for i, want := range downgradeParts {
		got, _ := base64.StdEncoding.DecodeString(m.Parts[i].Payload)
		if lf && strings.HasPrefix(want.typ, "text/") {
			want.payload = strings.ReplaceAll(want.payload, "\r\n", "\n")
		}
		if m.Parts[i].Type != want.typ || string(got) != want.payload {
			t.Errorf("part %d: %s %q (%s), want %s %q", i, m.Parts[i].Type, got, m.Parts[i].CTE, want.typ, want.payload)
		}
	}
	if f := m.Parts[1].Filename; f == nil || *f != "résumé.bin" {
		t.Errorf("attachment file name %v, want résumé.bin", f)
	}
	if !strings.Contains(m.Data, "Content-Transfer-Encoding: quoted-printable") || !strings.Contains(m.Data, "Content-Transfer-Encoding: base64") {
		t.Errorf("want quoted-printable and base64 parts in:\n%s", m.Data)
	}
}

// TestDowngradeBinaryAiosmtpd: a message submitted with BDAT and
// BODY=BINARYMIME (its attachment raw binary: NUL, bare CR and LF, a line
// of 3000 octets) reaches aiosmtpd, which offers neither BINARYMIME nor
// CHUNKING, with the attachment in base64 (RFC 3030 §4); Python's email
// module decodes the same octets. A binary message without MIME structure
// bounces with 5.6.3 instead.
func TestDowngradeBinaryAiosmtpd(t *testing.T) {
	p := startNo8BitPeer(t, "127.16.3.3")
	a := StartServer(t, ServerOptions{IP: "127.16.3.4", ExtraTOML: outConf{routes: []outRoute{{domain: "*", host: p.addr, tls: "none"}}}.toml()})
	a.AddUser(t, outSender, outPassword)
	bin := "\x00\x01 nul\r bare CR\n bare LF \xff\xfe" + strings.Repeat("\xab", 3000) + "\r\n\x00"
	msg := []byte("From: " + outSender + "\r\nTo: x@no8bit.example\r\nSubject: binary\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n--=_b\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\nsee the attachment, café\r\n--=_b\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Transfer-Encoding: binary\r\n\r\n" + bin + "\r\n--=_b--\r\n")
	submitBody(t, a, msg, "x@no8bit.example", client.Envelope{Binary: true})
	eventually(t, "the message at aiosmtpd", func() bool { return len(p.messages()) >= 1 })
	m := p.messages()[0]
	for i := 0; i < len(m.Data); i++ {
		if m.Data[i] >= 0x80 || m.Data[i] == 0 {
			t.Fatalf("octet %#x at %d in what arrived", m.Data[i], i)
		}
	}
	if len(m.Parts) != 2 {
		t.Fatalf("%d parts:\n%s", len(m.Parts), m.Data)
	}
	text, _ := base64.StdEncoding.DecodeString(m.Parts[0].Payload)
	got, _ := base64.StdEncoding.DecodeString(m.Parts[1].Payload)
	if string(text) != "see the attachment, café" || m.Parts[1].CTE != "base64" || string(got) != bin {
		t.Errorf("parts %q and %q (%s)", text, got, m.Parts[1].CTE)
	}

	// Not MIME: no conversion, a bounce to the (local) sender.
	submitBody(t, a, []byte("From: "+outSender+"\r\nSubject: raw\r\n\r\nraw\x00binary\n\r\n"), "y@no8bit.example", client.Envelope{Binary: true})
	if bounce := string(a.WaitMessages(t, outSender, 1)[0]); !strings.Contains(bounce, "5.6.3") {
		t.Errorf("bounce without 5.6.3:\n%s", bounce)
	}
	if n := len(p.messages()); n != 1 {
		t.Errorf("peer got %d messages, want 1", n)
	}
}

// TestDowngradePostfix: the next hop is a private Postfix whose smtpd
// drops 8BITMIME from its EHLO reply (smtpd_discard_ehlo_keywords =
// 8bitmime), reached with STARTTLS and AUTH as in postfix_relay_test.go.
// smtpkit converts; the message Postfix's virtual(8) stored decodes, with
// Python's email module, to what was submitted.
func TestDowngradePostfix(t *testing.T) {
	postfix := Need(t, "postfix")
	saslpasswd2 := Need(t, "saslpasswd2")
	if os.Geteuid() != 0 {
		missing(t, "root (for a private Postfix instance)", errors.New("not root"))
	}
	c := writeRelayPostfixOn(t, saslpasswd2, "127.16.3.5", func(conf []byte) []byte {
		return append(conf, "\n# downgrade_test.go: no 8BITMIME\nsmtpd_discard_ehlo_keywords = 8bitmime\n"...)
	})
	p := &relayPostfix{addr: c.Addr, cert: c.Cert, mail: c.Mail, logs: runPostfix(t, postfix, c.Conf, c.Addr)}

	a := relaySender(t, p, relayPassword)
	msg := downgradeMessage("downgrade-postfix")
	submit8Bit(t, a, msg, relayRcpt)
	var stored [][]byte
	eventually(t, "the message in Postfix's Maildir", func() bool {
		stored = p.delivered(t, relayRcpt, "downgrade-postfix")
		return len(stored) == 1
	})
	file := filepath.Join(t.TempDir(), "stored.eml")
	os.WriteFile(file, stored[0], 0o600)
	out, err := exec.Command(NeedPython(t), "testdata/downgrade_aiosmtpd.py", "--decode", file).Output()
	if err != nil {
		t.Fatalf("decoding: %v", err)
	}
	var m pyDecoded
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	checkDowngraded(t, m, "downgrade-postfix", true)
	if !strings.Contains(p.logs.String(), "discarding EHLO keywords: 8BITMIME") {
		t.Errorf("Postfix did not log discarding 8BITMIME")
	}
	if !strings.Contains(p.logs.String(), "sasl_username="+relayUser) {
		t.Errorf("Postfix did not log our AUTH")
	}
}

// latin1 gives back the octets the peer sent as latin-1 text.
func latin1(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return b
}
