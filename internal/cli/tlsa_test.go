package cli

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/dane"
	"smtpkit/internal/dns"
	"smtpkit/internal/testcert"
)

func runTLSACmd(args ...string) (code int, out, errOut string) {
	var o, e bytes.Buffer
	code = Main(append([]string{"tlsa"}, args...), Stdio{In: strings.NewReader(""), Out: &o, Err: &e})
	return code, o.String(), e.String()
}

// writeChain writes the chain of c as one PEM file (a fullchain.pem).
func writeChain(t *testing.T, c tls.Certificate, path string) string {
	t.Helper()
	var buf bytes.Buffer
	for _, der := range c.Certificate {
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTLSAFile(t *testing.T) {
	dir := t.TempDir()
	self := testcert.New(t, "mx.example.com")
	selfFile, _ := testcert.WriteFiles(t, self, dir)
	ca := testcert.NewCA(t, "Test Root")
	chained := ca.Intermediate(t, "Test Intermediate").Issue(t, "mx.example.com")
	chainFile := writeChain(t, chained, filepath.Join(dir, "fullchain.pem"))
	root := chained.Certificate[len(chained.Certificate)-1]
	spki := sha256.Sum256(self.Leaf.RawSubjectPublicKeyInfo)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"defaults", []string{"--host", "mx.example.com", selfFile},
			"_25._tcp.mx.example.com. IN TLSA 3 1 1 " + hex.EncodeToString(spki[:])},
		{"flags after the file, name normalised", []string{selfFile, "--host", "MX.Example.COM.", "--port", "465", "--selector", "0", "--matching", "0"},
			"_465._tcp.mx.example.com. IN TLSA 3 0 0 " + hex.EncodeToString(self.Leaf.Raw)},
		{"DANE-EE of a chain pins the leaf", []string{"-host=mx.example.com", "-matching=2", chainFile},
			"_25._tcp.mx.example.com. IN TLSA " + dane.Format(dane.Record(3, 1, 2, chained.Leaf))},
		{"DANE-TA pins the last certificate", []string{"--usage", "2", "--selector", "0", "--host", "mx.example.com", chainFile},
			"_25._tcp.mx.example.com. IN TLSA 2 0 1 " + sha256hex(root)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runTLSACmd(tt.args...)
			if code != 0 || out != tt.want+"\n" || errOut != "" {
				t.Fatalf("tlsa %q: exit %d\n got %q\nwant %q\n%s", tt.args, code, out, tt.want, errOut)
			}
			// What we print is what a DANE client accepts for this chain.
			r, err := dane.ParseRecord(strings.SplitN(out, " IN TLSA ", 2)[1])
			if err != nil {
				t.Fatal(err)
			}
			chain := []*x509.Certificate{self.Leaf}
			if strings.Contains(strings.Join(tt.args, " "), "fullchain") {
				chain = parseDER(t, chained.Certificate)
			}
			if err := dane.Verify([]dns.TLSA{r}, chain, []string{"mx.example.com"}, time.Now()); err != nil {
				t.Errorf("dane.Verify of the printed record: %v", err)
			}
		})
	}
}

func sha256hex(der []byte) string {
	d := sha256.Sum256(der)
	return hex.EncodeToString(d[:])
}

func parseDER(t *testing.T, ders [][]byte) []*x509.Certificate {
	t.Helper()
	var chain []*x509.Certificate
	for _, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	return chain
}

// TestTLSAConfig takes the certificate from the configuration: the one
// whose names cover the host (what the server sends for that SNI name),
// else the first; the host defaults to the configured hostname.
func TestTLSAConfig(t *testing.T) {
	dir := t.TempDir()
	other := testcert.New(t, "other.example.net")
	mx := testcert.New(t, "mx.example.com")
	otherCert, otherKey := testcert.WriteFiles(t, other, filepath.Join(dir))
	mxDir := filepath.Join(dir, "mx")
	os.Mkdir(mxDir, 0o700)
	mxCert, mxKey := testcert.WriteFiles(t, mx, mxDir)
	cfg := filepath.Join(dir, "smtpkit.toml")
	src := "hostname = \"mx.example.com\"\ndata_dir = \"" + dir + "\"\n[[domain]]\nname = \"example.com\"\n" +
		"[[tls.certificate]]\ncert = \"" + otherCert + "\"\nkey = \"" + otherKey + "\"\n" +
		"[[tls.certificate]]\ncert = \"" + mxCert + "\"\nkey = \"" + mxKey + "\"\n"
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	record := func(c tls.Certificate) string { return dane.Format(dane.Record(3, 1, 1, c.Leaf)) }
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-config", cfg}, "_25._tcp.mx.example.com. IN TLSA " + record(mx)},
		{[]string{"-config", cfg, "--host", "other.example.net"}, "_25._tcp.other.example.net. IN TLSA " + record(other)},
		{[]string{"-config", cfg, "--host", "mx2.example.com"}, "_25._tcp.mx2.example.com. IN TLSA " + record(other)},
		{[]string{"-config", cfg, otherCert}, "_25._tcp.mx.example.com. IN TLSA " + record(other)},
	}
	for _, tt := range tests {
		code, out, errOut := runTLSACmd(tt.args...)
		if code != 0 || out != tt.want+"\n" {
			t.Errorf("tlsa %q: exit %d\n got %q\nwant %q\n%s", tt.args, code, out, tt.want, errOut)
		}
	}

	// Self-signed: the generated certificate, once serve has made it.
	selfCfg := filepath.Join(dir, "self.toml")
	os.WriteFile(selfCfg, []byte("hostname = \"mx.example.com\"\ndata_dir = \""+dir+"\"\n[[domain]]\nname = \"example.com\"\n[tls]\nself_signed = true\n"), 0o600)
	if code, _, errOut := runTLSACmd("-config", selfCfg); code != 1 || !strings.Contains(errOut, "does not exist yet") {
		t.Errorf("self-signed not generated yet: exit %d %s", code, errOut)
	}
	os.Mkdir(filepath.Join(dir, "tls"), 0o700)
	writeChain(t, mx, filepath.Join(dir, "tls", "selfsigned.crt"))
	if code, out, errOut := runTLSACmd("-config", selfCfg); code != 0 || out != "_25._tcp.mx.example.com. IN TLSA "+record(mx)+"\n" {
		t.Errorf("self-signed: exit %d %q %s", code, out, errOut)
	}
}

// TestTLSAACME: with [acme] on, the issued certificate in <data_dir>/acme
// is the one served first, so its record is printed; before it is
// issued, the command says so.
func TestTLSAACME(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "acme.toml")
	os.WriteFile(cfg, []byte("hostname = \"mx.example.com\"\ndata_dir = \""+dir+"\"\n[[domain]]\nname = \"example.com\"\n"+
		"[tls]\nself_signed = true\n[acme]\ndirectory = \"https://acme.example/dir\"\n"), 0o600)
	if code, _, errOut := runTLSACmd("-config", cfg); code != 1 || !strings.Contains(errOut, "not issued yet") {
		t.Errorf("before issuance: exit %d %s", code, errOut)
	}
	issued := testcert.New(t, "mx.example.com")
	os.Mkdir(filepath.Join(dir, "acme"), 0o700)
	writeChain(t, issued, filepath.Join(dir, "acme", "cert.pem"))
	want := "_25._tcp.mx.example.com. IN TLSA " + dane.Format(dane.Record(3, 1, 1, issued.Leaf)) + "\n"
	if code, out, errOut := runTLSACmd("-config", cfg); code != 0 || out != want {
		t.Errorf("issued: exit %d %q, want %q\n%s", code, out, want, errOut)
	}
}

func TestTLSAErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, _ := testcert.WriteFiles(t, testcert.New(t, "mx.example.com"), dir)
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate\n"), 0o644)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--usage", "0", "--host", "mx.example.com", certFile}, 2, "unusable for SMTP"},
		{[]string{"--usage", "1", "--host", "mx.example.com", certFile}, 2, "unusable for SMTP"},
		{[]string{"--usage", "4", "--host", "mx.example.com", certFile}, 2, "--usage 4"},
		{[]string{"--selector", "2", "--host", "mx.example.com", certFile}, 2, "--selector 2"},
		{[]string{"--matching", "3", "--host", "mx.example.com", certFile}, 2, "--matching 3"},
		{[]string{"--port", "0", "--host", "mx.example.com", certFile}, 2, "--port 0"},
		{[]string{"--port", "65536", "--host", "mx.example.com", certFile}, 2, "--port 65536"},
		{[]string{"--host", "mx example.com", certFile}, 2, "not a host name"},
		{[]string{"--host", "mx..example.com", certFile}, 2, "not a host name"},
		{[]string{"--host", "mx.example.com", certFile, certFile}, 2, "one certificate file"},
		{[]string{"--frobnicate"}, 2, "usage: smtpkit tlsa"},
		{[]string{"--host", "mx.example.com", filepath.Join(dir, "missing.pem")}, 1, "missing.pem"},
		{[]string{"--host", "mx.example.com", junk}, 1, "no PEM certificate"},
		{[]string{"--usage", "2", "--host", "mx.example.com", certFile}, 1, "only the leaf"},
	}
	for _, tt := range tests {
		code, out, errOut := runTLSACmd(tt.args...)
		if code != tt.code || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("tlsa %q: exit %d (want %d), stdout %q\n%s", tt.args, code, tt.code, out, errOut)
		}
	}
}

// TestTLSAOpenSSL checks the printed digest against an independent tool:
// openssl's SHA2-256 of the DER public key, the recipe operators use.
func TestTLSAOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	certFile, _ := testcert.WriteFiles(t, testcert.New(t, "mx.example.com"), dir)
	out, err := exec.Command("sh", "-c", "openssl x509 -in \"$1\" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r", "sh", certFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(string(out))[0]
	code, got, errOut := runTLSACmd("--host", "mx.example.com", certFile)
	if code != 0 || got != "_25._tcp.mx.example.com. IN TLSA 3 1 1 "+want+"\n" {
		t.Errorf("tlsa: exit %d %q, openssl says %s\n%s", code, got, want, errOut)
	}
}
