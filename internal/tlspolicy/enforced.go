package tlspolicy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"smtpkit/internal/dane"
	"smtpkit/internal/dns"
	"smtpkit/internal/smtp"
	"smtpkit/internal/tlsrpt"
)

// Mechanism names what decided a plan's TLS: the log lines, the metrics
// and the probe print it.
type Mechanism string

// The mechanisms, in the order Decide considers them (RFC 8461 §2: DANE
// before MTA-STS).
const (
	MechDANE    Mechanism = "dane"    // secure TLSA records of the MX host (RFC 7672)
	MechSTS     Mechanism = "mta-sts" // the recipient domain's MTA-STS policy (RFC 8461)
	MechRoute   Mechanism = "route"   // a static route's own tls setting
	MechDefault Mechanism = "default" // outbound.tls (or the probe's flags)
)

// DANE is what DNSSEC-validated DNS says about one hop's TLSA records
// (RFC 7672 §2.2). The router sets it only when the MX answer and the
// host's address answer were both secure, and only for MX hops; without
// it DANE does not apply.
type DANE struct {
	// Records is the secure TLSA RRset at _port._tcp.host, usable or not.
	// Empty (a secure denial): DANE does not apply to the hop.
	Records []dns.TLSA
	// Err is a failed TLSA lookup (SERVFAIL, a bogus answer, a timeout):
	// the hop may have DANE and must not be downgraded, so it is deferred
	// (§2.2).
	Err error
	// Names are the reference identifiers a DANE-TA(2) certificate must
	// match (§3.2.2): the MX host name.
	Names []string
}

// STS is the recipient domain's MTA-STS policy (RFC 8461), as it applies
// to one MX host.
type STS struct {
	Domain    string
	Enforce   bool     // mode enforce; false means testing
	MatchesMX bool     // the host matches one of the policy's mx patterns (§4.1)
	Strings   []string // the policy's lines, for TLS-RPT's policy-string
}

// Report is what TLS-RPT is told about a session under this plan
// (RFC 8460 §4.4): the kind of policy and its text.
type Report struct {
	Type    tlsrpt.PolicyType
	Strings []string
	// Failure is a result type to count even though the session may
	// succeed: an MTA-STS testing policy whose MX pattern did not match.
	Failure tlsrpt.ResultType
	Detail  string
}

// Authenticated reports that the plan authenticates the server's name,
// by DANE, by MTA-STS (enforce) or by the verify policy: what a
// REQUIRETLS message needs (RFC 8689 §5).
func (p Plan) Authenticated() bool {
	return p.UsesTLS() && p.Require && (len(p.DANE) > 0 || p.VerifyName != "")
}

// enforce applies DANE, MTA-STS and REQUIRETLS to p, which Decide built
// from the route and default policy, and returns the reason text to add.
//
//   - DANE (RFC 7672), when the hop has secure TLSA records: a failed
//     lookup refuses the hop (deferred, never plaintext, §2.2); usable
//     records require TLS and a certificate that matches one of them;
//     records none of which is usable require TLS without authentication
//     (§2.2). DANE wins over MTA-STS for the same MX (RFC 8461 §2).
//   - MTA-STS (RFC 8461 §5): enforce requires TLS and a WebPKI
//     certificate valid for the MX name, and refuses an MX the policy does
//     not list (the next MX is tried); testing keeps the plan as it was
//     and has the certificate checked after the handshake, for TLS-RPT.
//   - "TLS-Required: No" (RFC 8689 §5) without REQUIRETLS: DANE and
//     MTA-STS are not applied; TLS is still tried when the policy says so.
//   - REQUIRETLS (RFC 8689 §5): the server's name must be authenticated
//     (DANE, MTA-STS — a testing policy counts as enforce —, or verify);
//     otherwise the hop is refused with 5.7.30.
func enforce(p *Plan, in Input) string {
	var why []string
	optional := in.TLSOptional && !in.RequireTLS
	host := strings.TrimSuffix(in.Host, ".")
	switch {
	case optional && (in.DANE != nil || in.STS != nil):
		why = append(why, "TLS-Required: No, DANE and MTA-STS not applied (RFC 8689 §5)")
	case in.DANE != nil && (in.DANE.Err != nil || len(in.DANE.Records) > 0):
		p.Mechanism = MechDANE
		p.Report = Report{Type: tlsrpt.PolicyTLSA, Strings: tlsaStrings(in.DANE.Records)}
		if in.DANE.Err != nil {
			p.Refuse = smtp.Wrap(smtp.R(smtp.CodeLocalError, smtp.EnhDirectory.Temp(),
				fmt.Sprintf("TLSA lookup for %s failed: DANE cannot be checked, delivery deferred (RFC 7672 §2.2)", host)), in.DANE.Err)
			p.Report.Failure, p.Report.Detail = tlsrpt.DNSSECInvalid, in.DANE.Err.Error()
			why = append(why, "DANE: TLSA lookup failed")
			break
		}
		p.StartTLS, p.Require = !p.Implicit, true
		p.VerifyName = ""
		for _, r := range in.DANE.Records {
			if dane.Usable(r) {
				p.DANE = append(p.DANE, r)
			}
		}
		if len(p.DANE) > 0 {
			p.DANENames = in.DANE.Names
			if len(p.DANENames) == 0 {
				p.DANENames = []string{host}
			}
			why = append(why, fmt.Sprintf("DANE: %d usable TLSA record(s), certificate must match one", len(p.DANE)))
		} else {
			why = append(why, "DANE: TLSA records, none usable: TLS required without authentication (RFC 7672 §2.2)")
		}
	case in.STS != nil:
		p.Mechanism = MechSTS
		p.Report = Report{Type: tlsrpt.PolicySTS, Strings: in.STS.Strings}
		enforced := in.STS.Enforce || in.RequireTLS
		switch {
		case !in.STS.MatchesMX && enforced:
			p.Refuse = smtp.E(smtp.CodeLocalError, smtp.EnhSecurity.Temp(),
				fmt.Sprintf("MX host %s is not listed in the MTA-STS policy of %s (RFC 8461 §4.1)", host, in.STS.Domain))
			p.Report.Failure, p.Report.Detail = tlsrpt.ValidationFailure, "mx host not in the policy"
			why = append(why, "MTA-STS enforce: MX not in the policy")
		case !in.STS.MatchesMX:
			p.Report.Failure, p.Report.Detail = tlsrpt.ValidationFailure, "mx host not in the policy"
			why = append(why, "MTA-STS testing: MX not in the policy, delivered anyway")
		case enforced:
			p.StartTLS, p.Require, p.VerifyName = !p.Implicit, true, host
			why = append(why, "MTA-STS enforce: certificate must be valid for "+host)
		default:
			p.AuditName = host
			if !p.UsesTLS() {
				p.StartTLS = true
			}
			why = append(why, "MTA-STS testing: certificate checked for the report only")
		}
	}
	if in.RequireTLS && p.Refuse == nil && !p.Authenticated() {
		p.Refuse = smtp.E(smtp.CodeMailboxUnavail, smtp.EnhRequireTLS,
			fmt.Sprintf("REQUIRETLS: the name of %s cannot be authenticated (no DANE, MTA-STS or verify policy), message not relayed (RFC 8689 §5)", host))
		why = append(why, "REQUIRETLS: no authenticated TLS to this host")
	} else if in.RequireTLS {
		why = append(why, "REQUIRETLS")
	}
	return strings.Join(why, "; ")
}

func tlsaStrings(rs []dns.TLSA) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = dane.Format(r)
	}
	return out
}

// daneConfig makes cfg check the server's chain against the plan's TLSA
// records instead of the WebPKI (RFC 7672 §3): the name and dates matter
// only for DANE-TA, which dane.Verify handles.
func (p Plan) daneConfig(cfg *tls.Config, now func() time.Time) {
	records, names := p.DANE, p.DANENames
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		return dane.Verify(records, cs.PeerCertificates, names, now())
	}
}

// Audit checks, after a handshake that succeeded without verification,
// what an MTA-STS testing policy would have demanded (RFC 8461 §5): a
// certificate WebPKI-valid for the MX name. The session is not refused;
// the error, typed for TLS-RPT, is only counted. Plans without AuditName
// give nil.
func (p Plan) Audit(cs tls.ConnectionState, roots *x509.CertPool, now time.Time) error {
	if p.AuditName == "" {
		return nil
	}
	if len(cs.PeerCertificates) == 0 {
		return auditError{tlsrpt.CertificateNotTrusted, errors.New("no certificate presented")}
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: p.AuditName, Roots: roots, Intermediates: inter, CurrentTime: now})
	if err != nil {
		return auditError{ResultOf(err), err}
	}
	return nil
}

type auditError struct {
	result tlsrpt.ResultType
	err    error
}

func (e auditError) Error() string                 { return "MTA-STS testing: " + e.err.Error() }
func (e auditError) Unwrap() error                 { return e.err }
func (e auditError) ResultType() tlsrpt.ResultType { return e.result }

// ResultOf is the TLS-RPT result type (RFC 8460 §4.3) of a certificate or
// handshake error: the type a DANE or MTA-STS error carries, else the
// x509 error's kind (wrong name, expired, unknown authority), else
// validation-failure.
func ResultOf(err error) tlsrpt.ResultType {
	var (
		f  tlsrpt.Failure
		he x509.HostnameError
		ci x509.CertificateInvalidError
		ua x509.UnknownAuthorityError
	)
	switch {
	case errors.As(err, &f):
		return f.ResultType()
	case errors.As(err, &he):
		return tlsrpt.CertificateHostMismatch
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return tlsrpt.CertificateExpired
	case errors.As(err, &ua):
		return tlsrpt.CertificateNotTrusted
	}
	return tlsrpt.ValidationFailure
}

// FailureResult is the TLS-RPT result type of a Failure with its cause.
func FailureResult(f Failure, cause error) tlsrpt.ResultType {
	switch f {
	case NotOffered, Refused:
		return tlsrpt.StartTLSNotSupported
	}
	return ResultOf(cause)
}
