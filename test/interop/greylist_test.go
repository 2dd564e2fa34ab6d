package interop

// Greylisting end to end ([greylist], issue #15): swaks as an outside
// sender's server on the mx listener, from addresses in 127.15.4.0/24
// (the greylist range); dkimpy-signed mail with [verify] on. The server
// runs with delay = "2s"; every wait is a bounded poll on the clock.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/dns/dnstest"
)

// Addresses of the greylist tests.
const (
	greyClientA  = "127.15.4.10" // the sender's first host
	greyClientA2 = "127.15.4.11" // another host of its /24
	greyClientA3 = "127.15.4.12" // and a third
	greySubmitIP = "127.15.4.20" // an authenticated submitter
	greyTrusted  = "127.15.4.70" // in trusted_networks
	greyDKIMIP   = "127.15.4.30" // the [verify] test's sender
	greyDNSWLIP  = "127.15.4.40" // on the allow list wl.test

	greyPostfixListen = "127.15.4.50" // the sending Postfix's smtpd
	greyPostfixIP     = "127.15.4.60" // and its smtp client
	greyDNSHost       = "127.15.4.53" // the [verify] test's DNS server
	greyDelay         = 2 * time.Second
)

var (
	greylisted451 = regexp.MustCompile(`(?m)^<[-~*]\*? +451 4\.7\.1 Greylisted, please try again later`)
	greyQueued    = regexp.MustCompile(`(?m)^<[-~]  250 2\.0\.0 `) // the reply to the data
)

// greySwaks sends one message from ip on addr without TLS (the greylist
// does not care, and it keeps each attempt short) and returns swaks' run.
func greySwaks(t *testing.T, swaks, addr, ip, from, to string) peerRun {
	t.Helper()
	return runPeer(t, nil, swaks, "--server", addr, "--local-interface", ip, "--from", from, "--to", to,
		"--helo", "mail.sender.example", "--timeout", "20", "--header", "Subject: greylist "+from+" "+to)
}

// greyAccepted reports whether swaks' message got its 250 after the data;
// greyDeferred whether a 451 4.7.1 from the greylist refused it.
func greyAccepted(r peerRun) bool { return r.Err == nil && greyQueued.MatchString(r.Stdout) }
func greyDeferred(r peerRun) bool { return r.Err != nil && greylisted451.MatchString(r.Stdout) }

// waitPast waits, by polling the clock, until t0+d has passed.
func waitPast(t0 time.Time, d time.Duration) {
	for time.Since(t0) <= d {
		time.Sleep(pollStep) // a clock condition, bounded by d
	}
}

// TestGreylist: with verification off the greylist answers at RCPT.
//   - a new triplet: 451 4.7.1; a retry before the delay: 451 again; a
//     retry after it (polled): 250, stored; from another host of the same
//     /24 at once 250;
//   - a second recipient is a new triplet: 451;
//   - an authenticated submission from the same range, and a client in
//     trusted_networks: never greylisted;
//   - the state survives a restart: the known triplet passes at once and
//     the waiting one passes after its delay (a forgotten one would start
//     over);
//   - the metrics count the deferrals and passes, the log names them.
func TestGreylist(t *testing.T) {
	swaks := Need(t, "swaks")
	curl := Need(t, "curl")
	metricsAddr := freeAddrOn(t, "127.0.0.1")
	s := StartServer(t, ServerOptions{TopTOML: `trusted_networks = ["` + greyTrusted + `/32"]`,
		ExtraTOML: fmt.Sprintf("[metrics]\naddress = %q\n\n[greylist]\nenabled = true\ndelay = %q\n", metricsAddr, greyDelay.String())})
	alice, bob := "alice@"+testDomain, "bob@"+testDomain
	s.AddUser(t, alice, "alice greylist pw")
	s.AddUser(t, bob, "bob greylist pw")
	sender := "joe@sender.example"

	t0 := time.Now()
	if r := greySwaks(t, swaks, s.MX, greyClientA, sender, alice); !greyDeferred(r) {
		t.Fatalf("first attempt not greylisted:\n%s", r.Stdout)
	}
	r := greySwaks(t, swaks, s.MX, greyClientA, sender, alice)
	switch {
	case time.Since(t0) < greyDelay && !greyDeferred(r):
		t.Fatalf("retry before the delay not greylisted:\n%s", r.Stdout)
	case time.Since(t0) >= greyDelay:
		t.Logf("the retry came %v after the first attempt, past the delay: not checked", time.Since(t0))
	}
	// Retry as an MTA would until it passes (bounded), never before the delay.
	for attempt := 1; ; attempt++ {
		r = greySwaks(t, swaks, s.MX, greyClientA, sender, alice)
		if greyAccepted(r) {
			// The server saw the first attempt after t0 and this one
			// before now: a pass means now-t0 is past the delay.
			if time.Since(t0) < greyDelay {
				t.Errorf("passed %v after the first attempt, before the delay %v", time.Since(t0), greyDelay)
			}
			t.Logf("passed on retry %d, %v after the first attempt", attempt, time.Since(t0).Round(time.Millisecond))
			break
		}
		if !greyDeferred(r) {
			t.Fatalf("retry %d neither greylisted nor accepted:\n%s\n%s", attempt, r.Stdout, r.Stderr)
		}
		if time.Since(t0) > greyDelay+pollTimeout {
			t.Fatalf("still greylisted %v after the first attempt", time.Since(t0))
		}
		time.Sleep(greyDelay / 4) // the client's retry interval
	}
	s.WaitMessages(t, alice, 1)
	if r := greySwaks(t, swaks, s.MX, greyClientA2, "Joe@Sender.Example", alice); !greyAccepted(r) {
		t.Errorf("the same /24 and sender (another case) still greylisted:\n%s", r.Stdout)
	}
	tBob := time.Now()
	if r := greySwaks(t, swaks, s.MX, greyClientA, sender, bob); !greyDeferred(r) {
		t.Errorf("a second recipient is a new triplet, want 451:\n%s", r.Stdout)
	}

	// An authenticated submission is never greylisted.
	sub := runPeer(t, nil, swaks, append(swaksArgs(s, s.Submission, alice, bob), "--local-interface", greySubmitIP,
		"--auth", "PLAIN", "--auth-user", alice, "--auth-password", "alice greylist pw")...)
	if !greyAccepted(sub) {
		t.Errorf("authenticated submission not accepted at once:\n%s\n%s", sub.Stdout, sub.Stderr)
	}
	s.WaitMessages(t, bob, 1)
	// Nor is a client in trusted_networks.
	if r := greySwaks(t, swaks, s.MX, greyTrusted, "cron@app.sender.example", bob); !greyAccepted(r) {
		t.Errorf("a trusted client was greylisted:\n%s", r.Stdout)
	}
	s.WaitMessages(t, bob, 2)

	get := func(path string) (int, string) {
		t.Helper()
		r := mustRun(t, nil, curl, "-sS", "--max-time", "10", "-w", "\n%{http_code}", "http://"+metricsAddr+path)
		body, code, _ := cutLast(r.Stdout, "\n")
		n, err := strconv.Atoi(code)
		if err != nil {
			t.Fatalf("curl %s: no status code in %q", path, r.Stdout)
		}
		return n, body
	}
	m := scrape(t, get)
	for series, min := range map[string]float64{
		`smtpkit_greylist_deferrals_total{reason="new"}`:                               2, // alice, bob
		`smtpkit_greylist_passes_total{reason="retried"}`:                              1,
		`smtpkit_greylist_passes_total{reason="known"}`:                                1,
		`smtpkit_recipients_refused_total{listener="` + s.MX + `",reason="temporary"}`: 2,
	} {
		if m[series] < min {
			t.Errorf("%s = %v, want at least %v", series, m[series], min)
		}
	}
	if got := m["smtpkit_greylist_entries"]; got != 2 { // sender → alice, sender → bob
		t.Errorf("smtpkit_greylist_entries = %v, want 2", got)
	}
	if !regexp.MustCompile(`msg=greylisted .*remote=` + regexp.QuoteMeta(greyClientA) + ` from=` + sender + ` rcpt=` + bob + ` reason=new`).MatchString(s.Logs()) {
		t.Errorf("no greylisted log line for bob:\n%s", s.Logs())
	}

	// A restart keeps both triplets.
	s.Restart(t)
	if _, err := os.Stat(filepath.Join(s.DataDir, "greylist", "greylist.json")); err != nil {
		t.Errorf("no state file: %v", err)
	}
	if r := greySwaks(t, swaks, s.MX, greyClientA3, sender, alice); !greyAccepted(r) {
		t.Errorf("the known triplet greylisted again after the restart:\n%s", r.Stdout)
	}
	// The waiting triplet passes once its delay is over (retried until
	// then, bounded); had the restart forgotten it, it would have started
	// over: a reason=new deferral after the restart.
	restarted := len(s.Logs())
	waitPast(tBob, greyDelay)
	waitUntil(t, pollTimeout, "the waiting triplet's retry after the restart accepted", func() bool {
		return greyAccepted(greySwaks(t, swaks, s.MX, greyClientA, sender, bob))
	})
	if after := s.Logs()[restarted:]; strings.Contains(after, "reason=new") {
		t.Errorf("the waiting triplet started over after the restart:\n%s", after)
	}
	s.WaitMessages(t, alice, 3)
	s.WaitMessages(t, bob, 3)
}

// TestGreylistDKIMAndDNSWL: with [verify] on the decision waits for the
// end of DATA: a message dkimpy signed for its From domain passes at
// once; the same sender's unsigned message, and one signed by a third
// party, get 451 4.7.1 after the data and are not stored. A client on a
// DNS allow list (a [[dnsbl]] zone of negative weight) is not greylisted.
func TestGreylistDKIMAndDNSWL(t *testing.T) {
	swaks := Need(t, "swaks")
	keys := newSignKeys(t, "signed.example")
	other := newSignKeys(t, "esp.example")
	records := []string{
		`signed.example. TXT "v=spf1 -all"`,
		`_dmarc.signed.example. TXT "v=DMARC1; p=none"`,
		`40.4.15.127.wl.test. A 127.0.10.1`, // greyDNSWLIP
	}
	for _, k := range append(keys, other...) {
		records = append(records, k.record)
	}
	dns := dnstest.Start(t, dnstest.Zone{Host: greyDNSHost, Records: records})
	s := StartServer(t, ServerOptions{ExtraTOML: outConf{resolver: dns.Addr}.toml() +
		"\n[verify]\nenabled = true\n\n[greylist]\nenabled = true\ndelay = \"1h\"\n\n[[dnsbl]]\nzone = \"wl.test\"\nweight = -1\n"})
	rcpt := "alice@" + testDomain
	s.AddUser(t, rcpt, "alice dkim greylist pw")
	job := func(subject string, sign []signKey) sendJob {
		from := "a@signed.example"
		return sendJob{Source: greyDKIMIP, Helo: "mail.signed.example", From: from, Rcpt: rcpt,
			Msg: verifyMessage(from, subject, ""), Sign: sign}
	}
	res := dkimpySend(t, s, job("aligned", keys), job("unsigned", nil), job("third party", other), job("aligned again", keys[:1]))
	for i, want := range []int{250, 451, 451, 250} {
		if res[i].Code != want {
			t.Errorf("message %d: %d %s, want %d", i, res[i].Code, res[i].Reply, want)
		}
	}
	if !strings.HasPrefix(res[1].Reply, "4.7.1 Greylisted") {
		t.Errorf("the unsigned message's reply %q, want 4.7.1 Greylisted", res[1].Reply)
	}
	r := greySwaks(t, swaks, s.MX, greyDNSWLIP, "x@unsigned.example", rcpt)
	if !greyAccepted(r) {
		t.Errorf("an allow-listed client was greylisted:\n%s", r.Stdout)
	}
	stored := storedIn(t, filepath.Join(s.Maildir(rcpt), "new"))
	if len(stored) != 3 || stored["aligned"] == "" || stored["aligned again"] == "" {
		t.Errorf("stored %d messages, want the two aligned ones and the allow-listed client's", len(stored))
	}
	if !strings.Contains(s.Logs(), "stage=data") {
		t.Errorf("no greylisted line at the end of DATA:\n%s", s.Logs())
	}
}

// greyPostfixConfig fills testdata/postfix_greylist.
type greyPostfixConfig struct {
	Addr, ListenIP, Bind, NextHop, NextPort, Conf, Queue, Data string
}

// TestGreylistPostfixRetries: a private Postfix as the sending MTA
// relays a message to smtpkit's mx from greyPostfixIP; the greylist
// defers its first attempt with 451 4.7.1, Postfix logs it deferred and
// keeps it queued; its retry after the 2s delay (prompted by postqueue -f
// rather than waiting for Postfix's backoff) delivers it.
func TestGreylistPostfixRetries(t *testing.T) {
	swaks := Need(t, "swaks")
	postfix := Need(t, "postfix")
	if os.Geteuid() != 0 {
		missing(t, "root (for a private Postfix instance)", errors.New("not root"))
	}
	s := StartServer(t, ServerOptions{ExtraTOML: fmt.Sprintf("[greylist]\nenabled = true\ndelay = %q\n", greyDelay.String())})
	rcpt := "alice@" + testDomain
	s.AddUser(t, rcpt, "alice postfix greylist pw")

	dir, err := os.MkdirTemp("", "smtpkit-postfix-greylist-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // the postfix user walks into it
	host, port, _ := net.SplitHostPort(s.MX)
	c := greyPostfixConfig{Addr: freeAddrOn(t, greyPostfixListen), ListenIP: greyPostfixListen, Bind: greyPostfixIP,
		NextHop: host, NextPort: port, Conf: filepath.Join(dir, "conf"), Queue: filepath.Join(dir, "queue"), Data: filepath.Join(dir, "data")}
	renderPostfixDir(t, "postfix_greylist", c.Conf, c.Queue, c.Data, c)
	logs := runPostfix(t, postfix, c.Conf, c.Addr)

	const marker = "greylisted-through-postfix"
	mustRun(t, nil, swaks, swaksFrom("127.15.4.51", "--server", c.Addr, "--to", rcpt, "--from", "joe@sender.example",
		"--helo", "client.sender.example", "--header", "Subject: "+marker, "--timeout", "20")...)
	t0 := time.Now()
	deferral := regexp.MustCompile(`status=deferred \(host [0-9.]+\[[0-9.]+\]:?\d* said: 451 4\.7\.1 Greylisted, please try again later`)
	waitUntil(t, pollTimeout, "Postfix's first attempt deferred", func() bool { return deferral.MatchString(logs.String()) })
	// Postfix retries on its own after its backoff; postqueue -f (a flush
	// of the deferred queue) makes that prompt once the delay is over.
	waitPast(t0, greyDelay)
	postqueue := Need(t, "postqueue")
	flushed := time.Time{}
	waitUntil(t, pollTimeout, "the message through Postfix", func() bool {
		if time.Since(flushed) > time.Second {
			runPeer(t, nil, postqueue, "-c", c.Conf, "-f")
			flushed = time.Now()
		}
		return s.CountFiles(t, rcpt, "new") == 1
	})
	// The file is in new/ before Postfix has read our 250 and logged it.
	sent := regexp.MustCompile(`status=sent \(250 2\.0\.0 `)
	waitUntil(t, pollTimeout, "Postfix's log of the delivery", func() bool { return sent.MatchString(logs.String()) })
	if !regexp.MustCompile(`msg=greylisted .*remote=` + regexp.QuoteMeta(greyPostfixIP) + ` from=joe@sender.example rcpt=` + rcpt + ` reason=new`).MatchString(s.Logs()) {
		t.Errorf("smtpkit did not greylist Postfix's first attempt:\n%s", s.Logs())
	}
	msg := waitMessageWith(t, s, rcpt, marker)
	if !bytes.Contains(msg, []byte("Subject: "+marker)) {
		t.Errorf("delivered message lacks its subject:\n%s", msg)
	}
}

// TestGreylistIPv6: over IPv6 loopback the triplet is the client's /64
// (::/64 for ::1): 451 4.7.1 first, 250 on a retry after the delay.
func TestGreylistIPv6(t *testing.T) {
	swaks := Need(t, "swaks")
	s := StartServer(t, ServerOptions{IP: "::1", ExtraTOML: fmt.Sprintf("[greylist]\nenabled = true\ndelay = %q\n", greyDelay.String())})
	rcpt := "alice@" + testDomain
	s.AddUser(t, rcpt, "alice ipv6 greylist pw")
	t0 := time.Now()
	if r := greySwaks(t, swaks, s.MX, "::1", "joe@sender.example", rcpt); !greyDeferred(r) {
		t.Fatalf("first attempt over IPv6 not greylisted:\n%s\n%s", r.Stdout, r.Stderr)
	}
	waitPast(t0, greyDelay)
	waitUntil(t, pollTimeout, "a retry over IPv6 accepted", func() bool {
		return greyAccepted(greySwaks(t, swaks, s.MX, "::1", "joe@sender.example", rcpt))
	})
	s.WaitMessages(t, rcpt, 1)
	if !strings.Contains(s.Logs(), "msg=greylisted conn=") || !strings.Contains(s.Logs(), "remote=::1 from=joe@sender.example") {
		t.Errorf("no greylisted line for ::1:\n%s", s.Logs())
	}
}
