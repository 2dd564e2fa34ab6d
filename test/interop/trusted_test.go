package interop

// Trusted networks end to end (issue #15), from this test's loopback
// range 127.15.1.0/24: Python's smtplib holds 200 connections from a
// trusted address open at once (all greeted 220) while an untrusted
// address still gets 421 after its 20th; swaks from a trusted address
// relays without AUTH through smtpkit A's queue to smtpkit B, DKIM-signed
// (dkimpy verifies what B stored); swaks from an untrusted address gets
// 550 5.7.1 for the same recipient.

import (
	"encoding/json"
	"errors"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The addresses of this test (range 127.15.1.0/24).
const (
	trustedIP   = "127.15.1.5"   // in A's trusted_networks
	untrustedIP = "127.15.1.200" // not
	trustedB    = "127.15.1.25"  // smtpkit B listens here
)

// trustedTOML trusts 127.0.0.1 and 127.15.1.0/28 (so trustedIP, not
// untrustedIP).
const trustedTOML = `trusted_networks = ["127.0.0.1", "127.15.1.0/28"]`

// connsResult is trusted_conns.py's report.
type connsResult struct {
	Greeted int `json:"greeted"`
	Refused []struct {
		Code int    `json:"code"`
		Text string `json:"text"`
	} `json:"refused"`
}

// smtplibConns has trusted_conns.py open n concurrent connections from
// source to addr.
func smtplibConns(t *testing.T, addr string, n int, source string) connsResult {
	t.Helper()
	py := NeedPython(t)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, nil, py, "testdata/trusted_conns.py", host, port, strconv.Itoa(n), source)
	var res connsResult
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("trusted_conns.py printed %q: %v\n%s", r.Stdout, err, r.Stderr)
	}
	return res
}

func TestTrustedConnectionLimits(t *testing.T) {
	s := StartServer(t, ServerOptions{TopTOML: trustedTOML})
	tests := []struct {
		name    string
		source  string
		open    int
		greeted int
		refusal string // prefix of the first refusal's text
	}{
		{"trusted 127.0.0.1: 200 concurrent, all greeted", "127.0.0.1", 200, 200, ""},
		{"trusted " + trustedIP + ": 200 concurrent, all greeted", trustedIP, 200, 200, ""},
		{"untrusted " + untrustedIP + ": 421 after the 20th", untrustedIP, 21, 20, "4.7.0 mx.test.example too many connections from your address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := smtplibConns(t, s.MX, tt.open, tt.source)
			if res.Greeted != tt.greeted {
				first := ""
				if len(res.Refused) > 0 {
					first = res.Refused[0].Text
				}
				t.Errorf("%d of %d greeted, want %d (%d refused, the first with %q)", res.Greeted, tt.open, tt.greeted, len(res.Refused), first)
			}
			if tt.refusal == "" {
				return
			}
			if len(res.Refused) != tt.open-tt.greeted || res.Refused[0].Code != 421 || !strings.HasPrefix(res.Refused[0].Text, tt.refusal) {
				t.Errorf("refusals %+v, want %d × 421 %s", res.Refused, tt.open-tt.greeted, tt.refusal)
			}
		})
	}
}

// TestTrustedIPv6: the same over IPv6 loopback: ::1 trusted is exempt
// from the per-IP limit, a v4-only list leaves ::1 untrusted.
func TestTrustedIPv6(t *testing.T) {
	tests := []struct {
		name    string
		trusted string
		open    int
		greeted int
	}{
		{"::1 trusted", `trusted_networks = ["::1"]`, 60, 60},
		{"only 127.0.0.0/8 trusted", `trusted_networks = ["127.0.0.0/8"]`, 21, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := StartServer(t, ServerOptions{IP: "::1", TopTOML: tt.trusted})
			if res := smtplibConns(t, s.MX, tt.open, "::1"); res.Greeted != tt.greeted {
				t.Errorf("%d of %d greeted from ::1, want %d (refused %+v)", res.Greeted, tt.open, tt.greeted, res.Refused)
			}
		})
	}
}

// TestTrustedPerListener: a [[listener]]'s trusted_networks replaces the
// top-level list (here the harness's []) for that listener only.
func TestTrustedPerListener(t *testing.T) {
	s := StartServer(t, ServerOptions{ListenerTOML: map[string]string{"mx": `trusted_networks = ["127.15.1.0/28"]`}})
	if res := smtplibConns(t, s.MX, 40, trustedIP); res.Greeted != 40 {
		t.Errorf("mx, trusted there: %d of 40 greeted", res.Greeted)
	}
	if res := smtplibConns(t, s.Submission, 21, trustedIP); res.Greeted != 20 || len(res.Refused) != 1 || res.Refused[0].Code != 421 {
		t.Errorf("submission, trusted nowhere: %d of 21 greeted, refused %+v; want 20 and one 421", res.Greeted, res.Refused)
	}
}

func TestTrustedRelay(t *testing.T) {
	swaks := Need(t, "swaks")
	keyDir := t.TempDir()
	ed := dkimKeygen(t, keyDir, testDomain, "ed1", "ed25519")
	rs := dkimKeygen(t, keyDir, testDomain, "rsa1", "rsa")
	keys := []dkimKey{ed, rs}

	b := StartServer(t, ServerOptions{Domains: []string{"remote.example"}, IP: trustedB})
	b.AddUser(t, "bob@remote.example", "bob pw")
	b.AddUser(t, "carol@remote.example", "carol pw")
	conf := outConf{routes: []outRoute{{domain: "remote.example", host: b.MX}}}.toml()
	for _, k := range keys {
		conf += "\n[[dkim]]\ndomain = \"" + testDomain + "\"\nselector = \"" + k.selector + "\"\nkey = \"" + k.path + "\"\n"
	}
	a := StartServer(t, ServerOptions{TopTOML: trustedTOML, ExtraTOML: conf})

	// swaks as the web application's mailer: plain SMTP on mx, no
	// STARTTLS, no AUTH, from a trusted address.
	send := func(t *testing.T, source, to, tag string) peerRun {
		msg := []byte("From: App <app@" + testDomain + ">\r\nTo: <" + to + ">\r\nSubject: " + tag + "\r\n" +
			"Date: Wed, 02 Dec 2026 03:30:00 +0000\r\nMessage-ID: <" + tag + "@test.example>\r\n\r\nfrom the cron box\r\n")
		return runPeer(t, nil, swaks, "--server", a.MX, "--local-interface", source, "--helo", "cron.test.example",
			"--from", "app@"+testDomain, "--to", to, "--timeout", "20", "--data", swaksData(t, msg))
	}

	t.Run("trusted source relays, DKIM-signed", func(t *testing.T) {
		r := send(t, trustedIP, "bob@remote.example", "trusted-relay")
		if r.Err != nil {
			t.Fatalf("swaks from %s: %v\n%s", trustedIP, r.Err, r.Stdout)
		}
		got := b.WaitMessages(t, "bob@remote.example", 1)[0]
		res := dkimpyVerify(t, keys, got)
		if v, want := res[0].verdicts(), "test.example/ed1/ed25519-sha256:pass test.example/rsa1/rsa-sha256:pass"; v != want {
			t.Errorf("dkimpy on what B received: %s, want %s\n%s", v, want, got)
		}
		if !regexp.MustCompile(`(?m)msg=queued .*relay=trusted .*remote=` + regexp.QuoteMeta(trustedIP) + `:`).MatchString(a.Logs()) {
			t.Errorf("A's log has no queued line with relay=trusted from %s", trustedIP)
		}
		// Trust is not AUTH: the Received field says ESMTP, not ESMTPA.
		if !strings.Contains(string(got), "with ESMTP id") {
			t.Errorf("Received field of A not plain ESMTP:\n%s", got)
		}
	})

	t.Run("untrusted source: 550 5.7.1", func(t *testing.T) {
		r := send(t, untrustedIP, "carol@remote.example", "untrusted-relay")
		if r.Err == nil {
			t.Fatalf("swaks from %s relayed:\n%s", untrustedIP, r.Stdout)
		}
		if !regexp.MustCompile(`(?m)^<\*\* +550 5\.7\.1 Relaying denied`).MatchString(r.Stdout) {
			t.Errorf("swaks transcript has no 550 5.7.1 for RCPT:\n%s", r.Stdout)
		}
		if n := b.CountFiles(t, "carol@remote.example", "new"); n != 0 {
			t.Errorf("%d messages reached carol", n)
		}
	})

	t.Run("swaks exit status", func(t *testing.T) {
		// swaks exits 24 when every recipient was refused: the refusal was
		// a real RCPT reply, not a connection failure.
		r := send(t, untrustedIP, "carol@remote.example", "untrusted-again")
		var ee *exec.ExitError
		if !errors.As(r.Err, &ee) || ee.ExitCode() != 24 {
			t.Errorf("swaks: %v, want exit status 24\n%s", r.Err, r.Stdout)
		}
	})
}
