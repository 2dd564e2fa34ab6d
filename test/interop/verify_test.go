package interop

// Inbound verification end to end ([verify], issue #14): an outside
// sender's server — Python smtplib with messages signed by dkimpy (Debian
// python3-dkim), and swaks — delivers on our mx listener from addresses
// in 127.14.4.0/24; SPF, DKIM keys and DMARC records come from a dnstest
// zone on loopback. What we stored (Maildir new/ and the .Junk Maildir++
// folder) and the replies are checked.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"smtpkit/internal/dns/dnstest"
)

// Addresses of this test (the verify range, 127.14.4.0/24).
const (
	verifyPassIP  = "127.14.4.20" // in spf.example's SPF record
	verifyOtherIP = "127.14.4.21" // in no SPF record
)

// signKey is a DKIM key for dkim_sign_send.py and its TXT record.
type signKey struct {
	Domain   string `json:"domain"`
	Selector string `json:"selector"`
	Alg      string `json:"alg"`
	Key      string `json:"key"`
	record   string // zone line
}

func newSignKeys(t *testing.T, domain string) []signKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed := signKey{Domain: domain, Selector: "ed", Alg: "ed25519-sha256", Key: base64.StdEncoding.EncodeToString(priv.Seed())}
	ed.record = fmt.Sprintf(`ed._domainkey.%s. TXT "v=DKIM1; k=ed25519; p=%s"`, domain, base64.StdEncoding.EncodeToString(pub))
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := signKey{Domain: domain, Selector: "rsa", Alg: "rsa-sha256",
		Key: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}))}
	data := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(spki)
	var parts []string // TXT character-strings of at most 255 octets
	for len(data) > 0 {
		n := min(len(data), 255)
		parts, data = append(parts, `"`+data[:n]+`"`), data[n:]
	}
	rsaKey.record = fmt.Sprintf(`rsa._domainkey.%s. TXT %s`, domain, strings.Join(parts, " "))
	return []signKey{ed, rsaKey}
}

type sendJob struct {
	Source string    `json:"source"`
	Helo   string    `json:"helo"`
	From   string    `json:"from"`
	Rcpt   string    `json:"rcpt"`
	Msg    string    `json:"msg"`
	Sign   []signKey `json:"sign"`
	Tamper string    `json:"tamper"`
}

type sendResult struct {
	Code  int    `json:"code"`
	Reply string `json:"reply"`
}

// dkimpySend runs dkim_sign_send.py against s's mx listener.
func dkimpySend(t *testing.T, s *Server, jobs ...sendJob) []sendResult {
	t.Helper()
	python := NeedPython(t)
	if err := exec.Command(python, "-c", "import dkim").Run(); err != nil {
		missing(t, "python3-dkim", err)
	}
	in, err := json.Marshal(jobs)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(s.MX, ":")
	cmd := exec.Command(python, "testdata/dkim_sign_send.py", host, port)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dkim_sign_send.py: %v\n%s", err, stderr.String())
	}
	var res []sendResult
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r sendResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("dkim_sign_send.py printed %q: %v", line, err)
		}
		res = append(res, r)
	}
	if len(res) != len(jobs) {
		t.Fatalf("%d results for %d messages", len(res), len(jobs))
	}
	return res
}

// verifyMessage is a message From: from with a Subject naming it.
func verifyMessage(from, subject, extra string) string {
	return extra + "From: <" + from + ">\r\nTo: <alice@" + testDomain + ">\r\nSubject: " + subject +
		"\r\nDate: Wed, 02 Dec 2026 01:40:00 +0000\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@verify.test>\r\n\r\n" +
		"The body of " + subject + ".\r\n"
}

// storedIn returns the messages in dir, by Subject.
func storedIn(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, name := range listFiles(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(b), "\r\nSubject: ")
		subject, _, _ := strings.Cut(rest, "\r\n")
		got[subject] = string(b)
	}
	return got
}

// ourResults returns the Authentication-Results fields with our
// authserv-id in msg's header section, unfolded.
func ourResults(msg string) []string {
	head, _, _ := strings.Cut(msg, "\r\n\r\n")
	head = strings.NewReplacer("\r\n\t", " ", "\r\n ", " ").Replace(head)
	var ours []string
	for _, line := range strings.Split(head, "\r\n") {
		if v, ok := strings.CutPrefix(line, "Authentication-Results: "); ok && strings.HasPrefix(v, testHostname+";") {
			ours = append(ours, v)
		}
	}
	return ours
}

func verifyZone(t *testing.T, keys []signKey) string {
	records := []string{
		`signed.example. TXT "v=spf1 -all"`,
		`_dmarc.signed.example. TXT "v=DMARC1; p=reject"`,
		`reject.example. TXT "v=spf1 ip4:127.14.4.99 -all"`,
		`_dmarc.reject.example. TXT "v=DMARC1; p=reject"`,
		`quar.example. TXT "v=spf1 ip4:127.14.4.99 -all"`,
		`_dmarc.quar.example. TXT "v=DMARC1; p=quarantine"`,
		`half.example. TXT "v=spf1 ip4:127.14.4.99 -all"`,
		`_dmarc.half.example. TXT "v=DMARC1; p=reject; pct=0"`,
		`spf.example. TXT "v=spf1 ip4:` + verifyPassIP + ` -all"`,
		`_dmarc.spf.example. TXT "v=DMARC1; p=reject"`,
	}
	for _, k := range keys {
		records = append(records, k.record)
	}
	return dnstest.NewServer(t, records...)
}

func verifyServer(t *testing.T, dnsAddr, dmarc string) *Server {
	s := StartServer(t, ServerOptions{ExtraTOML: outConf{resolver: dnsAddr}.toml() +
		"\n[verify]\nenabled = true\ndmarc = \"" + dmarc + "\"\n"})
	s.AddUser(t, "alice@"+testDomain, "alice verify pw")
	return s
}

// TestVerifyDMARC: dmarc = "enforce" on mail from outside senders.
//   - signed by dkimpy (Ed25519 and RSA) for the From domain: stored with
//     dkim=pass for both and dmarc=pass, although SPF fails;
//   - the same message tampered with after signing: dkim=fail, and the
//     domain's p=reject refuses it with 550 5.7.1, nothing stored;
//   - p=quarantine failure: stored in alice's .Junk Maildir++ folder only;
//   - p=reject with pct=0: not sampled, stored in new/ with dmarc=fail;
//   - SPF pass aligned (spf.example, sent from its IP): dmarc=pass;
//   - swaks with forged Authentication-Results fields: the one with our
//     authserv-id is removed, another's is kept, ours is on top.
//
// With dmarc = "header" the tampered message is stored, dmarc=fail.
func TestVerifyDMARC(t *testing.T) {
	swaks := Need(t, "swaks")
	keys := newSignKeys(t, "signed.example")
	dnsAddr := verifyZone(t, keys)
	a := verifyServer(t, dnsAddr, "enforce")
	rcpt := "alice@" + testDomain
	job := func(source, from, subject string, sign []signKey, tamper string) sendJob {
		return sendJob{Source: source, Helo: "mail.sender.example", From: from, Rcpt: rcpt,
			Msg: verifyMessage(from, subject, ""), Sign: sign, Tamper: tamper}
	}
	res := dkimpySend(t, a,
		job(verifyOtherIP, "a@signed.example", "signed", keys, ""),
		job(verifyOtherIP, "a@signed.example", "tampered", keys, "An added line.\r\n"),
		job(verifyOtherIP, "x@quar.example", "quarantined", nil, ""),
		job(verifyOtherIP, "x@half.example", "outside pct", nil, ""),
		job(verifyPassIP, "x@spf.example", "spf pass", nil, ""),
	)
	for i, want := range []int{250, 550, 250, 250, 250} {
		if res[i].Code != want {
			t.Errorf("message %d: %d %s, want %d", i, res[i].Code, res[i].Reply, want)
		}
	}
	if !strings.HasPrefix(res[1].Reply, "5.7.1 ") || !strings.Contains(res[1].Reply, "DMARC") {
		t.Errorf("the tampered message's reply %q, want 5.7.1 naming DMARC", res[1].Reply)
	}

	// The forged fields, through swaks from spf.example's IP.
	forged := verifyMessage("x@spf.example", "forged results",
		"Authentication-Results: "+testHostname+"; dkim=pass header.d=bank.example; dmarc=pass\r\n"+
			"Authentication-Results: other.example; spf=pass smtp.mailfrom=x@spf.example\r\n")
	args := append(swaksArgs(a, a.MX, "x@spf.example", rcpt), "--local-interface", verifyPassIP, "--data", swaksData(t, []byte(forged)))
	mustRun(t, nil, swaks, args...)

	inbox := storedIn(t, filepath.Join(a.Maildir(rcpt), "new"))
	junk := storedIn(t, filepath.Join(a.Maildir(rcpt), ".Junk", "new"))
	for _, tc := range []struct {
		subject string
		box     map[string]string
		want    []string // in our field
	}{
		{"signed", inbox, []string{"spf=fail", "dkim=pass", "header.d=signed.example", "header.a=ed25519-sha256", "header.a=rsa-sha256", "dmarc=pass"}},
		{"quarantined", junk, []string{"spf=fail", "dmarc=fail", "header.from=quar.example"}},
		{"outside pct", inbox, []string{"dmarc=fail", "header.from=half.example"}},
		{"spf pass", inbox, []string{"spf=pass", "smtp.mailfrom=x@spf.example", "dmarc=pass"}},
		{"forged results", inbox, []string{"spf=pass", "dkim=none", "dmarc=pass"}},
	} {
		msg, ok := tc.box[tc.subject]
		if !ok {
			t.Errorf("%q not stored where expected (inbox %d, junk %d messages)", tc.subject, len(inbox), len(junk))
			continue
		}
		if !strings.HasPrefix(msg, "Return-Path: <") {
			t.Errorf("%q: does not start with Return-Path: %.80q", tc.subject, msg)
		}
		_, rest, _ := strings.Cut(msg, "\r\n")
		if !strings.HasPrefix(rest, "Authentication-Results: "+testHostname+";") {
			t.Errorf("%q: our Authentication-Results is not right below Return-Path:\n%.300s", tc.subject, msg)
		}
		ours := ourResults(msg)
		if len(ours) != 1 {
			t.Errorf("%q: %d fields with our authserv-id, want 1: %q", tc.subject, len(ours), ours)
			continue
		}
		if tc.subject == "signed" && strings.Count(ours[0], "dkim=pass") != 2 {
			t.Errorf("%q: want two dkim=pass: %s", tc.subject, ours[0])
		}
		for _, w := range tc.want {
			if !strings.Contains(ours[0], w) {
				t.Errorf("%q: %q not in %s", tc.subject, w, ours[0])
			}
		}
		if strings.Contains(msg, "header.d=bank.example") {
			t.Errorf("%q: the forged field survived:\n%s", tc.subject, msg)
		}
	}
	if f := inbox["forged results"]; !strings.Contains(f, "\r\nAuthentication-Results: other.example; spf=pass smtp.mailfrom=x@spf.example\r\n") {
		t.Errorf("the other authserv-id's field was not kept:\n%s", f)
	}
	if _, ok := inbox["tampered"]; ok || len(inbox)+len(junk) != 5 {
		t.Errorf("stored %d in new/ and %d in .Junk, want 4 and 1 (the tampered one refused)", len(inbox), len(junk))
	}
	if _, err := os.Stat(filepath.Join(a.Maildir(rcpt), ".Junk", "maildirfolder")); err != nil {
		t.Errorf(".Junk is not a Maildir++ folder: %v", err)
	}

	// Dovecot shows the quarantined message in Junk (\Junk), the rest in INBOX.
	list, folders := dovecotFolders(t, a.Maildir(rcpt))
	t.Logf("Dovecot: LIST %q, folders %q", list, folders)
	if !hasJunkFolder(list) {
		t.Errorf("Dovecot's LIST has no Junk folder with \\Junk: %q", list)
	}
	if got := folders["Junk"]; len(got) != 1 || got[0] != "quarantined" {
		t.Errorf("Dovecot's Junk holds %q, want the quarantined message", got)
	}
	if got := folders["INBOX"]; len(got) != 4 || slices.Contains(got, "quarantined") {
		t.Errorf("Dovecot's INBOX holds %q, want the 4 others", got)
	}

	// dmarc = "header": the tampered message is stored, marked.
	h := verifyServer(t, dnsAddr, "header")
	if r := dkimpySend(t, h, job(verifyOtherIP, "a@signed.example", "tampered", keys, "An added line.\r\n")); r[0].Code != 250 {
		t.Fatalf("header mode: %d %s, want 250", r[0].Code, r[0].Reply)
	}
	stored := storedIn(t, filepath.Join(h.Maildir(rcpt), "new"))
	ours := ourResults(stored["tampered"])
	if len(ours) != 1 || strings.Count(ours[0], "dkim=fail") != 2 || !strings.Contains(ours[0], "dmarc=fail") {
		t.Errorf("header mode, tampered: %q, want two dkim=fail and dmarc=fail", ours)
	}
}
