package interop

// auth_test.go: AUTH (RFC 4954) and authenticated submission (RFC 6409)
// driven by independent clients — Python smtplib, swaks, curl, msmtp and
// GNU SASL's gsasl — against the real binary. Raw-socket protocol edges
// and the failed-login throttle are in auth_raw_test.go.
//
// Every failed login makes the server wait (1s, doubling per failure from
// the same IP or for the same account; a success from the IP resets the
// IP's count). Tests therefore spend each wrong password on its own
// account and run in parallel on servers of their own.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Accounts of the auth tests. The passwords are distinctive so that the
// log check can look for them.
const (
	aliceAddr = "alice@test.example"
	alicePW   = "Alice-s3cret.pw"
	bobAddr   = "bob@test.example"
	bobPW     = "Bob-s3cret.pw"
	wrongPW   = "Wr0ng-guess.pw"
	otherAddr = "someone@other.example" // a remote domain
)

// authServer starts a server with alice and bob, plus one account per
// name in victims (password alicePW) for wrong-password attempts.
func authServer(t *testing.T, victims ...string) *Server {
	t.Helper()
	s := StartServer(t, ServerOptions{})
	s.AddUser(t, aliceAddr, alicePW)
	s.AddUser(t, bobAddr, bobPW)
	for _, v := range victims {
		s.AddUser(t, v+"@test.example", alicePW)
	}
	return s
}

// addAlias runs `smtpkit user alias add ALIAS TARGET`.
func addAlias(t *testing.T, s *Server, alias, target string) {
	t.Helper()
	cmd := exec.Command(s.bin, "user", "alias", "add", "-config", s.ConfigPath, alias, target)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("smtpkit user alias add %s %s: %v\n%s", alias, target, err, out)
	}
}

// plainResponse is the base64 AUTH PLAIN response (RFC 4616) for user.
func plainResponse(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
}

// traceOf returns what the server prepended to a delivered message
// (Return-Path and Received).
func traceOf(msg []byte) string {
	return string(msg[:len(msg)-len(StripTrace(msg))])
}

// checkESMTPSA checks the Received header of a delivered message names the
// protocol of an authenticated TLS session (RFC 3848).
func checkESMTPSA(t *testing.T, msg []byte) {
	t.Helper()
	if tr := traceOf(msg); !regexp.MustCompile(`\bwith ESMTPSA\b`).MatchString(tr) {
		t.Errorf("Received header lacks \"with ESMTPSA\":\n%s", tr)
	}
}

// checkNoSecrets fails when the server's output holds a password or an
// AUTH PLAIN response carrying one.
func checkNoSecrets(t *testing.T, s *Server, users ...string) {
	t.Helper()
	logs := s.Logs()
	for _, pw := range []string{alicePW, bobPW, wrongPW} {
		if strings.Contains(logs, pw) {
			t.Errorf("server output contains the password %q", pw)
		}
		for _, u := range users {
			if strings.Contains(logs, plainResponse(u, pw)) {
				t.Errorf("server output contains the AUTH PLAIN response of %s with %q", u, pw)
			}
		}
	}
}

// mailMessage is a CRLF message from alice to rcpt with every header an
// MUA writes, so that the server's submission fix-up leaves it alone.
func mailMessage(tag, rcpt string) []byte {
	return []byte(strings.Join([]string{
		"From: Alice <" + aliceAddr + ">",
		"To: <" + rcpt + ">",
		"Subject: auth " + tag,
		"Message-ID: <" + tag + "@test.example>",
		"Date: Mon, 02 Mar 2026 10:00:00 +0000",
		"",
		"Sent by " + tag + ".",
		".leading dot",
		"",
		"end",
	}, "\r\n") + "\r\n")
}

// exitCode returns the exit status of a peer run, 0 when it succeeded.
func exitCode(t *testing.T, r peerRun) int {
	t.Helper()
	if r.Err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(r.Err, &ee) {
		t.Fatalf("running peer: %v", r.Err)
	}
	return ee.ExitCode()
}

// authPyResult is the JSON testdata/auth_smtplib.py prints.
type authPyResult struct {
	Ehlo           *pyReply           `json:"ehlo"`
	AuthAdvertised bool               `json:"auth_advertised"`
	LoginError     *string            `json:"login_error"`
	RawAuth        *pyReply           `json:"raw_auth"`
	StartTLS       *pyReply           `json:"starttls"`
	TLSVersion     string             `json:"tls_version"`
	AuthTLS        string             `json:"auth_tls"`
	Auth           *pyReply           `json:"auth"`
	Sent           bool               `json:"sent"`
	Refused        map[string]pyReply `json:"refused"`
	Error          *pyReply           `json:"error"`
}

// runAuthSmtplib runs testdata/auth_smtplib.py against addr.
func runAuthSmtplib(t *testing.T, s *Server, mode, addr string, args ...string) authPyResult {
	t.Helper()
	python := NeedPython(t)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, nil, python, append([]string{"testdata/auth_smtplib.py", mode, host, port, s.CertPath}, args...)...)
	var res authPyResult
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("decoding %q: %v", r.Stdout, err)
	}
	t.Logf("auth_smtplib %s: %s", mode, r.Stdout)
	return res
}

func TestAuthSmtplib(t *testing.T) {
	t.Parallel()
	NeedPython(t)
	s := authServer(t, "victim")

	submit := func(t *testing.T, addr, tag string, extra ...string) ([]byte, authPyResult) {
		t.Helper()
		msg := mailMessage(tag, bobAddr)
		args := append([]string{"--user", aliceAddr, "--password", alicePW, "--from", aliceAddr,
			"--to", bobAddr, "--msg", writeMessage(t, msg)}, extra...)
		res := runAuthSmtplib(t, s, "submit", addr, args...)
		if res.Auth == nil || res.Auth.Code != 235 || !strings.HasPrefix(res.Auth.Text, "2.7.0") {
			t.Fatalf("AUTH: %+v, want 235 2.7.0", res.Auth)
		}
		if !res.Sent || len(res.Refused) != 0 || res.Error != nil {
			t.Fatalf("transaction failed: %+v", res)
		}
		if !strings.HasPrefix(res.TLSVersion, "TLSv1.") {
			t.Errorf("TLS version %q", res.TLSVersion)
		}
		return msg, res
	}
	delivered := 0
	checkNext := func(t *testing.T, msg []byte) {
		t.Helper()
		delivered++
		got := s.WaitMessages(t, bobAddr, delivered)[delivered-1]
		checkDelivered(t, got, msg, aliceAddr)
		checkESMTPSA(t, got)
	}

	t.Run("login before STARTTLS", func(t *testing.T) {
		res := runAuthSmtplib(t, s, "pretls", s.Submission, "--user", aliceAddr, "--password", alicePW)
		if res.AuthAdvertised {
			t.Errorf("AUTH advertised before TLS: %+v", res.Ehlo)
		}
		if res.LoginError == nil || *res.LoginError != "SMTPNotSupportedError" {
			t.Errorf("login() before TLS: error %v, want SMTPNotSupportedError", res.LoginError)
		}
		if res.RawAuth == nil || res.RawAuth.Code != 538 || !strings.HasPrefix(res.RawAuth.Text, "5.7.11") {
			t.Errorf("raw AUTH PLAIN before TLS: %+v, want 538 5.7.11", res.RawAuth)
		}
		for _, mech := range []string{"PLAIN", "LOGIN", "SCRAM-SHA-256"} {
			if !strings.Contains(" "+res.AuthTLS+" ", " "+mech+" ") {
				t.Errorf("AUTH after STARTTLS offers %q, want %s among them", res.AuthTLS, mech)
			}
		}
	})

	t.Run("starttls and login on submission", func(t *testing.T) {
		msg, _ := submit(t, s.Submission, "smtplib-login")
		checkNext(t, msg)
	})

	t.Run("SMTP_SSL and login on submissions", func(t *testing.T) {
		msg, _ := submit(t, s.Submissions, "smtplib-smtps", "--implicit")
		checkNext(t, msg)
	})

	for _, tc := range []struct {
		mech    string
		initial bool
	}{{"PLAIN", true}, {"PLAIN", false}, {"LOGIN", true}, {"LOGIN", false}} {
		name := fmt.Sprintf("auth %s initial response %v", tc.mech, tc.initial)
		t.Run(name, func(t *testing.T) {
			extra := []string{"--mech", tc.mech}
			if !tc.initial {
				extra = append(extra, "--no-initial")
			}
			msg, _ := submit(t, s.Submission, "smtplib-"+strings.ReplaceAll(name, " ", "-"), extra...)
			checkNext(t, msg)
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		// One mechanism only: login() would try PLAIN and then LOGIN,
		// paying the failure delay twice.
		res := runAuthSmtplib(t, s, "submit", s.Submission, "--user", "victim@test.example",
			"--password", wrongPW, "--mech", "PLAIN", "--from", "victim@test.example", "--to", bobAddr,
			"--msg", writeMessage(t, mailMessage("smtplib-wrong", bobAddr)))
		if res.Auth == nil || res.Auth.Code != 535 || !strings.HasPrefix(res.Auth.Text, "5.7.8") {
			t.Errorf("AUTH with a wrong password: %+v, want 535 5.7.8", res.Auth)
		}
		if res.Sent {
			t.Error("message sent after a failed AUTH")
		}
	})
	checkNoSecrets(t, s, aliceAddr, "victim@test.example")
}

func TestAuthSwaks(t *testing.T) {
	t.Parallel()
	swaks := Need(t, "swaks")
	s := authServer(t, "victim1", "victim2")
	ok235 := regexp.MustCompile(`(?m)^<~  235 2\.7\.0 `)
	bad535 := regexp.MustCompile(`(?m)^<~\* 535 5\.7\.8 `)

	run := func(t *testing.T, mech, user, pw, tag string) (peerRun, []byte) {
		msg := mailMessage(tag, bobAddr)
		args := append(swaksArgs(s, s.Submission, user, bobAddr), "--auth", mech,
			"--auth-user", user, "--auth-password", pw, "--data", swaksData(t, msg))
		return runPeer(t, nil, swaks, args...), msg
	}
	delivered := 0
	// Subtests alternate failures and successes: a success from the IP
	// resets its failure count, so every failure waits only the base delay.
	for _, tc := range []struct {
		mech, user, pw string
		ok             bool
	}{
		{"PLAIN", "victim1@test.example", wrongPW, false},
		{"PLAIN", aliceAddr, alicePW, true},
		{"LOGIN", "victim2@test.example", wrongPW, false},
		{"LOGIN", aliceAddr, alicePW, true},
	} {
		t.Run(fmt.Sprintf("%s ok=%v", tc.mech, tc.ok), func(t *testing.T) {
			r, msg := run(t, tc.mech, tc.user, tc.pw, "swaks-"+strings.ToLower(tc.mech))
			if !strings.Contains(r.Stdout, " ~> AUTH "+tc.mech) {
				t.Errorf("swaks did not use AUTH %s:\n%s", tc.mech, r.Stdout)
			}
			code := exitCode(t, r)
			if !tc.ok {
				if code != 28 || !bad535.MatchString(r.Stdout) {
					t.Errorf("exit code %d, want 28 (AUTH failed) with 535 5.7.8:\n%s", code, r.Stdout)
				}
				return
			}
			if code != 0 || !ok235.MatchString(r.Stdout) {
				t.Fatalf("exit code %d, want 0 with 235 2.7.0:\n%s\n%s", code, r.Stdout, r.Stderr)
			}
			delivered++
			got := s.WaitMessages(t, bobAddr, delivered)[delivered-1]
			checkDelivered(t, got, msg, tc.user)
			checkESMTPSA(t, got)
		})
	}

	t.Run("no AUTH on mx", func(t *testing.T) {
		r := runPeer(t, nil, swaks, "--server", s.MX, "--from", aliceAddr, "--to", otherAddr,
			"--helo", "client.b.example", "--auth", "PLAIN", "--auth-user", aliceAddr,
			"--auth-password", alicePW, "--timeout", "20")
		if code := exitCode(t, r); code != 28 {
			t.Errorf("exit code %d, want 28:\n%s", code, r.Stdout)
		}
		if strings.Contains(r.Stdout, "-> AUTH") || !strings.Contains(r.Stderr, "not advertise") {
			t.Errorf("swaks should refuse to AUTH where it is not advertised:\n%s\n%s", r.Stdout, r.Stderr)
		}
	})
	checkNoSecrets(t, s, aliceAddr, "victim1@test.example", "victim2@test.example")
}

func TestAuthCurl(t *testing.T) {
	t.Parallel()
	curl := Need(t, "curl")
	s := authServer(t, "victim")

	// send uploads a message with curl to scheme://127.0.0.1:port; the
	// self-signed certificate names 127.0.0.1 as an IP address.
	send := func(t *testing.T, scheme, addr, user, pw string, msg []byte, extra ...string) peerRun {
		args := append([]string{"-sS", "-v", scheme + "://" + addr, "--cacert", s.CertPath,
			"--user", user + ":" + pw, "--mail-from", user, "--mail-rcpt", bobAddr,
			"--upload-file", writeMessage(t, msg), "--max-time", "20"}, extra...)
		return runPeer(t, nil, curl, args...)
	}
	delivered := 0
	for _, tc := range []struct {
		name, scheme, addr string
		mech               string // forced with --login-options; "" lets curl choose
		extra              []string
	}{
		{"smtp STARTTLS on submission", "smtp", s.Submission, "", []string{"--ssl-reqd"}},
		{"smtps on submissions", "smtps", s.Submissions, "", nil},
		{"AUTH=LOGIN", "smtp", s.Submission, "LOGIN", []string{"--ssl-reqd"}},
		{"AUTH=PLAIN", "smtps", s.Submissions, "PLAIN", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := mailMessage("curl-"+strings.ReplaceAll(tc.name, " ", "-"), bobAddr)
			extra := tc.extra
			if tc.mech != "" {
				extra = append(extra, "--login-options", "AUTH="+tc.mech)
			}
			r := send(t, tc.scheme, tc.addr, aliceAddr, alicePW, msg, extra...)
			if r.Err != nil {
				t.Fatalf("curl: %v\n%s", r.Err, r.Stderr)
			}
			checkTLSVersion(t, r.Stderr)
			if !regexp.MustCompile(`(?m)^> AUTH `).MatchString(r.Stderr) ||
				!regexp.MustCompile(`(?m)^< 235 2\.7\.0 `).MatchString(r.Stderr) {
				t.Errorf("no successful AUTH in curl's log:\n%s", r.Stderr)
			}
			if tc.mech != "" && !strings.Contains(r.Stderr, "> AUTH "+tc.mech) {
				t.Errorf("curl did not use AUTH %s:\n%s", tc.mech, r.Stderr)
			}
			delivered++
			got := s.WaitMessages(t, bobAddr, delivered)[delivered-1]
			checkDelivered(t, got, msg, aliceAddr)
			checkESMTPSA(t, got)
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		r := send(t, "smtp", s.Submission, "victim@test.example", wrongPW,
			mailMessage("curl-wrong", bobAddr), "--ssl-reqd")
		// curl: 67 is CURLE_LOGIN_DENIED.
		if code := exitCode(t, r); code != 67 || !strings.Contains(r.Stderr, "< 535 5.7.8") {
			t.Errorf("exit code %d, want 67 after 535 5.7.8:\n%s", code, r.Stderr)
		}
	})
	checkNoSecrets(t, s, aliceAddr, "victim@test.example")
}

// msmtprc writes an msmtp configuration for one account and returns its
// path (msmtp insists on mode 0600).
func msmtprc(t *testing.T, s *Server, addr, auth, user, pw string, implicit bool) string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	starttls := "on"
	if implicit {
		starttls = "off"
	}
	rc := fmt.Sprintf(`defaults
tls on
tls_starttls %s
tls_trust_file %s
tls_host_override %s
timeout 20

account test
host %s
port %s
domain client.b.example
from %s
auth %s
user %s
password %s

account default : test
`, starttls, s.CertPath, testHostname, host, port, user, auth, user, pw)
	path := filepath.Join(t.TempDir(), "msmtprc")
	if err := os.WriteFile(path, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuthMsmtp(t *testing.T) {
	t.Parallel()
	msmtp := Need(t, "msmtp")
	s := authServer(t, "victim")
	version := mustRun(t, nil, msmtp, "--version").Stdout
	if !strings.Contains(version, "GNU SASL") || !strings.Contains(version, "scram-sha-256") {
		t.Fatalf("msmtp is not built with GNU SASL and SCRAM-SHA-256:\n%s", version)
	}

	delivered := 0
	for _, tc := range []struct {
		auth     string
		implicit bool
	}{
		{"plain", false}, {"login", false}, {"scram-sha-256", false},
		{"plain", true}, {"scram-sha-256", true},
	} {
		name := tc.auth + map[bool]string{false: " STARTTLS", true: " implicit TLS"}[tc.implicit]
		t.Run(name, func(t *testing.T) {
			addr := s.Submission
			if tc.implicit {
				addr = s.Submissions
			}
			rc := msmtprc(t, s, addr, tc.auth, aliceAddr, alicePW, tc.implicit)
			msg := mailMessage("msmtp-"+strings.ReplaceAll(name, " ", "-"), bobAddr)
			// msmtp reads LF or CRLF lines; give it LF to check it puts
			// CRLF on the wire.
			lf := bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
			r := runPeer(t, lf, msmtp, "-C", rc, "-t", "--debug")
			if r.Err != nil {
				t.Fatalf("msmtp: %v\n%s\n%s", r.Err, r.Stdout, r.Stderr)
			}
			want := "--> AUTH " + strings.ToUpper(tc.auth)
			if !strings.Contains(r.Stdout, want) || !strings.Contains(r.Stdout, "<-- 235 2.7.0") {
				t.Errorf("no %q answered 235 in msmtp's log:\n%s", want, r.Stdout)
			}
			delivered++
			got := s.WaitMessages(t, bobAddr, delivered)[delivered-1]
			checkDelivered(t, got, msg, aliceAddr)
			checkESMTPSA(t, got)
		})
	}

	t.Run("scram wrong password", func(t *testing.T) {
		rc := msmtprc(t, s, s.Submission, "scram-sha-256", "victim@test.example", wrongPW, false)
		r := runPeer(t, mailMessage("msmtp-wrong", bobAddr), msmtp, "-C", rc, "-t", "--debug")
		if r.Err == nil || !strings.Contains(r.Stdout, "<-- 535 5.7.8") {
			t.Errorf("msmtp with a wrong SCRAM password: %v, want failure after 535 5.7.8:\n%s\n%s", r.Err, r.Stdout, r.Stderr)
		}
	})
	checkNoSecrets(t, s, aliceAddr, "victim@test.example")
}

func TestAuthGsaslScram(t *testing.T) {
	t.Parallel()
	gsasl := Need(t, "gsasl")
	s := authServer(t)
	// gsasl --smtp runs EHLO, STARTTLS (used because it is offered; the
	// --starttls flag would send it before EHLO) and AUTH, and exits 0 once
	// the server answered 235; it then closes without sending mail.
	// --no-cb: gsasl 2.2 fails locally (before sending anything) when it
	// tries to fetch channel-binding data from the TLS 1.3 session; we do
	// not offer SCRAM-SHA-256-PLUS, so "n" (no binding) is what it should
	// send anyway. No authorization id: gsasl would send an empty "a=",
	// which RFC 5802 §7 does not allow (the server answers 501).
	r := runPeer(t, nil, gsasl, "--client", "--smtp", "--connect", s.Submission,
		"--no-cb", "--x509-ca-file", s.CertPath, "--hostname", testHostname,
		"--mechanism", "SCRAM-SHA-256", "--authentication-id", aliceAddr,
		"--password", alicePW, "--quiet")
	out := r.Stdout + r.Stderr
	if r.Err != nil {
		t.Fatalf("gsasl: %v\n%s", r.Err, out)
	}
	if !strings.Contains(out, "235 2.7.0") {
		t.Errorf("no 235 in gsasl's log:\n%s", out)
	}
	checkNoSecrets(t, s, aliceAddr)
}
