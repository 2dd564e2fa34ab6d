package interop

// SRS end to end: a message from an outside sender to a local alias that
// forwards to another domain leaves with an SRS0 sender in our domain,
// which SPF (pyspf, python3-spf, evaluating the receiving side's view
// against a loopback DNS zone) passes for our IP where the original
// sender fails; the bytes (a DKIM-Signature among them) arrive unchanged;
// a bounce to the SRS address comes back to the original sender; forged
// and expired SRS addresses are refused with 550 5.1.1.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/smtp"
	"smtpkit/internal/srs"
	"smtpkit/internal/userdb"
)

// Addresses of this test (the SRS range, 127.14.2.0/24).
const (
	srsForwardPeerIP = "127.14.2.10" // remote.example's MX: the forwarding destination
	srsSenderPeerIP  = "127.14.2.11" // far.example's MX: where bounces go back to
	srsSenderIP      = "127.14.2.20" // far.example's sending server
	srsSender        = "sender@far.example"
)

// srsMsg is one message testdata/srs_peer.py received.
type srsMsg struct {
	From string            `json:"from"`
	Rcpt []string          `json:"rcpt"`
	Peer string            `json:"peer"`
	SPF  map[string]string `json:"spf"`
	Data string            `json:"data"`
}

type srsPeer struct {
	addr string
	mu   sync.Mutex
	msgs []srsMsg
}

func (p *srsPeer) messages() []srsMsg {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]srsMsg(nil), p.msgs...)
}

// startSRSPeer runs srs_peer.py on host with DNS from dnsAddr; it
// evaluates SPF for each MAIL FROM and for the check addresses.
func startSRSPeer(t *testing.T, host, dnsAddr string, check ...string) *srsPeer {
	t.Helper()
	python := NeedPython(t)
	if err := exec.Command(python, "-c", "import aiosmtpd, spf").Run(); err != nil {
		missing(t, "python3-aiosmtpd and python3-spf", err)
	}
	args := []string{"testdata/srs_peer.py", "--host", host, "--dns", dnsAddr}
	for _, c := range check {
		args = append(args, "--check", c)
	}
	cmd := exec.Command(python, args...)
	p := &srsPeer{}
	port := startScriptPeer(t, "srs_peer "+host, cmd, func(line []byte) {
		var m srsMsg
		if json.Unmarshal(line, &m) == nil {
			p.mu.Lock()
			p.msgs = append(p.msgs, m)
			p.mu.Unlock()
		}
	})
	p.addr = host + ":" + port
	return p
}

func TestSRSForwarding(t *testing.T) {
	swaks := Need(t, "swaks")
	// Our outbound connections to 127.14.2.x leave from 127.0.0.1.
	dnsAddr := dnstest.NewServer(t,
		testHostname+`. TXT "v=spf1 ip4:127.0.0.1 -all"`,
		`far.example. TXT "v=spf1 ip4:`+srsSenderIP+` -all"`,
	)
	fwdPeer := startSRSPeer(t, srsForwardPeerIP, dnsAddr, srsSender)
	senderPeer := startSRSPeer(t, srsSenderPeerIP, dnsAddr)
	a := StartServer(t, ServerOptions{ExtraTOML: outConf{resolver: dnsAddr, routes: []outRoute{
		{domain: "remote.example", host: fwdPeer.addr},
		{domain: "far.example", host: senderPeer.addr},
	}}.toml()})
	a.AddUser(t, "alice@"+testDomain, "alice srs pw")
	addAlias(t, a, "fwd@"+testDomain, "carol@remote.example")

	// 1. Forwarded: the original sender's server hands it to our mx.
	msg := []byte("DKIM-Signature: v=1; a=rsa-sha256; d=far.example; s=sel; h=from:subject; bh=x; b=y\r\n" +
		string(testMessage("srs-forward")))
	args := append(swaksArgs(a, a.MX, srsSender, "fwd@"+testDomain), "--local-interface", srsSenderIP, "--data", swaksData(t, msg))
	mustRun(t, nil, swaks, args...)
	eventually(t, "the forwarded copy at remote.example", func() bool { return len(fwdPeer.messages()) == 1 })
	got := fwdPeer.messages()[0]
	srsFrom, err := smtp.ParseAddress(got.From)
	if err != nil || !strings.HasPrefix(srsFrom.Local, "SRS0=") || !strings.EqualFold(srsFrom.Domain, testHostname) ||
		!strings.HasSuffix(srsFrom.Local, "=far.example=sender") {
		t.Fatalf("forwarded MAIL FROM %q, want SRS0=...=far.example=sender@%s", got.From, testHostname)
	}
	if len(got.Rcpt) != 1 || got.Rcpt[0] != "carol@remote.example" {
		t.Errorf("RCPT %v", got.Rcpt)
	}
	if got.SPF[got.From] != "pass" || got.SPF[srsSender] != "fail" {
		t.Errorf("pyspf from %s: SRS sender %q, original sender %q; want pass and fail", got.Peer, got.SPF[got.From], got.SPF[srsSender])
	}
	if body := StripTrace([]byte(got.Data)); string(body) != string(msg) {
		t.Errorf("the forwarded bytes changed:\n got %q\nwant %q", body, msg)
	}

	// 2. remote.example bounces it: the DSN to the SRS address goes back
	// to the original sender, from <> still.
	dsn := []byte("From: MAILER-DAEMON@remote.example\r\nTo: " + got.From + "\r\nSubject: Undelivered Mail\r\n\r\ncarol is gone\r\n")
	args = append(swaksArgs(a, a.MX, "<>", got.From), "--local-interface", srsForwardPeerIP, "--data", swaksData(t, dsn))
	mustRun(t, nil, swaks, args...)
	eventually(t, "the bounce at far.example", func() bool { return len(senderPeer.messages()) == 1 })
	back := senderPeer.messages()[0]
	if (back.From != "" && back.From != "<>") || len(back.Rcpt) != 1 || back.Rcpt[0] != srsSender {
		t.Errorf("bounce went out as MAIL FROM %q RCPT %v, want <> and %s", back.From, back.Rcpt, srsSender)
	}
	// Case-folded on the way back (some relays lower-case local parts).
	lower := strings.ToLower(srsFrom.Local) + "@" + testHostname
	args = append(swaksArgs(a, a.MX, "<>", lower), "--local-interface", srsForwardPeerIP, "--data", swaksData(t, dsn))
	mustRun(t, nil, swaks, args...)
	eventually(t, "the second bounce at far.example", func() bool { return len(senderPeer.messages()) == 2 })

	// 3. Forged and expired SRS addresses are refused at RCPT.
	secret, err := userdb.LoadSecret(filepath.Join(a.DataDir, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	old, err := srs.New(srs.Options{Secret: secret, Domain: testHostname,
		Now: func() time.Time { return time.Now().Add(-30 * 24 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := old.Forward(smtp.Address{Local: "sender", Domain: "far.example"})
	parsed, _ := srs.Parse(srsFrom.Local)
	forgedHash := "AAAAAA"
	if strings.EqualFold(parsed.Hash, forgedHash) {
		forgedHash = "BBBBBB"
	}
	forged := "SRS0=" + forgedHash + "=" + parsed.Stamp + "=far.example=sender@" + testHostname
	for _, tc := range []struct{ rcpt, text string }{
		{forged, "does not verify"},
		{"SRS0=" + parsed.Hash + "=" + parsed.Stamp + "=far.example=victim@" + testHostname, "does not verify"},
		{expired.String(), "expired"},
	} {
		args := append(swaksArgs(a, a.MX, "<>", tc.rcpt), "--local-interface", srsForwardPeerIP, "--data", swaksData(t, dsn))
		r := runPeer(t, nil, swaks, args...)
		if r.Err == nil || !strings.Contains(r.Stdout, "* 550 5.1.1 ") || !strings.Contains(r.Stdout, tc.text) {
			t.Errorf("RCPT TO:<%s>: want 550 5.1.1 ... %s; swaks (%v):\n%s", tc.rcpt, tc.text, r.Err, r.Stdout)
		}
	}
	eventually(t, "A's queue to empty", func() bool { return queued(t, a) == 0 })
	if n := len(senderPeer.messages()); n != 2 {
		t.Errorf("%d messages at far.example, want the 2 bounces only", n)
	}
	if _, err := os.Stat(filepath.Join(a.DataDir, "srs")); err == nil {
		t.Error("an SRS key file exists; the key must come from <data_dir>/secret")
	}
}
