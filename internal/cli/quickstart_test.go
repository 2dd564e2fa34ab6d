package cli

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"smtpkit/internal/dane"
	"smtpkit/internal/dkim"
	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/testcert"
	"smtpkit/internal/userdb"
)

// TestQuickstart runs quickstart with certificate files: the config it
// writes passes `config check -certs` (which loads the certificate and
// both DKIM keys), the DKIM and TLSA records it prints are those of the
// keys and the certificate, the account logs in with the password shown,
// and a DNS server loaded with the printed zone lines satisfies `dkim
// check` for both selectors. A second run writes nothing and exits 3.
func TestQuickstart(t *testing.T) {
	dir := t.TempDir()
	etc, data := filepath.Join(dir, "etc"), filepath.Join(dir, "data")
	cert := testcert.New(t, "mail.quick.test")
	certFile, keyFile := testcert.WriteFiles(t, cert, dir)
	args := []string{"quickstart", "-dir", etc, "-data-dir", data, "-owner", "", "-cert", certFile, "-key", keyFile, "quick.test"}
	code, out, stderr := runMain("", args...)
	if code != quickstartOK {
		t.Fatalf("quickstart: exit %d\n%s\n%s", code, out, stderr)
	}
	cfgPath := filepath.Join(etc, "smtpkit.toml")
	if code, cout, cerr := runMain("", "config", "check", "-certs", cfgPath); code != 0 {
		t.Fatalf("config check -certs of the written config: exit %d\n%s%s", code, cout, cerr)
	}
	for _, want := range []string{
		"quick.test. MX 10 mail.quick.test.",
		`quick.test. TXT "v=spf1 mx -all"`,
		`_dmarc.quick.test. TXT "v=DMARC1; p=reject; rua=mailto:postmaster@quick.test"`,
		`_smtp._tls.quick.test. TXT "v=TLSRPTv1; rua=mailto:postmaster@quick.test"`,
		";   mode: testing", ";   mx: mail.quick.test",
		"smtpkit probe -config " + cfgPath + " quick.test",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^_mta-sts\.quick\.test\. TXT "v=STSv1; id=[0-9]{14}"$`).MatchString(out) {
		t.Errorf("no MTA-STS record:\n%s", out)
	}
	// DKIM: each printed record is the public key of its file.
	for _, sel := range []string{"ed", "rsa"} {
		matches, _ := filepath.Glob(filepath.Join(etc, "dkim", sel+"*.quick.test.pem"))
		if len(matches) != 1 {
			t.Fatalf("dkim key files %q", matches)
		}
		fi, _ := os.Stat(matches[0])
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", matches[0], fi.Mode().Perm())
		}
		key, err := dkim.LoadKey(matches[0])
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := dkim.Record(key.Public())
		selector := strings.TrimSuffix(filepath.Base(matches[0]), ".quick.test.pem")
		if line := dkim.ZoneLine(selector, "quick.test", rec); !strings.Contains(out, line+"\n") {
			t.Errorf("output lacks the DKIM record %s", line)
		}
	}
	// TLSA 3 1 1 of the certificate.
	block, _ := pem.Decode(mustRead(t, certFile))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if want := "_25._tcp.mail.quick.test. IN TLSA " + dane.Format(dane.Record(3, 1, 1, leaf)); !strings.Contains(out, want) {
		t.Errorf("output lacks %q", want)
	}
	// The account: admin, and the password shown logs in.
	m := regexp.MustCompile(`shown this once \(only a hash is stored\): ([a-z2-7]{26})\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no password in the output:\n%s", out)
	}
	store, err := userdb.Open(filepath.Join(data, "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if a, err := store.Authenticate(context.Background(), "postmaster@quick.test", m[1]); err != nil || !a.Admin {
		t.Errorf("login with the printed password: %+v %v", a, err)
	}

	// The printed zone lines, served by a DNS server: dkim check passes.
	var zone []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, ". TXT ") || strings.Contains(line, ". MX ") {
			zone = append(zone, line)
		}
	}
	ns := dnstest.Start(t, dnstest.Zone{Records: zone, Host: "127.17.5.3"})
	checkCfg := filepath.Join(dir, "check.toml")
	if err := os.WriteFile(checkCfg, append(mustRead(t, cfgPath), []byte("\n[outbound]\nresolver = \""+ns.Addr+"\"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, sel := range []string{"ed", "rsa"} {
		matches, _ := filepath.Glob(filepath.Join(etc, "dkim", sel+"*.quick.test.pem"))
		selector := strings.TrimSuffix(filepath.Base(matches[0]), ".quick.test.pem")
		if code, o, e := runMain("", "dkim", "check", "-config", checkCfg, "-domain", "quick.test", "-selector", selector); code != 0 {
			t.Errorf("dkim check %s against the printed records: exit %d\n%s%s", selector, code, o, e)
		}
	}

	// Again: refused, nothing changed.
	before := mustRead(t, cfgPath)
	code, _, stderr = runMain("", args...)
	if code != quickstartExists || !strings.Contains(stderr, cfgPath+" exists") || !strings.Contains(stderr, "nothing written") {
		t.Errorf("second quickstart: exit %d\n%s", code, stderr)
	}
	if string(mustRead(t, cfgPath)) != string(before) {
		t.Error("the second quickstart changed the config")
	}
}

// TestQuickstartACME: without certificate files the config gets [acme]
// (for the hostname, the account as contact) and still passes config
// check; the TLSA line says how to get the record later; the password
// comes from -password-file.
func TestQuickstartACME(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("correct horse battery\n"), 0o600)
	code, out, stderr := runMain("", "quickstart", "-dir", filepath.Join(dir, "etc"), "-data-dir", filepath.Join(dir, "data"),
		"-owner", "", "-hostname", "mx.acme.test", "-account", "Admin@acme.test", "-password-file", pw, "acme.test")
	if code != quickstartOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	cfgPath := filepath.Join(dir, "etc", "smtpkit.toml")
	cfg := string(mustRead(t, cfgPath))
	for _, want := range []string{"[acme]\ndirectory = \"" + DefaultACMEDirectory + "\"", `email     = "admin@acme.test"`, `names     = ["mx.acme.test"]`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if code, o, e := runMain("", "config", "check", "-certs", cfgPath); code != 0 {
		t.Errorf("config check: exit %d\n%s%s", code, o, e)
	}
	if strings.Contains(out, "shown this once") || !strings.Contains(out, "smtpkit tlsa -config "+cfgPath) {
		t.Errorf("output:\n%s", out)
	}
	store, _ := userdb.Open(filepath.Join(dir, "data", "accounts.json"))
	if _, err := store.Authenticate(context.Background(), "admin@acme.test", "correct horse battery"); err != nil {
		t.Errorf("login with the -password-file password: %v", err)
	}
	// Usage errors.
	for _, bad := range [][]string{{"quickstart"}, {"quickstart", "a.test", "b.test"}, {"quickstart", "-cert", "x", "a.test"},
		{"quickstart", "-account", "x@other.test", "a.test"}, {"quickstart", "not a domain"}} {
		if code, _, _ := runMain("", bad...); code != quickstartUsageE {
			t.Errorf("%q: exit %d, want %d", bad, code, quickstartUsageE)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
