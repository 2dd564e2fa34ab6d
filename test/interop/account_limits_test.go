package interop

// Per-account sending limits end to end (issue #15), on 127.15.1.30: an
// account over messages_per_hour gets 451 4.7.1 at MAIL from swaks, one
// over recipients_per_hour 451 4.7.1 at RCPT from Python's smtplib (the
// recipients within the limit still get the message); the counts survive
// a restart; the log names the account and the limit and
// smtpkit_account_limited_total counts each refusal.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

const limitsIP = "127.15.1.30"

func TestAccountLimits(t *testing.T) {
	swaks := Need(t, "swaks")
	metricsAddr := freeAddrOn(t, limitsIP)
	s := StartServer(t, ServerOptions{IP: limitsIP, ExtraTOML: fmt.Sprintf(
		"[account_limits]\nmessages_per_hour = 2\nrecipients_per_hour = 3\n\n[metrics]\naddress = %q", metricsAddr)})
	const (
		alice, alicePW = "alice@test.example", "alice limits pw"
		carol, carolPW = "carol@test.example", "carol limits pw"
	)
	s.AddUser(t, alice, alicePW)
	s.AddUser(t, carol, carolPW)
	for _, u := range []string{"r1", "r2", "r3", "r4"} {
		s.AddUser(t, u+"@test.example", u+" pw")
	}

	// swaksSubmit sends one message as alice on the submission port
	// (STARTTLS, AUTH PLAIN).
	swaksSubmit := func(t *testing.T, tag string) peerRun {
		args := append(swaksArgs(s, s.Submission, alice, "r1@test.example"), "--auth", "PLAIN",
			"--auth-user", alice, "--auth-password", alicePW, "--data", swaksData(t, testMessage(tag)))
		return runPeer(t, nil, swaks, args...)
	}
	mailRefused := regexp.MustCompile(`(?m)^<~?\*+ +451 4\.7\.1 Sending limit reached for this account \(2 messages per hour\), try again later`)

	t.Run("messages_per_hour: swaks gets 451 4.7.1 at MAIL", func(t *testing.T) {
		for i := range 2 {
			if r := swaksSubmit(t, fmt.Sprintf("limit-%d", i)); r.Err != nil {
				t.Fatalf("message %d within the limit: %v\n%s", i+1, r.Err, r.Stdout)
			}
		}
		r := swaksSubmit(t, "limit-over")
		if r.Err == nil || !mailRefused.MatchString(r.Stdout) {
			t.Fatalf("third message: %v, want 451 4.7.1 at MAIL:\n%s", r.Err, r.Stdout)
		}
		if n := len(s.WaitMessages(t, "r1@test.example", 2)); n != 2 {
			t.Errorf("r1 has %d messages, want 2", n)
		}
	})

	t.Run("recipients_per_hour: smtplib gets 451 4.7.1 at the 4th RCPT", func(t *testing.T) {
		args := []string{"--user", carol, "--password", carolPW, "--from", carol, "--msg", writeMessage(t, testMessage("limit-rcpts"))}
		for _, u := range []string{"r1", "r2", "r3", "r4"} {
			args = append(args, "--to", u+"@test.example")
		}
		res := runSmtplib(t, s, "submit", s.Submission, args...)
		if !res.Sent || len(res.Refused) != 1 {
			t.Fatalf("sent %v, refused %+v (error %+v): want r4 alone refused", res.Sent, res.Refused, res.Error)
		}
		got := res.Refused["r4@test.example"]
		if got.Code != 451 || got.Text != "4.7.1 Sending limit reached for this account (3 distinct recipients per hour), try again later" {
			t.Errorf("r4 refused with %+v, want 451 4.7.1 naming the limit", got)
		}
		s.WaitMessages(t, "r3@test.example", 1)
		if n := s.CountFiles(t, "r4@test.example", "new"); n != 0 {
			t.Errorf("r4 got %d messages", n)
		}
		// The recipients carol has already written to are not new.
		res = runSmtplib(t, s, "submit", s.Submission, "--user", carol, "--password", carolPW, "--from", carol,
			"--to", "r2@test.example", "--msg", writeMessage(t, testMessage("limit-again")))
		if !res.Sent || len(res.Refused) != 0 {
			t.Errorf("to a recipient counted already: sent %v refused %+v error %+v", res.Sent, res.Refused, res.Error)
		}
	})

	t.Run("the counts survive a restart", func(t *testing.T) {
		s.Restart(t)
		if r := swaksSubmit(t, "limit-after-restart"); r.Err == nil || !mailRefused.MatchString(r.Stdout) {
			t.Fatalf("after a restart: %v, want 451 4.7.1 at MAIL:\n%s", r.Err, r.Stdout)
		}
	})

	t.Run("logged and counted", func(t *testing.T) {
		logs := s.Logs()
		for _, want := range []string{
			`level=WARN msg="account over its sending limit" conn=`,
			`account=alice@test.example limit=messages_per_hour max=2`,
			`account=carol@test.example limit=recipients_per_hour max=3 rcpt=r4@test.example`,
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("log lacks %q", want)
			}
		}
		// The restart began the counters again: one refusal since.
		body := httpGet(t, "http://"+metricsAddr+"/metrics")
		if want := `smtpkit_account_limited_total{limit="messages_per_hour"} 1`; !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(body, "account_limited"))
		}
	})

	t.Run("SIGHUP applies new limits, the counts kept", func(t *testing.T) {
		cfg, err := os.ReadFile(s.ConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		raised := strings.Replace(string(cfg), "messages_per_hour = 2\n", "messages_per_hour = 3\n", 1)
		if err := os.WriteFile(s.ConfigPath, []byte(raised), 0o600); err != nil {
			t.Fatal(err)
		}
		s.hup(t)
		waitLog(t, s, "configuration reloaded", 1)
		if strings.Contains(s.Logs(), "account_limits") && strings.Contains(s.Logs(), "needs a restart") {
			t.Errorf("the reload says account_limits needs a restart")
		}
		if r := swaksSubmit(t, "limit-raised"); r.Err != nil {
			t.Fatalf("after raising the limit to 3: %v\n%s", r.Err, r.Stdout)
		}
		r := swaksSubmit(t, "limit-raised-over")
		if r.Err == nil || !strings.Contains(r.Stdout, "451 4.7.1 Sending limit reached for this account (3 messages per hour)") {
			t.Fatalf("a 4th message within the hour: %v, want 451 4.7.1 naming the new limit:\n%s", r.Err, r.Stdout)
		}
	})
}

// httpGet fetches url, bounded by peerTimeout.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: peerTimeout}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d, %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// grepLines is the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
