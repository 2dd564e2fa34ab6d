package dane

import (
	"crypto/x509"
	"strings"
)

// validFor reports whether cert is valid for one of names (RFC 7672
// §3.2.2 with the rules of RFC 6125 §6.4): its DNS-IDs (subjectAltName
// dNSName entries) or, only when it has none, its subject common name.
func validFor(cert *x509.Certificate, names []string) bool {
	ids := cert.DNSNames
	if len(ids) == 0 && cert.Subject.CommonName != "" {
		ids = []string{cert.Subject.CommonName}
	}
	for _, n := range names {
		for _, id := range ids {
			if matchName(id, n) {
				return true
			}
		}
	}
	return false
}

// matchName reports whether the presented identifier id matches the
// reference identifier name, without regard to case or a trailing dot. A
// wildcard is only "*" as the whole leftmost label of id and stands for
// exactly one non-empty label of name (RFC 6125 §6.4.3; partial-label
// wildcards such as "f*.example.com" match nothing, as RFC 7672 §3.2.2
// asks of SMTP clients); "*" over a single remaining label ("*.com")
// matches nothing either.
func matchName(id, name string) bool {
	id = strings.ToLower(strings.TrimSuffix(id, "."))
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if id == "" || name == "" {
		return false
	}
	rest, wild := strings.CutPrefix(id, "*.")
	if !wild {
		return !strings.Contains(id, "*") && id == name
	}
	if strings.Contains(rest, "*") || !strings.Contains(rest, ".") {
		return false
	}
	first, tail, ok := strings.Cut(name, ".")
	return ok && first != "" && tail == rest
}
