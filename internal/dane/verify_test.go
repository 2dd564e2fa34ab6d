package dane

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"smtpkit/internal/dns"
	"smtpkit/internal/testcert"
	"smtpkit/internal/tlsrpt"
)

// fixtures are the certificates the Verify tests present: a self-signed
// one, chains from a test root through an intermediate, and a foreign CA.
type fixtures struct {
	self, good, wild, wrong, expired, cnOnly, foreign tls.Certificate
	root, inter, other                                *x509.Certificate
}

func newFixtures(t testing.TB) fixtures {
	t.Helper()
	ca := testcert.NewCA(t, "Test Root")
	inter := ca.Intermediate(t, "Test Intermediate")
	other := testcert.NewCA(t, "Other Root")
	return fixtures{
		self:  testcert.New(t, "mx.example.com"),
		good:  inter.Issue(t, "mx.example.com"),
		wild:  inter.Issue(t, "*.example.com"),
		wrong: inter.Issue(t, "other.example.net"),
		expired: inter.IssueWith(t, func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
		}, "mx.example.com"),
		cnOnly:  inter.IssueWith(t, func(c *x509.Certificate) { c.DNSNames = nil }, "mx.example.com"),
		foreign: other.Issue(t, "mx.example.com"),
		root:    ca.Cert,
		inter:   inter.Cert,
		other:   other.Cert,
	}
}

// parsed is the presented chain of c, leaf first.
func parsed(t testing.TB, c tls.Certificate) []*x509.Certificate {
	t.Helper()
	var chain []*x509.Certificate
	for _, der := range c.Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, x)
	}
	return chain
}

func TestVerify(t *testing.T) {
	fx := newFixtures(t)
	leaf := func(c tls.Certificate) *x509.Certificate { return c.Leaf }
	mx := []string{"mx.example.com"}
	withRoot := func(c tls.Certificate, root *x509.Certificate) []*x509.Certificate {
		return append(parsed(t, c)[:2:2], root)
	}
	short := func(c tls.Certificate) []*x509.Certificate { return parsed(t, c)[:2] } // no root sent
	tests := []struct {
		name    string
		records []dns.TLSA
		chain   []*x509.Certificate
		names   []string
		want    tlsrpt.ResultType // "" = verified
	}{
		// DANE-EE(3), RFC 7672 §3.1.1: the leaf only; names, dates, issuer ignored.
		{"EE 3 1 1 self-signed", []dns.TLSA{Record(3, 1, 1, leaf(fx.self))}, parsed(t, fx.self), mx, ""},
		{"EE 3 0 1", []dns.TLSA{Record(3, 0, 1, leaf(fx.self))}, parsed(t, fx.self), mx, ""},
		{"EE 3 0 2", []dns.TLSA{Record(3, 0, 2, leaf(fx.self))}, parsed(t, fx.self), mx, ""},
		{"EE 3 1 2", []dns.TLSA{Record(3, 1, 2, leaf(fx.self))}, parsed(t, fx.self), mx, ""},
		{"EE 3 0 0", []dns.TLSA{Record(3, 0, 0, leaf(fx.self))}, parsed(t, fx.self), mx, ""},
		{"EE 3 1 0", []dns.TLSA{Record(3, 1, 0, leaf(fx.self))}, parsed(t, fx.self), mx, ""},
		{"EE ignores expiry", []dns.TLSA{Record(3, 1, 1, leaf(fx.expired))}, parsed(t, fx.expired), mx, ""},
		{"EE ignores names", []dns.TLSA{Record(3, 1, 1, leaf(fx.wrong))}, parsed(t, fx.wrong), mx, ""},
		{"EE ignores names given", []dns.TLSA{Record(3, 1, 1, leaf(fx.self))}, parsed(t, fx.self), nil, ""},
		{"EE of another cert", []dns.TLSA{Record(3, 1, 1, leaf(fx.good))}, parsed(t, fx.self), mx, tlsrpt.ValidationFailure},
		{"EE matches only the leaf, not the chain", []dns.TLSA{Record(3, 1, 1, fx.inter)}, parsed(t, fx.good), mx, tlsrpt.ValidationFailure},
		{"EE second record matches", []dns.TLSA{Record(3, 1, 1, leaf(fx.good)), Record(3, 1, 1, leaf(fx.self))}, parsed(t, fx.self), mx, ""},
		// Usability, RFC 7672 §3.1.
		{"no records", nil, parsed(t, fx.self), mx, tlsrpt.TLSAInvalid},
		{"PKIX-TA and PKIX-EE only", []dns.TLSA{Record(0, 1, 1, fx.root), Record(1, 1, 1, leaf(fx.good))}, parsed(t, fx.good), mx, tlsrpt.TLSAInvalid},
		{"unknown selector", []dns.TLSA{{Usage: 3, Selector: 2, MatchingType: 1, Data: Record(3, 1, 1, leaf(fx.self)).Data}}, parsed(t, fx.self), mx, tlsrpt.TLSAInvalid},
		{"unknown matching type", []dns.TLSA{{Usage: 3, Selector: 1, MatchingType: 3, Data: Record(3, 1, 1, leaf(fx.self)).Data}}, parsed(t, fx.self), mx, tlsrpt.TLSAInvalid},
		{"SHA-256 digest too short", []dns.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: Record(3, 1, 1, leaf(fx.self)).Data[:31]}}, parsed(t, fx.self), mx, tlsrpt.TLSAInvalid},
		{"unusable beside a usable match", []dns.TLSA{Record(1, 1, 1, leaf(fx.self)), Record(3, 1, 1, leaf(fx.self))}, parsed(t, fx.self), mx, ""},
		{"PKIX-EE match is not enough", []dns.TLSA{Record(1, 1, 1, leaf(fx.self)), Record(3, 1, 1, leaf(fx.good))}, parsed(t, fx.self), mx, tlsrpt.ValidationFailure},
		{"no certificate presented", []dns.TLSA{Record(3, 1, 1, leaf(fx.self))}, nil, mx, tlsrpt.ValidationFailure},
		// DANE-TA(2), RFC 7672 §3.1.2, §3.2.2.
		{"TA 2 0 1 root in chain", []dns.TLSA{Record(2, 0, 1, fx.root)}, parsed(t, fx.good), mx, ""},
		{"TA 2 1 1 intermediate", []dns.TLSA{Record(2, 1, 1, fx.inter)}, short(fx.good), mx, ""},
		{"TA 2 1 2 root", []dns.TLSA{Record(2, 1, 2, fx.root)}, parsed(t, fx.good), mx, ""},
		{"TA digest of a root not sent", []dns.TLSA{Record(2, 0, 1, fx.root)}, short(fx.good), mx, tlsrpt.ValidationFailure},
		{"TA 2 0 0 root not sent", []dns.TLSA{Record(2, 0, 0, fx.root)}, short(fx.good), mx, ""},
		{"TA self-signed leaf as its own anchor", []dns.TLSA{Record(2, 1, 1, leaf(fx.self))}, parsed(t, fx.self), mx, tlsrpt.ValidationFailure},
		{"TA 2 0 0 of the leaf", []dns.TLSA{Record(2, 0, 0, leaf(fx.self))}, parsed(t, fx.self), mx, tlsrpt.ValidationFailure},
		{"TA 2 0 0 of a CA-issued leaf", []dns.TLSA{Record(2, 0, 0, leaf(fx.good))}, parsed(t, fx.good)[:1], mx, tlsrpt.ValidationFailure},
		{"TA leaf sent twice", []dns.TLSA{Record(2, 1, 1, leaf(fx.self))}, append(parsed(t, fx.self), leaf(fx.self)), mx, tlsrpt.ValidationFailure},
		{"TA wrong name", []dns.TLSA{Record(2, 0, 1, fx.root)}, parsed(t, fx.wrong), mx, tlsrpt.CertificateHostMismatch},
		{"TA no names", []dns.TLSA{Record(2, 0, 1, fx.root)}, parsed(t, fx.good), nil, tlsrpt.CertificateHostMismatch},
		{"TA second name (TLSA base domain)", []dns.TLSA{Record(2, 0, 1, fx.root)}, parsed(t, fx.good), []string{"mx.cname.example.org", "MX.Example.COM."}, ""},
		{"TA wildcard", []dns.TLSA{Record(2, 0, 1, fx.root)}, parsed(t, fx.wild), mx, ""},
		{"TA wildcard is one label", []dns.TLSA{Record(2, 0, 1, fx.root)}, parsed(t, fx.wild), []string{"a.mx.example.com"}, tlsrpt.CertificateHostMismatch},
		{"TA common name without SANs", []dns.TLSA{Record(2, 0, 1, fx.root)}, parsed(t, fx.cnOnly), mx, ""},
		{"TA expired leaf", []dns.TLSA{Record(2, 0, 1, fx.root)}, parsed(t, fx.expired), mx, tlsrpt.CertificateExpired},
		{"TA anchor sent but leaf not under it", []dns.TLSA{Record(2, 0, 1, fx.other)}, withRoot(fx.good, fx.other), mx, tlsrpt.ValidationFailure},
		{"TA of another CA", []dns.TLSA{Record(2, 0, 1, fx.other)}, parsed(t, fx.good), mx, tlsrpt.ValidationFailure},
		{"TA foreign chain", []dns.TLSA{Record(2, 0, 1, fx.root)}, parsed(t, fx.foreign), mx, tlsrpt.ValidationFailure},
		{"TA 2 0 0 of garbage", []dns.TLSA{{Usage: 2, Selector: 0, MatchingType: 0, Data: []byte{0x30, 0x03, 1, 2, 3}}}, parsed(t, fx.good), mx, tlsrpt.ValidationFailure},
		{"EE mismatch, TA match", []dns.TLSA{Record(3, 1, 1, leaf(fx.self)), Record(2, 0, 1, fx.root)}, parsed(t, fx.good), mx, ""},
		{"host mismatch outranks another anchor's failure", []dns.TLSA{Record(2, 0, 1, fx.other), Record(2, 1, 1, fx.inter)}, withRoot(fx.wrong, fx.other), mx, tlsrpt.CertificateHostMismatch},
		{"TA expired, one anchor unrelated", []dns.TLSA{Record(2, 0, 0, fx.other), Record(2, 0, 1, fx.root)}, parsed(t, fx.expired), mx, tlsrpt.CertificateExpired},
		{"TA two anchors, wrong name", []dns.TLSA{Record(2, 0, 1, fx.root), Record(2, 1, 1, fx.inter)}, parsed(t, fx.wrong), mx, tlsrpt.CertificateHostMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.records, tt.chain, tt.names, time.Now())
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v, want nil", err)
				}
				return
			}
			var f tlsrpt.Failure
			if !errors.As(err, &f) {
				t.Fatalf("Verify: %v (%T), want a tlsrpt.Failure %s", err, err, tt.want)
			}
			if f.ResultType() != tt.want {
				t.Errorf("Verify: %v: result type %s, want %s", err, f.ResultType(), tt.want)
			}
			var de *Error
			if !errors.As(err, &de) || de.Reason == "" || err.Error()[:6] != "dane: " {
				t.Errorf("Verify: %q is not a *dane.Error with a reason", err)
			}
		})
	}
}

// TestVerifyNow checks that DANE-TA uses the time given, not the clock.
func TestVerifyNow(t *testing.T) {
	fx := newFixtures(t)
	records := []dns.TLSA{Record(2, 0, 1, fx.root)}
	for _, tt := range []struct {
		now  time.Time
		want error
	}{
		{time.Now(), nil},
		{time.Now().Add(72 * time.Hour), &Error{Result: tlsrpt.CertificateExpired}},
		{time.Now().Add(-72 * time.Hour), &Error{Result: tlsrpt.CertificateExpired}},
	} {
		err := Verify(records, parsed(t, fx.good), []string{"mx.example.com"}, tt.now)
		if (err == nil) != (tt.want == nil) {
			t.Fatalf("Verify at %v: %v, want %v", tt.now, err, tt.want)
		}
		var de *Error
		if err != nil && (!errors.As(err, &de) || de.Result != tlsrpt.CertificateExpired) {
			t.Errorf("Verify at %v: %v, want certificate-expired", tt.now, err)
		}
	}
	// DANE-EE ignores dates (RFC 7672 §3.1.1).
	if err := Verify([]dns.TLSA{Record(3, 1, 1, fx.good.Leaf)}, parsed(t, fx.good), nil, time.Now().Add(1000*time.Hour)); err != nil {
		t.Errorf("DANE-EE with an expired certificate: %v", err)
	}
}

func TestMatchName(t *testing.T) {
	tests := []struct {
		id, name string
		want     bool
	}{
		{"mx.example.com", "mx.example.com", true},
		{"MX.example.com", "mx.EXAMPLE.com.", true},
		{"mx.example.com.", "mx.example.com", true},
		{"mx.example.com", "mx2.example.com", false},
		{"*.example.com", "mx.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.mx.example.com", false},
		{"*.example.com", ".example.com", false},
		{"*.com", "example.com", false},
		{"m*.example.com", "mx.example.com", false},
		{"mx.*.com", "mx.example.com", false},
		{"*.*.com", "a.example.com", false},
		{"*", "mx", false},
		{"", "", false},
		{"mx.example.com", "", false},
	}
	for _, tt := range tests {
		if got := matchName(tt.id, tt.name); got != tt.want {
			t.Errorf("matchName(%q, %q) = %v, want %v", tt.id, tt.name, got, tt.want)
		}
	}
}

// BenchmarkVerify measures the cost inside a handshake: DANE-EE (hashes)
// and DANE-TA (one path validation).
func BenchmarkVerify(b *testing.B) {
	fx := newFixtures(b)
	for _, bb := range []struct {
		name    string
		records []dns.TLSA
		chain   []*x509.Certificate
	}{
		{"EE", []dns.TLSA{Record(3, 1, 1, fx.self.Leaf)}, parsed(b, fx.self)},
		{"TA", []dns.TLSA{Record(2, 0, 1, fx.root)}, parsed(b, fx.good)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				if err := Verify(bb.records, bb.chain, []string{"mx.example.com"}, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
