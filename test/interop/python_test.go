package interop

import (
	"encoding/json"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// pyReply is a reply as smtplib_client.py reports it.
type pyReply struct {
	Code int    `json:"code"`
	Text string `json:"text"`
}

// pyResult is the JSON smtplib_client.py prints.
type pyResult struct {
	Ehlo        pyReply            `json:"ehlo"`
	Features    []string           `json:"features"`
	MailPlain   *pyReply           `json:"mail_plain"`
	StartTLS    *pyReply           `json:"starttls"`
	EhloTLS     *pyReply           `json:"ehlo_tls"`
	FeaturesTLS []string           `json:"features_tls"`
	MailTLS     *pyReply           `json:"mail_tls"`
	Auth        *pyReply           `json:"auth"`
	Sent        bool               `json:"sent"`
	Refused     map[string]pyReply `json:"refused"`
	Error       *pyReply           `json:"error"`
	Noop        pyReply            `json:"noop"`
	Quit        pyReply            `json:"quit"`
	TLS         *struct {
		Version string   `json:"version"`
		SAN     []string `json:"san"`
	} `json:"tls"`
}

// runSmtplib runs testdata/smtplib_client.py against addr and decodes its
// JSON report.
func runSmtplib(t *testing.T, s *Server, mode, addr string, extra ...string) pyResult {
	t.Helper()
	python := NeedPython(t)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"testdata/smtplib_client.py", mode, host, port, s.CertPath}, extra...)
	cmd := exec.Command(python, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("smtplib_client.py %s: %v\nstdout: %s\nstderr: %s", mode, err, out, stderr.String())
	}
	var res pyResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	t.Logf("smtplib %s: %s", mode, out)
	return res
}

// checkTLS checks a TLS session smtplib reported: TLS 1.2 or 1.3 and a
// certificate for the server's hostname.
func checkTLS(t *testing.T, res pyResult) {
	t.Helper()
	if res.TLS == nil {
		t.Fatal("no TLS information reported")
	}
	if v := res.TLS.Version; v != "TLSv1.3" && v != "TLSv1.2" {
		t.Errorf("TLS version %q, want TLSv1.2 or TLSv1.3", v)
	}
	if !slices.Contains(res.TLS.SAN, testHostname) {
		t.Errorf("certificate names %v, want %s among them", res.TLS.SAN, testHostname)
	}
}

func TestPythonSmtplib(t *testing.T) {
	NeedPython(t)
	s := StartServer(t, ServerOptions{})
	s.AddUser(t, "user@test.example", "correct horse battery staple")
	for _, u := range []string{"tls", "sub1", "sub2"} {
		s.AddUser(t, u+"@test.example", "another correct horse")
	}

	t.Run("plain on mx", func(t *testing.T) {
		msg := testMessage("smtplib-plain")
		res := runSmtplib(t, s, "plain", s.MX, "--to", "postmaster@test.example",
			"--to", "user@test.example", "--msg", writeMessage(t, msg))
		if res.Ehlo.Code != 250 || !res.Sent || len(res.Refused) != 0 || res.Error != nil {
			t.Fatalf("transaction failed: %+v", res)
		}
		for _, f := range []string{"pipelining", "8bitmime", "size", "starttls", "enhancedstatuscodes"} {
			if !slices.Contains(res.Features, f) {
				t.Errorf("EHLO lacks %s: %v", f, res.Features)
			}
		}
		if res.Noop.Code != 250 || res.Quit.Code != 221 {
			t.Errorf("NOOP %v, QUIT %v", res.Noop, res.Quit)
		}
		for _, rcpt := range []string{"postmaster@test.example", "user@test.example"} {
			checkDelivered(t, s.WaitMessages(t, rcpt, 1)[0], msg, "a@b.example")
		}
	})

	t.Run("STARTTLS on mx", func(t *testing.T) {
		msg := testMessage("smtplib-starttls")
		res := runSmtplib(t, s, "starttls", s.MX, "--to", "tls@test.example",
			"--from", "tls@b.example", "--msg", writeMessage(t, msg))
		if res.StartTLS == nil || res.StartTLS.Code != 220 {
			t.Fatalf("STARTTLS: %+v", res.StartTLS)
		}
		checkTLS(t, res)
		if slices.Contains(res.FeaturesTLS, "starttls") {
			t.Errorf("STARTTLS still offered after TLS: %v", res.FeaturesTLS)
		}
		if !res.Sent || len(res.Refused) != 0 || res.Error != nil {
			t.Fatalf("transaction failed: %+v", res)
		}
		checkDelivered(t, s.WaitMessages(t, "tls@test.example", 1)[0], msg, "tls@b.example")
	})

	t.Run("submission needs STARTTLS and AUTH", func(t *testing.T) {
		res := runSmtplib(t, s, "submission", s.Submission)
		if res.MailPlain == nil || res.MailPlain.Code != 530 {
			t.Errorf("MAIL before STARTTLS on submission: %+v, want 530", res.MailPlain)
		}
		if res.StartTLS == nil || res.StartTLS.Code != 220 {
			t.Fatalf("STARTTLS: %+v", res.StartTLS)
		}
		checkTLS(t, res)
		if res.MailTLS == nil || res.MailTLS.Code != 530 {
			t.Errorf("MAIL without AUTH on submission: %+v, want 530", res.MailTLS)
		}
	})

	t.Run("SMTP_SSL on submissions", func(t *testing.T) {
		res := runSmtplib(t, s, "smtps", s.Submissions)
		checkTLS(t, res)
		if res.Ehlo.Code != 250 || res.Noop.Code != 250 || res.Quit.Code != 221 {
			t.Errorf("EHLO %v, NOOP %v, QUIT %v", res.Ehlo, res.Noop, res.Quit)
		}
		if slices.Contains(res.Features, "starttls") {
			t.Errorf("STARTTLS offered under implicit TLS: %v", res.Features)
		}
	})

	t.Run("AUTH then submit", func(t *testing.T) {
		for _, tc := range []struct {
			name, addr, rcpt string
			implicit         bool
		}{
			{"submission STARTTLS", s.Submission, "sub1@test.example", false},
			{"submissions implicit TLS", s.Submissions, "sub2@test.example", true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				msg := testMessage("smtplib-submit-" + strings.ReplaceAll(tc.name, " ", "-"))
				args := []string{"--user", "user@test.example", "--password", "correct horse battery staple",
					"--from", "user@test.example", "--to", tc.rcpt, "--msg", writeMessage(t, msg)}
				if tc.implicit {
					args = append(args, "--implicit")
				}
				res := runSmtplib(t, s, "submit", tc.addr, args...)
				checkTLS(t, res)
				if res.Auth == nil || res.Auth.Code != 235 {
					t.Fatalf("AUTH: %+v, want 235", res.Auth)
				}
				if !res.Sent || len(res.Refused) != 0 || res.Error != nil {
					t.Fatalf("transaction failed: %+v", res)
				}
				checkDelivered(t, s.WaitMessages(t, tc.rcpt, 1)[0], msg, "user@test.example")
			})
		}
	})

	t.Run("AUTH with a wrong password", func(t *testing.T) {
		res := runSmtplib(t, s, "submit", s.Submission, "--user", "user@test.example",
			"--password", "wrong horse", "--msg", writeMessage(t, testMessage("unused")))
		if res.Auth == nil || res.Auth.Code != 535 {
			t.Errorf("AUTH with a wrong password: %+v, want 535", res.Auth)
		}
		if res.Sent {
			t.Errorf("message sent without authentication")
		}
	})
}
