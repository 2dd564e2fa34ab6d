// Package dane is DANE for SMTP (RFC 7672) on the sending side: which TLSA
// records (RFC 6698) an SMTP client may use, and whether the certificate
// chain a server presented in the TLS handshake matches them. It also
// parses and prints TLSA records in their presentation form and builds the
// record to publish for a certificate (`smtpkit tlsa`).
//
// The package does no I/O: the TLSA records come from the caller (a
// DNSSEC-validated dns.TLSAAnswer), and Verify is cheap enough to run in a
// tls.Config.VerifyConnection callback for every handshake.
package dane

import (
	"crypto/sha256"
	"crypto/sha512"

	"smtpkit/internal/dns"
)

// Certificate usages (RFC 6698 §2.1.1, acronyms of RFC 7218 §2.1).
const (
	UsagePKIXTA uint8 = 0 // PKIX-TA: unusable for SMTP (RFC 7672 §3.1.3)
	UsagePKIXEE uint8 = 1 // PKIX-EE: unusable for SMTP (RFC 7672 §3.1.3)
	UsageDANETA uint8 = 2 // DANE-TA: a trust anchor of the server's chain (RFC 7672 §3.1.2)
	UsageDANEEE uint8 = 3 // DANE-EE: the server's own certificate or key (RFC 7672 §3.1.1)
)

// Selectors (RFC 6698 §2.1.2).
const (
	SelectorCert uint8 = 0 // the full certificate (DER)
	SelectorSPKI uint8 = 1 // the SubjectPublicKeyInfo (DER)
)

// Matching types (RFC 6698 §2.1.3).
const (
	MatchFull   uint8 = 0 // the selected content itself
	MatchSHA256 uint8 = 1 // its SHA2-256 digest
	MatchSHA512 uint8 = 2 // its SHA2-512 digest
)

// Usable reports whether an SMTP client may use r (RFC 7672 §3.1): usage
// DANE-TA(2) or DANE-EE(3), selector Cert(0) or SPKI(1), matching type
// Full(0), SHA2-256(1) or SHA2-512(2), and association data that can match
// something: not empty, and a digest of its hash's length (a record that
// can never match is treated like one with parameters we do not know).
// PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP (RFC 7672 §3.1.3): MTAs
// have no common set of trusted CAs.
func Usable(r dns.TLSA) bool {
	if r.Usage != UsageDANETA && r.Usage != UsageDANEEE {
		return false
	}
	if r.Selector != SelectorCert && r.Selector != SelectorSPKI {
		return false
	}
	switch r.MatchingType {
	case MatchFull:
		return len(r.Data) > 0
	case MatchSHA256:
		return len(r.Data) == sha256.Size
	case MatchSHA512:
		return len(r.Data) == sha512.Size
	}
	return false
}
