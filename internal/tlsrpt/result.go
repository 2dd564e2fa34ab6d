// Package tlsrpt is SMTP TLS Reporting (RFC 8460): the vocabulary of
// outcomes that delivery, DANE and MTA-STS share, the per-domain, per-day
// counters of outbound sessions, and the reports sent to the addresses a
// domain publishes in its _smtp._tls TXT record.
package tlsrpt

// ResultType is why a session failed to establish the TLS its policy asked
// for (RFC 8460 §4.3). The string is the report's "result-type".
type ResultType string

// The result types of RFC 8460 §4.3.
const (
	// Negotiation failures (§4.3.1).
	StartTLSNotSupported    ResultType = "starttls-not-supported"
	CertificateHostMismatch ResultType = "certificate-host-mismatch"
	CertificateExpired      ResultType = "certificate-expired"
	CertificateNotTrusted   ResultType = "certificate-not-trusted"
	ValidationFailure       ResultType = "validation-failure"
	// Policy failures: DANE (§4.3.2.1).
	TLSAInvalid   ResultType = "tlsa-invalid"
	DNSSECInvalid ResultType = "dnssec-invalid"
	DANERequired  ResultType = "dane-required"
	// Policy failures: MTA-STS (§4.3.2.2).
	STSPolicyFetchError ResultType = "sts-policy-fetch-error"
	STSPolicyInvalid    ResultType = "sts-policy-invalid"
	STSWebPKIInvalid    ResultType = "sts-webpki-invalid"
)

// PolicyType is the kind of policy a session was evaluated under
// (RFC 8460 §4.4, "policy-type").
type PolicyType string

// The policy types.
const (
	PolicyTLSA PolicyType = "tlsa"            // DANE
	PolicySTS  PolicyType = "sts"             // MTA-STS
	PolicyNone PolicyType = "no-policy-found" // neither
)

// Failure is an error that knows its TLS-RPT result type; DANE and MTA-STS
// errors implement it so that delivery can count them without knowing
// either mechanism.
type Failure interface {
	error
	ResultType() ResultType
}
