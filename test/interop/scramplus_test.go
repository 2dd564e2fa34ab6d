package interop

// SCRAM-SHA-256-PLUS (RFC 5802 §6, RFC 9266) and PRECIS-prepared
// non-ASCII passwords (RFC 8265) against independent clients: GNU SASL's
// gsasl (the only installed client with -PLUS; msmtp 1.8.23 lists no
// -PLUS mechanism), msmtp, swaks and Python's smtplib.

import (
	"encoding/base64"
	"strings"
	"testing"
)

// Non-ASCII password of the tests: stored composed (NFC) by `smtpkit user
// add`, sent decomposed (a + U+0308 ...) or with a no-break space by the
// clients; OpaqueString maps all three to the same string.
const (
	uniAddr       = "joerg@test.example"
	uniPW         = "P\u00e4ssw\u00f6rd gr\u00fc\u00dfe-\u00c5"
	uniPWDecomp   = "Pa\u0308sswo\u0308rd gru\u0308\u00dfe-A\u030a"
	uniPWNBSP     = "P\u00e4ssw\u00f6rd\u00a0gr\u00fc\u00dfe-\u00c5"
	gsaslPriority = "NORMAL:-VERS-TLS1.3"
)

func gsaslAuth(t *testing.T, s *Server, mech, user, pw string, extra ...string) (string, error) {
	t.Helper()
	gsasl := Need(t, "gsasl")
	args := append([]string{"--client", "--smtp", "--connect", s.Submission,
		"--x509-ca-file", s.CertPath, "--hostname", testHostname,
		"--mechanism", mech, "--authentication-id", user, "--password", pw, "--quiet"}, extra...)
	r := runPeer(t, nil, gsasl, args...)
	return r.Stdout + r.Stderr, r.Err
}

// TestAuthGsaslScramPlus: gsasl binds SCRAM-SHA-256-PLUS to the TLS
// channel — tls-exporter on TLS 1.3, tls-unique on TLS 1.2 (gsasl 2.2
// picks the binding by the TLS version) — and our server accepts it;
// plain SCRAM-SHA-256 chosen although -PLUS is offered ("n") still works.
func TestAuthGsaslScramPlus(t *testing.T) {
	t.Parallel()
	s := authServer(t)
	for _, tc := range []struct {
		name  string
		mech  string
		extra []string
	}{
		{"PLUS TLS 1.3", "SCRAM-SHA-256-PLUS", nil},
		{"PLUS TLS 1.2", "SCRAM-SHA-256-PLUS", []string{"--priority", gsaslPriority}},
		{"no PLUS TLS 1.3 (n flag)", "SCRAM-SHA-256", []string{"--no-cb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := gsaslAuth(t, s, tc.mech, aliceAddr, alicePW, tc.extra...)
			if err != nil || !strings.Contains(out, "235 2.7.0") {
				t.Fatalf("gsasl %s: %v\n%s", tc.mech, err, out)
			}
		})
	}
	t.Run("PLUS wrong password", func(t *testing.T) {
		out, err := gsaslAuth(t, s, "SCRAM-SHA-256-PLUS", aliceAddr, wrongPW)
		if err == nil || !strings.Contains(out, "535 5.7.8") {
			t.Errorf("gsasl -PLUS with a wrong password: %v, want 535 5.7.8\n%s", err, out)
		}
	})
	checkNoSecrets(t, s, aliceAddr)
}

// TestAuthNonASCIIPassword: one account with a non-ASCII password logs in
// from every client, in whichever Unicode form the client sends it.
func TestAuthNonASCIIPassword(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOptions{})
	s.AddUser(t, uniAddr, uniPW)
	s.AddUser(t, bobAddr, bobPW)

	t.Run("gsasl SCRAM-SHA-256-PLUS decomposed", func(t *testing.T) {
		if out, err := gsaslAuth(t, s, "SCRAM-SHA-256-PLUS", uniAddr, uniPWDecomp); err != nil || !strings.Contains(out, "235 2.7.0") {
			t.Fatalf("gsasl: %v\n%s", err, out)
		}
	})
	t.Run("gsasl SCRAM-SHA-256 NBSP", func(t *testing.T) {
		if out, err := gsaslAuth(t, s, "SCRAM-SHA-256", uniAddr, uniPWNBSP, "--no-cb"); err != nil || !strings.Contains(out, "235 2.7.0") {
			t.Fatalf("gsasl: %v\n%s", err, out)
		}
	})
	t.Run("gsasl PLAIN", func(t *testing.T) {
		if out, err := gsaslAuth(t, s, "PLAIN", uniAddr, uniPWDecomp); err != nil || !strings.Contains(out, "235 2.7.0") {
			t.Fatalf("gsasl: %v\n%s", err, out)
		}
	})
	msmtp := Need(t, "msmtp")
	for _, auth := range []string{"plain", "login", "scram-sha-256"} {
		t.Run("msmtp "+auth, func(t *testing.T) {
			rc := msmtprc(t, s, s.Submission, auth, uniAddr, uniPWDecomp, false)
			r := runPeer(t, mailMessage("msmtp-uni-"+auth, bobAddr), msmtp, "-C", rc, "-t", "--debug")
			if r.Err != nil || !strings.Contains(r.Stdout, "<-- 235 2.7.0") {
				t.Fatalf("msmtp %s: %v\n%s\n%s", auth, r.Err, r.Stdout, r.Stderr)
			}
		})
	}
	swaks := Need(t, "swaks")
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		t.Run("swaks "+mech, func(t *testing.T) {
			args := append(swaksArgs(s, s.Submission, uniAddr, bobAddr), "--auth", mech,
				"--auth-user", uniAddr, "--auth-password", uniPWNBSP, "--data", swaksData(t, mailMessage("swaks-uni", bobAddr)))
			r := runPeer(t, nil, swaks, args...)
			if r.Err != nil || !strings.Contains(r.Stdout, "235 2.7.0") {
				t.Fatalf("swaks %s: %v\n%s\n%s", mech, r.Err, r.Stdout, r.Stderr)
			}
		})
	}
	// smtplib's own auth() encodes responses as ASCII (it cannot send
	// this password at all); the script sends the UTF-8 bytes itself over
	// smtplib's STARTTLS session.
	python := NeedPython(t)
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		t.Run("smtplib "+mech, func(t *testing.T) {
			i := strings.LastIndexByte(s.Submission, ':')
			host, port := s.Submission[:i], s.Submission[i+1:]
			r := runPeer(t, nil, python, "-c", smtplibUTF8Auth, host, port, s.CertPath, testHostname, mech,
				base64.StdEncoding.EncodeToString([]byte(uniAddr)), base64.StdEncoding.EncodeToString([]byte(uniPWDecomp)))
			if r.Err != nil || !strings.Contains(r.Stdout, "235") {
				t.Fatalf("smtplib %s: %v\n%s\n%s", mech, r.Err, r.Stdout, r.Stderr)
			}
		})
	}
}

// smtplibUTF8Auth: argv host port cafile sni mech b64(user) b64(password).
const smtplibUTF8Auth = `
import base64, smtplib, ssl, sys
host, port, cafile, sni, mech, user, pw = sys.argv[1:8]
user, pw = base64.b64decode(user), base64.b64decode(pw)
ctx = ssl.create_default_context(cafile=cafile)
s = smtplib.SMTP(host, int(port), timeout=20)
s._host = sni
s.ehlo("client.b.example")
s.starttls(context=ctx)
s.ehlo("client.b.example")
b = lambda x: base64.b64encode(x).decode()
if mech == "PLAIN":
    code, msg = s.docmd("AUTH", "PLAIN " + b(b"\0" + user + b"\0" + pw))
else:
    code, msg = s.docmd("AUTH", "LOGIN " + b(user))
    if code == 334:
        code, msg = s.docmd(b(pw))
print(code, msg.decode())
s.quit()
`
