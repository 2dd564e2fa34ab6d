package dane

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/dns"
	"smtpkit/internal/testcert"
	"smtpkit/internal/tlsrpt"
)

// FuzzParseRecord checks that ParseRecord never panics and that what it
// accepts prints back to itself: ParseRecord(Format(r)) == r, in lower
// case.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"3 1 1 " + strings.Repeat("0a", 32),
		"2 0 0 30 82 01",
		"3 1 1",
		"256 0 0 00",
		"3 1 1 ABC",
		"\t3\n1\r1 ff ",
		"+1 -0 1 00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRecord(s)
		if err != nil {
			return
		}
		out := Format(r)
		if out != strings.ToLower(out) {
			t.Fatalf("Format(%v) = %q, not lower case", r, out)
		}
		back, err := ParseRecord(out)
		if err != nil || !equal(back, r) {
			t.Fatalf("ParseRecord(%q) = %v; ParseRecord(Format) = %v, %v", s, r, back, err)
		}
	})
}

// FuzzVerify feeds Verify one arbitrary TLSA record beside a real chain,
// and an arbitrary certificate in place of the leaf or as a "2 0 0"
// anchor: it must not panic, must return nil or a *Error of a known
// result type, and must call an unusable record tlsa-invalid and the
// leaf's own DANE-EE record a match.
func FuzzVerify(f *testing.F) {
	ca := testcert.NewCA(f, "Fuzz Root")
	good := ca.Issue(f, "mx.example.com")
	leaf := good.Leaf
	root := ca.Cert
	f.Add(uint8(3), uint8(1), uint8(1), Record(3, 1, 1, leaf).Data, []byte(nil), "mx.example.com")
	f.Add(uint8(2), uint8(0), uint8(1), Record(2, 0, 1, root).Data, []byte(nil), "mx.example.com")
	f.Add(uint8(2), uint8(0), uint8(0), root.Raw, leaf.Raw, "other.example.com")
	f.Add(uint8(2), uint8(1), uint8(0), root.RawSubjectPublicKeyInfo, root.Raw, "*.example.com")
	f.Add(uint8(0), uint8(0), uint8(1), make([]byte, 32), []byte{0x30, 0x00}, "")
	f.Fuzz(func(t *testing.T, usage, selector, matching uint8, data, der []byte, name string) {
		r := dns.TLSA{Usage: usage, Selector: selector, MatchingType: matching, Data: data}
		chain := []*x509.Certificate{leaf, root}
		if c, err := x509.ParseCertificate(der); err == nil {
			chain = []*x509.Certificate{c, root}
		}
		now := time.Now()
		for _, records := range [][]dns.TLSA{{r}, {r, {Usage: 2, Selector: 0, MatchingType: 0, Data: der}}} {
			err := Verify(records, chain, []string{name}, now)
			if err == nil {
				continue
			}
			var de *Error
			if !errors.As(err, &de) {
				t.Fatalf("Verify: %v (%T), not a *dane.Error", err, err)
			}
			switch de.Result {
			case tlsrpt.TLSAInvalid, tlsrpt.ValidationFailure, tlsrpt.CertificateHostMismatch, tlsrpt.CertificateExpired:
			default:
				t.Fatalf("Verify: result type %q", de.Result)
			}
		}
		err := Verify([]dns.TLSA{r}, chain, []string{name}, now)
		if !Usable(r) && (err == nil || err.(*Error).Result != tlsrpt.TLSAInvalid) {
			t.Fatalf("Verify(unusable %s) = %v, want tlsa-invalid", Format(r), err)
		}
		if usage == UsageDANEEE && Usable(r) && matches(r, chain[0]) && err != nil {
			t.Fatalf("Verify(matching DANE-EE %s) = %v", Format(r), err)
		}
		own := Record(UsageDANEEE, selector%2, matching%3, chain[0])
		if err := Verify([]dns.TLSA{r, own}, chain, []string{name}, now); err != nil {
			t.Fatalf("Verify(%s beside the leaf's own %s) = %v", Format(r), Format(own), err)
		}
	})
}
