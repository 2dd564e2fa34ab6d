package interop

// OpenDMARC (Debian's opendmarc milter) as the oracle for DMARC alignment
// (RFC 7489 §3.1, §6.6): for each row of a table of From/MAIL FROM/DKIM
// combinations and DMARC records, smtpkit's verifier (internal/authres,
// in-process) checks the message and writes its Authentication-Results
// field; the message, with that field, goes through a private Postfix
// smtpd whose milter is OpenDMARC, which trusts our SPF and DKIM results
// (TrustedAuthservIDs) and adds its own dmarc= result. Both must agree on
// pass/fail/none. The DMARC records come from a dnstest server on
// 127.14.6.53:53, which OpenDMARC (libresolv, no port option) reaches
// through a private /etc/resolv.conf bind-mounted in its own mount
// namespace. Addresses: 127.14.6.0/24.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	msgauthdkim "github.com/emersion/go-msgauth/dkim"

	"smtpkit/internal/authres"
	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
	smtpaddr "smtpkit/internal/smtp"
)

// Addresses of this test (the oracle range, 127.14.6.0/24).
const (
	oracleMilterHost  = "127.14.6.1"  // OpenDMARC's milter socket
	oraclePostfixHost = "127.14.6.2"  // Postfix smtpd
	oracleClient      = "127.14.6.3"  // the test's SMTP client
	oracleDNS         = "127.14.6.53" // dnstest, port 53
	oracleSenderIP    = "127.14.6.10" // the sending server authres is told about (in the SPF records)
	oracleOurID       = "mx.smtpkit.example"
	oracleID          = "oracle.opendmarc.example"
	oracleRcpt        = "rcpt@oracle.example"
)

// oracleRow is one message of the table.
type oracleRow struct {
	name     string
	from     string // From: domain
	mailFrom string // MAIL FROM address
	dkim     string // d= of our DKIM signature ("" none)
	want     string // dmarc= result both must give (RFC 7489)
	// opendmarc, when set, is OpenDMARC 1.4.2's different result for a
	// row where it departs from RFC 7489 (the row says why).
	opendmarc string
}

func TestDMARCOracle(t *testing.T) {
	if os.Geteuid() != 0 {
		missing(t, "root (a private Postfix and a mount namespace for OpenDMARC)", errors.New("not root"))
	}
	Need(t, "opendmarc")
	Need(t, "unshare")

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dkimRecord := fmt.Sprintf(`"v=DKIM1; k=ed25519; p=%s"`, base64.StdEncoding.EncodeToString(pub))
	spf := `"v=spf1 ip4:` + oracleSenderIP + ` -all"`
	// Org domains under .com so that both public suffix lists (Go's
	// x/net/publicsuffix, OpenDMARC's Debian file) agree on them.
	records := []string{
		"_dmarc.spfonly-example.com. TXT \"v=DMARC1; p=none\"",
		"_dmarc.dkimonly-example.com. TXT \"v=DMARC1; p=quarantine\"",
		"_dmarc.orgrelaxed-example.com. TXT \"v=DMARC1; p=reject\"",
		"_dmarc.orgstrict-example.com. TXT \"v=DMARC1; p=none; adkim=s\"",
		"_dmarc.spfstrict-example.com. TXT \"v=DMARC1; p=none; aspf=s\"",
		"_dmarc.reject-example.com. TXT \"v=DMARC1; p=reject\"",
		"_dmarc.exact-example.com. TXT \"v=DMARC1; p=reject; adkim=s; aspf=s\"",
	}
	for _, d := range []string{"mail.spfonly-example.com", "other-example.net", "mail.spfstrict-example.com", "spfstrict-example.com", "reject-example.com", "exact-example.com", "nodmarc-example.com"} {
		records = append(records, d+". TXT "+spf)
	}
	rows := []oracleRow{
		{name: "aligned SPF only, relaxed", from: "spfonly-example.com", mailFrom: "bounce@mail.spfonly-example.com", want: "pass"},
		{name: "aligned DKIM only", from: "dkimonly-example.com", mailFrom: "bounce@other-example.net", dkim: "dkimonly-example.com", want: "pass"},
		{name: "subdomain From, org record, relaxed", from: "news.orgrelaxed-example.com", mailFrom: "bounce@other-example.net", dkim: "orgrelaxed-example.com", want: "pass"},
		{name: "subdomain From, org record, adkim=s", from: "news.orgstrict-example.com", mailFrom: "bounce@other-example.net", dkim: "orgstrict-example.com", want: "fail"},
		{name: "strict SPF, From on a subdomain", from: "news.spfstrict-example.com", mailFrom: "bounce@spfstrict-example.com", want: "fail"},
		// RFC 7489 §3.1.2: strict SPF alignment needs identical domains.
		// OpenDMARC's opendmarc_policy_check_alignment also accepts, in
		// strict mode, an identifier whose organizational domain equals
		// the From domain: a MAIL FROM on a subdomain of the From domain
		// passes there.
		{name: "strict SPF, MAIL FROM on a subdomain", from: "spfstrict-example.com", mailFrom: "bounce@mail.spfstrict-example.com", want: "fail", opendmarc: "pass"},
		{name: "no DMARC record", from: "nodmarc-example.com", mailFrom: "bounce@nodmarc-example.com", dkim: "nodmarc-example.com", want: "none"},
		{name: "p=reject, nothing aligned", from: "reject-example.com", mailFrom: "bounce@other-example.net", dkim: "other-example.net", want: "fail"},
		{name: "strict SPF and DKIM, only SPF aligned (exact)", from: "exact-example.com", mailFrom: "bounce@exact-example.com", dkim: "other-example.net", want: "pass"},
	}
	for _, r := range rows {
		if r.dkim != "" {
			records = append(records, "sel._domainkey."+r.dkim+". TXT "+dkimRecord)
		}
	}
	zone := dnstest.Start(t, dnstest.Zone{Records: records, Host: oracleDNS, Port: 53})

	milter := startOpenDMARC(t)
	pf := startOraclePostfix(t, milter)

	res, err := dns.New(dns.Options{Servers: []string{zone.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	v := authres.New(authres.Options{Resolver: res, AuthServID: oracleOurID})
	for i, r := range rows {
		marker := fmt.Sprintf("dmarc-oracle-%d-%d", i, time.Now().UnixNano())
		msg := oracleMessage(t, r, marker, priv)
		ours := oracleCheck(t, v, r, msg)
		sendOracle(t, pf.addr, r.mailFrom, append([]byte(oracleInput(ours.Header)), msg...))
		got := waitDelivered(t, pf, marker)
		theirs := oracleResult(t, got)
		t.Logf("%s: authres dmarc=%s (policy %q, spf aligned %v, dkim aligned %v), OpenDMARC dmarc=%s",
			r.name, ours.DMARC.Result, ours.DMARC.Policy, ours.DMARC.SPFAligned, ours.DMARC.DKIMAligned, theirs)
		oracleWant := r.want
		if r.opendmarc != "" {
			oracleWant = r.opendmarc
		}
		if ours.DMARC.Result != r.want || theirs != oracleWant {
			t.Errorf("%s: authres dmarc=%s (want %s), OpenDMARC dmarc=%s (want %s)\nour field: %s\ndelivered:\n%s",
				r.name, ours.DMARC.Result, r.want, theirs, oracleWant, ours.Header, got)
		}
	}
}

// oracleMessage builds row r's message (CRLF), signed by d=r.dkim when set.
func oracleMessage(t *testing.T, r oracleRow, marker string, key ed25519.PrivateKey) []byte {
	t.Helper()
	body := "From: Sender <someone@" + r.from + ">\r\n" +
		"To: <" + oracleRcpt + ">\r\n" +
		"Subject: " + marker + "\r\n" +
		"Date: Wed, 02 Dec 2026 01:00:00 +0000\r\n" +
		"Message-ID: <" + marker + "@" + r.from + ">\r\n" +
		"\r\n" +
		"DMARC oracle row: " + r.name + "\r\n"
	if r.dkim == "" {
		return []byte(body)
	}
	// go-msgauth signs directly: smtpkit's dkim.Signer picks keys by the
	// From domain and would not make the unaligned signatures of the table.
	var sig bytes.Buffer
	opts := &msgauthdkim.SignOptions{Domain: r.dkim, Selector: "sel", Signer: key,
		HeaderCanonicalization: msgauthdkim.CanonicalizationRelaxed, BodyCanonicalization: msgauthdkim.CanonicalizationRelaxed}
	if err := msgauthdkim.Sign(&sig, strings.NewReader(body), opts); err != nil {
		t.Fatal(err)
	}
	return sig.Bytes()
}

// oracleCheck runs authres on msg as received from oracleSenderIP.
func oracleCheck(t *testing.T, v *authres.Verifier, r oracleRow, msg []byte) authres.Result {
	t.Helper()
	from, err := smtpaddr.ParseAddress(r.mailFrom)
	if err != nil {
		t.Fatal(err)
	}
	c := v.Begin(context.Background(), netip.MustParseAddr(oracleSenderIP), "sender.other-example.net", from)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	return c.Finish()
}

// oracleMailFrom matches the local part of smtp.mailfrom in our field.
var oracleMailFrom = regexp.MustCompile(`(smtp\.mailfrom=)[^;\s]*@`)

// oracleInput is our Authentication-Results field as OpenDMARC is given
// it: smtp.mailfrom with the domain only. RFC 8601 §2.7.2 allows both
// forms and we write the address, but OpenDMARC 1.4.2 (and its master
// branch) compares the text from the '@' on ("@domain") with the envelope
// domain, so it would never use an SPF result that carries a local part
// (opendmarc.c, the smtp.mailfrom match before DMARC_POLICY_SPF_ORIGIN_MAILFROM).
func oracleInput(field string) string {
	return oracleMailFrom.ReplaceAllString(field, "${1}")
}

var oracleDMARC = regexp.MustCompile(`(?i)\bdmarc=([a-z]+)`)

// oracleResult returns OpenDMARC's dmarc= result from the delivered
// message: the Authentication-Results field with its authserv-id.
func oracleResult(t *testing.T, msg []byte) string {
	t.Helper()
	hdr, _, _ := bytes.Cut(msg, []byte("\n\n"))
	unfolded := strings.ReplaceAll(strings.ReplaceAll(string(hdr), "\n\t", " "), "\n ", " ")
	for _, line := range strings.Split(unfolded, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || !strings.EqualFold(name, "Authentication-Results") || !authres.IsOurs(value, oracleID) {
			continue
		}
		if m := oracleDMARC.FindStringSubmatch(value); m != nil {
			return strings.ToLower(m[1])
		}
	}
	t.Fatalf("no Authentication-Results from %s with dmarc= in:\n%s", oracleID, msg)
	return ""
}

// startOpenDMARC runs `opendmarc -f` on a free port of oracleMilterHost in
// a mount namespace whose /etc/resolv.conf names only oracleDNS, and
// returns its milter address.
func startOpenDMARC(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	port := freePortOn(t, oracleMilterHost)
	resolv := filepath.Join(dir, "resolv.conf")
	writeOracleFile(t, resolv, "nameserver "+oracleDNS+"\noptions timeout:2 attempts:2\n")
	ignore := filepath.Join(dir, "ignore-hosts")
	writeOracleFile(t, ignore, "127.0.0.1\n")
	conf := filepath.Join(dir, "opendmarc.conf")
	renderOracleTemplate(t, "opendmarc.conf", conf, map[string]any{
		"Port": port, "Host": oracleMilterHost, "OracleID": oracleID, "OurID": oracleOurID,
		"IgnoreHosts": ignore, "PidFile": filepath.Join(dir, "opendmarc.pid"),
	})
	logs := &syncBuffer{}
	// exec: the shell becomes opendmarc, so cmd.Process is the milter.
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" /etc/resolv.conf && exec opendmarc -f -c "$2"`, "sh", resolv, conf)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("opendmarc logs:\n%s", logs.String())
		}
	})
	addr := net.JoinHostPort(oracleMilterHost, strconv.Itoa(port))
	probeWaitListening(t, addr, logs)
	return addr
}

// freePortOn returns a TCP port of host that was free a moment ago.
func freePortOn(t *testing.T, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeOracleFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// oraclePostfix is the running private Postfix instance.
type oraclePostfix struct {
	addr string // smtpd
	mail string // virtual_mailbox_base
	logs *syncBuffer
}

// startOraclePostfix starts `postfix -c DIR start-fg` with smtpd on
// oraclePostfixHost, its milter at milter, delivering oracleRcpt into a Maildir.
func startOraclePostfix(t *testing.T, milter string) *oraclePostfix {
	t.Helper()
	postfix := Need(t, "postfix")
	// Not t.TempDir (0700): the postfix user must walk into it.
	dir, err := os.MkdirTemp("", "smtpkit-dmarc-oracle-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	uid, gid := relayPostfixIDs(t)
	c := map[string]any{
		"Addr":   net.JoinHostPort(oraclePostfixHost, strconv.Itoa(freePortOn(t, oraclePostfixHost))),
		"Milter": milter, "Conf": filepath.Join(dir, "conf"), "Queue": filepath.Join(dir, "queue"),
		"Data": filepath.Join(dir, "data"), "Mail": filepath.Join(dir, "mail"), "UID": uid, "GID": gid,
	}
	for _, k := range []string{"Conf", "Queue", "Data", "Mail"} {
		if err := os.MkdirAll(c[k].(string), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"Data", "Mail"} {
		if err := os.Chown(c[k].(string), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	conf := c["Conf"].(string)
	for _, name := range []string{"main.cf", "master.cf"} {
		renderOracleTemplate(t, name, filepath.Join(conf, name), c)
	}
	writeOracleFile(t, filepath.Join(conf, "vmailbox"), oracleRcpt+" oracle.example/rcpt/\n")
	p := &oraclePostfix{addr: c["Addr"].(string), mail: c["Mail"].(string), logs: &syncBuffer{}}
	cmd := exec.Command(postfix, "-c", conf, "start-fg")
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopRelayPostfix(postfix, conf, cmd, p.logs)
		if t.Failed() || testing.Verbose() {
			t.Logf("postfix logs:\n%s", p.logs.String())
		}
	})
	probeWaitListening(t, p.addr, p.logs)
	return p
}

// renderOracleTemplate executes testdata/dmarc_oracle/name into dst.
func renderOracleTemplate(t *testing.T, name, dst string, data map[string]any) {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "dmarc_oracle", name))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Option("missingkey=error").Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	writeOracleFile(t, dst, b.String())
}

// sendOracle submits msg to Postfix from oracleClient.
func sendOracle(t *testing.T, addr, mailFrom string, msg []byte) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(oracleClient)}, Timeout: 10 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := smtp.NewClient(nc, oraclePostfixHost)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("sender.other-example.net"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(mailFrom); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(oracleRcpt); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(msg)
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	c.Quit()
}

// waitDelivered polls the Maildir for the message with marker.
func waitDelivered(t *testing.T, p *oraclePostfix, marker string) []byte {
	t.Helper()
	dir := filepath.Join(p.mail, "oracle.example", "rcpt", "new")
	deadline := time.Now().Add(readyTimeout)
	for {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err == nil && bytes.Contains(b, []byte(marker)) {
				return b
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s not delivered after %v\n%s", marker, readyTimeout, p.logs.String())
		}
		time.Sleep(pollStep) // polling a directory, bounded above
	}
}
