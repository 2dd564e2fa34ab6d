package dane

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"smtpkit/internal/dns"
	"smtpkit/internal/tlsrpt"
)

// Verify checks the chain a server presented (leaf first, as
// tls.ConnectionState.PeerCertificates) against the TLSA records of its
// MX host (RFC 7672 §3): it returns nil when at least one usable record
// matches, else a *Error carrying the TLS-RPT result type.
//
//   - DANE-EE(3) (RFC 7672 §3.1.1): the leaf's certificate or public key
//     matches the record; its names, dates and issuer do not matter.
//   - DANE-TA(2) (RFC 7672 §3.1.2): the record matches a certificate of
//     the presented chain above the leaf, or gives one in full ("2 0 0")
//     other than the leaf; that
//     certificate is the only trust anchor of an X.509 path from the leaf
//     through the other presented certificates (signatures and validity
//     dates of every certificate on the path checked at now), and the leaf
//     is valid for one of names (RFC 7672 §3.2.2: the MX host name, and
//     the TLSA base domain if CNAMEs were followed), matched as RFC 6125
//     §6.4 says: DNS-IDs (subjectAltName), the common name only when there
//     are none, and a "*" only as the whole leftmost label.
//
// The result types (RFC 8460 §4.3): no usable record among records →
// tlsa-invalid (the caller may still require unauthenticated TLS, RFC 7672
// §2.2); a DANE-TA path that holds but names none of names →
// certificate-host-mismatch; a path that fails only on dates →
// certificate-expired; anything else → validation-failure.
//
// Verify does no I/O and no DNS; its cost is a few hashes per record and
// one path validation per matching DANE-TA certificate.
func Verify(records []dns.TLSA, chain []*x509.Certificate, names []string, now time.Time) error {
	var ee, ta []dns.TLSA
	for _, r := range records {
		switch {
		case !Usable(r):
		case r.Usage == UsageDANEEE:
			ee = append(ee, r)
		default:
			ta = append(ta, r)
		}
	}
	if len(ee) == 0 && len(ta) == 0 {
		return &Error{Result: tlsrpt.TLSAInvalid, Reason: fmt.Sprintf("none of the %d TLSA records is usable for SMTP (RFC 7672 §3.1)", len(records))}
	}
	if len(chain) == 0 || chain[0] == nil {
		return &Error{Result: tlsrpt.ValidationFailure, Reason: "the server presented no certificate"}
	}
	leaf := chain[0]
	for _, r := range ee {
		if matches(r, leaf) {
			return nil
		}
	}
	if len(ta) == 0 {
		return &Error{Result: tlsrpt.ValidationFailure, Reason: "no DANE-EE TLSA record matches the server's certificate"}
	}
	return verifyTA(ta, chain, names, now)
}

// verifyTA is Verify for the usable DANE-TA records ta (RFC 7672 §3.1.2,
// §3.2.2).
func verifyTA(ta []dns.TLSA, chain []*x509.Certificate, names []string, now time.Time) error {
	anchors := trustAnchors(ta, chain)
	if len(anchors) == 0 {
		return &Error{Result: tlsrpt.ValidationFailure, Reason: "no TLSA record matches the server's certificate or chain"}
	}
	leaf := chain[0]
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		if c != nil {
			intermediates.AddCert(c)
		}
	}
	var worst *Error // the most specific failure over all anchors
	for _, anchor := range anchors {
		roots := x509.NewCertPool()
		roots.AddCert(anchor)
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots:         roots,
			Intermediates: intermediates,
			CurrentTime:   now,
			// RFC 7672 sets no extended key usage for SMTP servers.
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		var e *Error
		switch {
		case err == nil && validFor(leaf, names):
			return nil
		case err == nil:
			e = &Error{Result: tlsrpt.CertificateHostMismatch, Reason: fmt.Sprintf("the certificate chains up to a DANE-TA trust anchor but names none of %s (RFC 7672 §3.2.2)", strings.Join(names, ", "))}
		case isExpired(err):
			e = &Error{Result: tlsrpt.CertificateExpired, Reason: "DANE-TA: " + err.Error()}
		default:
			e = &Error{Result: tlsrpt.ValidationFailure, Reason: "DANE-TA: " + err.Error()}
		}
		if worst == nil || rank(e.Result) > rank(worst.Result) {
			worst = e
		}
	}
	return worst
}

// trustAnchors are the certificates the DANE-TA records designate: those
// of the presented chain above the leaf that a record matches, and those a
// "2 0 0" record holds in full (RFC 7672 §3.1.2 asks servers to send the
// anchor unless a record gives it whole). A trust anchor issues the
// server's certificate, so a DANE-TA record for the leaf itself designates
// nothing (that is DANE-EE's job); OpenSSL, behind Postfix and Exim, does
// the same.
func trustAnchors(ta []dns.TLSA, chain []*x509.Certificate) []*x509.Certificate {
	var anchors []*x509.Certificate
	leaf := chain[0]
	for _, c := range chain[1:] {
		if c == nil || c.Equal(leaf) {
			continue
		}
		for _, r := range ta {
			if matches(r, c) {
				anchors = append(anchors, c)
				break
			}
		}
	}
	for _, r := range ta {
		if r.Selector != SelectorCert || r.MatchingType != MatchFull {
			continue
		}
		if c, err := x509.ParseCertificate(r.Data); err == nil && !c.Equal(leaf) && !contains(anchors, c) {
			anchors = append(anchors, c)
		}
	}
	return anchors
}

func contains(certs []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range certs {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

func isExpired(err error) bool {
	var inv x509.CertificateInvalidError
	return errors.As(err, &inv) && inv.Reason == x509.Expired
}

// rank orders failures from least to most specific, for the one Verify
// reports when several trust anchors fail differently.
func rank(r tlsrpt.ResultType) int {
	switch r {
	case tlsrpt.CertificateHostMismatch:
		return 2
	case tlsrpt.CertificateExpired:
		return 1
	}
	return 0
}
