package dane

import (
	"context"
	"crypto/tls"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/dns"
)

// TestVerifyOpenSSL checks Verify against an independent DANE
// implementation: OpenSSL's (the one Postfix and Exim use), through
// `openssl s_client -dane_tlsa_rrdata` against a TLS server on loopback
// presenting the same chain. -dane_ee_no_namechecks is what RFC 7672
// §3.1.1 asks of SMTP clients (Postfix sets the same flag). Both must
// accept or both refuse; the result types are ours alone.
func TestVerifyOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	fx := newFixtures(t)
	head := func(c tls.Certificate, n int) tls.Certificate {
		return tls.Certificate{Certificate: c.Certificate[:n], PrivateKey: c.PrivateKey, Leaf: c.Leaf}
	}
	tests := []struct {
		name    string
		records []dns.TLSA
		cert    tls.Certificate
		host    string
	}{
		{"EE 3 1 1", []dns.TLSA{Record(3, 1, 1, fx.self.Leaf)}, fx.self, "mx.example.com"},
		{"EE 3 0 2", []dns.TLSA{Record(3, 0, 2, fx.self.Leaf)}, fx.self, "mx.example.com"},
		{"EE 3 1 0", []dns.TLSA{Record(3, 1, 0, fx.self.Leaf)}, fx.self, "mx.example.com"},
		{"EE wrong name", []dns.TLSA{Record(3, 1, 1, fx.wrong.Leaf)}, fx.wrong, "mx.example.com"},
		{"EE expired", []dns.TLSA{Record(3, 1, 1, fx.expired.Leaf)}, fx.expired, "mx.example.com"},
		{"EE of another key", []dns.TLSA{Record(3, 1, 1, fx.good.Leaf)}, fx.self, "mx.example.com"},
		{"EE of the intermediate", []dns.TLSA{Record(3, 1, 1, fx.inter)}, fx.good, "mx.example.com"},
		{"TA root in chain", []dns.TLSA{Record(2, 0, 1, fx.root)}, fx.good, "mx.example.com"},
		{"TA intermediate", []dns.TLSA{Record(2, 1, 1, fx.inter)}, head(fx.good, 2), "mx.example.com"},
		{"TA 2 1 2 root", []dns.TLSA{Record(2, 1, 2, fx.root)}, fx.good, "mx.example.com"},
		{"TA digest of a root not sent", []dns.TLSA{Record(2, 0, 1, fx.root)}, head(fx.good, 2), "mx.example.com"},
		{"TA 2 0 0 root not sent", []dns.TLSA{Record(2, 0, 0, fx.root)}, head(fx.good, 2), "mx.example.com"},
		{"TA wrong name", []dns.TLSA{Record(2, 0, 1, fx.root)}, fx.wrong, "mx.example.com"},
		{"TA wildcard", []dns.TLSA{Record(2, 0, 1, fx.root)}, fx.wild, "mx.example.com"},
		{"TA wildcard, two labels", []dns.TLSA{Record(2, 0, 1, fx.root)}, fx.wild, "a.mx.example.com"},
		{"TA common name only", []dns.TLSA{Record(2, 0, 1, fx.root)}, fx.cnOnly, "mx.example.com"},
		{"TA expired", []dns.TLSA{Record(2, 0, 1, fx.root)}, fx.expired, "mx.example.com"},
		{"TA of another CA", []dns.TLSA{Record(2, 0, 1, fx.other)}, fx.good, "mx.example.com"},
		{"TA foreign chain", []dns.TLSA{Record(2, 0, 1, fx.root)}, fx.foreign, "mx.example.com"},
		{"TA self-signed leaf as its own anchor", []dns.TLSA{Record(2, 1, 1, fx.self.Leaf)}, fx.self, "mx.example.com"},
		{"TA 2 0 0 self-signed leaf", []dns.TLSA{Record(2, 0, 0, fx.self.Leaf)}, fx.self, "mx.example.com"},
		{"TA 2 0 0 CA-issued leaf", []dns.TLSA{Record(2, 0, 0, fx.good.Leaf)}, head(fx.good, 1), "mx.example.com"},
		{"TA self-signed leaf, wrong name", []dns.TLSA{Record(2, 1, 1, fx.self.Leaf)}, fx.self, "mx.example.org"},
		{"TA anchor sent but leaf not under it", []dns.TLSA{Record(2, 0, 1, fx.other)}, tls.Certificate{Certificate: [][]byte{fx.good.Certificate[0], fx.good.Certificate[1], fx.other.Raw}, PrivateKey: fx.good.PrivateKey}, "mx.example.com"},
		{"EE mismatch, TA match", []dns.TLSA{Record(3, 1, 1, fx.self.Leaf), Record(2, 0, 1, fx.root)}, fx.good, "mx.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain := parsed(t, tt.cert)
			ours := Verify(tt.records, chain, []string{tt.host}, time.Now())
			theirs, transcript := opensslDANE(t, tt.cert, tt.records, tt.host)
			t.Logf("ours %v, openssl %v", ours, theirs)
			if (ours == nil) != theirs {
				t.Errorf("Verify: %v; OpenSSL accepted: %v\n%s", ours, theirs, transcript)
			}
		})
	}
}

// opensslDANE serves cert on 127.13.1.1 and reports whether
// `openssl s_client` verifies it against records for host.
func opensslDANE(t *testing.T, cert tls.Certificate, records []dns.TLSA, host string) (bool, string) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.13.1.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := []string{"s_client", "-connect", ln.Addr().String(), "-servername", host,
		"-dane_tlsa_domain", host, "-dane_ee_no_namechecks", "-verify_return_error", "-no-CAfile", "-no-CApath", "-no-CAstore"}
	for _, r := range records {
		args = append(args, "-dane_tlsa_rrdata", Format(r))
	}
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	transcript := fmt.Sprintf("openssl %s\n%s", strings.Join(args, " "), out)
	if ctx.Err() != nil {
		t.Fatalf("openssl timed out\n%s", transcript)
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	ok := err == nil && strings.Contains(string(out), "Verification: OK")
	return ok, transcript
}
