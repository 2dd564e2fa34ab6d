package interop

// DKIM signing end to end: smtpkit A signs what an authenticated user
// submits (Ed25519-SHA256 and RSA-SHA256 keys made by `smtpkit dkim
// keygen`), relays it through its queue to smtpkit B, and dkimpy
// (Debian python3-dkim) verifies the bytes B stored, with the records
// keygen printed standing in for DNS. A DSN that leaves through A's queue
// is signed too; mail that reached A without AUTH and is forwarded is not.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"smtpkit/internal/client"
	"smtpkit/internal/sasl"
)

// dkimKey is a key made by `smtpkit dkim keygen` and its record.
type dkimKey struct {
	selector, path string
	name, record   string // the TXT record keygen printed
}

// dkimKeygen runs `smtpkit dkim keygen` for domain and parses the zone
// line it prints.
func dkimKeygen(t *testing.T, dir, domain, selector, algorithm string) dkimKey {
	t.Helper()
	bin, err := smtpkitBinary.build()
	if err != nil {
		t.Fatal(err)
	}
	k := dkimKey{selector: selector, path: filepath.Join(dir, selector+".pem")}
	out, err := exec.Command(bin, "dkim", "keygen", "-domain", domain, "-selector", selector, "-algorithm", algorithm, "-out", k.path).Output()
	if err != nil {
		t.Fatalf("dkim keygen: %v", err)
	}
	name, data, ok := strings.Cut(strings.TrimSpace(string(out)), ". TXT ")
	if !ok {
		t.Fatalf("keygen printed %q", out)
	}
	k.name = name
	k.record = strings.ReplaceAll(strings.Trim(data, `"`), `" "`, "")
	return k
}

// dkimResult is dkim_verify.py's verdict on one message.
type dkimResult struct {
	File string `json:"file"`
	Sigs []struct {
		D, S, A string
		OK      bool
	} `json:"sigs"`
}

// dkimpyVerify has dkimpy verify every signature of each message.
func dkimpyVerify(t *testing.T, keys []dkimKey, msgs ...[]byte) []dkimResult {
	t.Helper()
	py := NeedPython(t)
	if err := exec.Command(py, "-c", "import dkim, nacl").Run(); err != nil {
		missing(t, "python3-dkim", err)
	}
	dir := t.TempDir()
	zone := map[string]string{}
	for _, k := range keys {
		zone[k.name] = k.record
	}
	zb, _ := json.Marshal(zone)
	zonePath := filepath.Join(dir, "zone.json")
	os.WriteFile(zonePath, zb, 0o600)
	args := []string{"testdata/dkim_verify.py", zonePath}
	for i, m := range msgs {
		p := filepath.Join(dir, "msg"+string(rune('a'+i))+".eml")
		os.WriteFile(p, m, 0o600)
		args = append(args, p)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(py, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dkim_verify.py: %v\n%s", err, stderr.String())
	}
	t.Logf("dkimpy: %s%s", out, stderr.String())
	var res []dkimResult
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r dkimResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("dkim_verify.py output %q: %v", line, err)
		}
		res = append(res, r)
	}
	return res
}

// verdicts is "s=a:ok" for each signature, in order.
func (r dkimResult) verdicts() string {
	var v []string
	for _, s := range r.Sigs {
		ok := "fail"
		if s.OK {
			ok = "pass"
		}
		v = append(v, s.D+"/"+s.S+"/"+s.A+":"+ok)
	}
	return strings.Join(v, " ")
}

// submitAs sends msg from the envelope sender from (an address
// outSender's account owns) on s's submission port, STARTTLS and AUTH.
func submitAs(t *testing.T, s *Server, from string, msg []byte, rcpts ...string) {
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
	res, err := c.Send(ctx, client.Envelope{From: from, To: rcpts}, bytes.NewReader(msg))
	if err != nil || res.Data != nil {
		t.Fatalf("submitting: %v / %v (rcpts %v)", err, res.Data, res.Rcpt)
	}
	c.Quit()
}

func TestDKIMSignedRelay(t *testing.T) {
	keyDir := t.TempDir()
	ed := dkimKeygen(t, keyDir, testDomain, "ed1", "ed25519")
	rs := dkimKeygen(t, keyDir, testDomain, "rsa1", "rsa")
	keys := []dkimKey{ed, rs}

	b := StartServer(t, ServerOptions{Domains: []string{"remote.example"}})
	for _, u := range []string{"bob", "carol", "dave", "erin"} {
		b.AddUser(t, u+"@remote.example", u+" pw")
	}
	conf := outConf{routes: []outRoute{{domain: "remote.example", host: b.MX}}}.toml()
	for _, k := range keys {
		// subdomains: DSNs come From MAILER-DAEMON@mx.test.example.
		conf += "\n[[dkim]]\ndomain = \"" + testDomain + "\"\nselector = \"" + k.selector + "\"\nkey = \"" + k.path + "\"\nsubdomains = true\n"
	}
	a := StartServer(t, ServerOptions{ExtraTOML: conf})
	a.AddUser(t, outSender, outPassword)
	// team@ (alice and carol@remote.example) is an address alice owns;
	// fwd@ forwards outside.
	a.alias(t, "team@"+testDomain, outSender, "carol@remote.example")
	a.alias(t, "fwd@"+testDomain, "dave@remote.example")

	msg := []byte("From: Alice <" + outSender + ">\r\nTo: <bob@remote.example>\r\nSubject: dkim interop\r\n" +
		"Date: Wed, 02 Dec 2026 01:00:00 +0000\r\nMessage-ID: <dkim-interop@test.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nHello Bob,\r\n\r\n  signed   twice.  \r\n.leading dot\r\n\r\n\r\n")

	t.Run("submission", func(t *testing.T) {
		submitAs(t, a, outSender, msg, "bob@remote.example")
		got := b.WaitMessages(t, "bob@remote.example", 1)[0]
		if n := bytes.Count(got, []byte("\r\nDKIM-Signature:")); n != 2 {
			t.Fatalf("%d DKIM-Signature fields at B, want 2:\n%s", n, got)
		}
		tampered := bytes.Replace(got, []byte("signed   twice"), []byte("signed   thrice"), 1)
		subject := bytes.Replace(got, []byte("Subject: dkim interop"), []byte("Subject: dkim interop!"), 1)
		res := dkimpyVerify(t, keys, got, tampered, subject)
		want := "test.example/ed1/ed25519-sha256:pass test.example/rsa1/rsa-sha256:pass"
		if v := res[0].verdicts(); v != want {
			t.Errorf("dkimpy on the message B received: %s, want %s", v, want)
		}
		for i, what := range []string{"body changed", "Subject changed"} {
			if v := res[i+1].verdicts(); v != strings.ReplaceAll(want, ":pass", ":fail") {
				t.Errorf("dkimpy on the message with its %s after signing: %s, want both to fail", what, v)
			}
		}
	})

	t.Run("submission fix-up fields are signed", func(t *testing.T) {
		// No Date or Message-ID: the submission server adds them (RFC 6409
		// §8) before the signer sees the header, so they are signed.
		bare := []byte("From: <" + outSender + ">\r\nTo: <erin@remote.example>\r\nSubject: no date\r\n\r\nhi\r\n")
		submitAs(t, a, outSender, bare, "erin@remote.example")
		got := b.WaitMessages(t, "erin@remote.example", 1)[0]
		if !bytes.Contains(got, []byte("\r\nDate: ")) || !bytes.Contains(got, []byte("\r\nMessage-ID: ")) {
			t.Fatalf("no Date/Message-ID added:\n%s", got)
		}
		noDate := bytes.Replace(got, []byte("\r\nDate: "), []byte("\r\nX-Old-Date: "), 1)
		res := dkimpyVerify(t, keys, got, noDate)
		want := "test.example/ed1/ed25519-sha256:pass test.example/rsa1/rsa-sha256:pass"
		if v := res[0].verdicts(); v != want {
			t.Errorf("dkimpy: %s, want %s", v, want)
		}
		if v := res[1].verdicts(); v != strings.ReplaceAll(want, ":pass", ":fail") {
			t.Errorf("dkimpy with the added Date removed: %s, want both to fail", v)
		}
	})

	t.Run("DSN", func(t *testing.T) {
		// B refuses nobody@: A bounces to team@, whose member
		// carol@remote.example gets the DSN through A's queue, signed;
		// alice gets hers in her Maildir, unsigned (local).
		submitAs(t, a, "team@"+testDomain, bytes.Replace(msg, []byte("<bob@"), []byte("<nobody@"), 1), "nobody@remote.example")
		dsn := b.WaitMessages(t, "carol@remote.example", 1)[0]
		checkBounce(t, dsn, "nobody@remote.example", "5.1.1")
		res := dkimpyVerify(t, keys, dsn)
		if v, want := res[0].verdicts(), "test.example/ed1/ed25519-sha256:pass test.example/rsa1/rsa-sha256:pass"; v != want {
			t.Errorf("dkimpy on the DSN: %s, want %s", v, want)
		}
		local := a.WaitMessages(t, outSender, 1)[0]
		if bytes.Contains(local, []byte("DKIM-Signature:")) {
			t.Errorf("the DSN in alice's Maildir is signed:\n%s", local)
		}
	})

	t.Run("unauthenticated forward not signed", func(t *testing.T) {
		c := dialHello(t, a.MX, "forger.example")
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), outWait)
		defer cancel()
		forged := bytes.Replace(msg, []byte("<bob@remote.example>"), []byte("<fwd@test.example>"), 1)
		if res, err := c.Send(ctx, client.Envelope{From: "x@forger.example", To: []string{"fwd@" + testDomain}}, bytes.NewReader(forged)); err != nil || res.Data != nil {
			t.Fatalf("sending to fwd@ on mx: %v %v", err, res.Data)
		}
		got := b.WaitMessages(t, "dave@remote.example", 1)[0]
		if bytes.Contains(got, []byte("DKIM-Signature:")) {
			t.Errorf("mail received without AUTH was signed:\n%s", got)
		}
	})
}

// alias adds targets to alias with `smtpkit user alias add`.
func (s *Server) alias(t *testing.T, alias string, targets ...string) {
	t.Helper()
	cmd := exec.Command(s.bin, append([]string{"user", "alias", "add", "-config", s.ConfigPath, alias}, targets...)...)
	cmd.Dir = s.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("smtpkit user alias add %s: %v\n%s", alias, err, out)
	}
}
