package tlspolicy

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"smtpkit/internal/dns"
	"smtpkit/internal/smtp"
	"smtpkit/internal/tlsrpt"
)

// ImplicitTLSPort is the submissions port, where TLS starts with the first
// byte (RFC 8314 §3.3). Routes to it never use STARTTLS.
const ImplicitTLSPort = 465

// Input is everything a plan is decided from, and the only place new
// inputs go: callers do not adjust a Plan after Decide returns.
type Input struct {
	// Policy is the default policy: outbound.tls for delivery, the one the
	// probe's flags choose for a host probe. Route, when it names a policy,
	// overrides it.
	Policy Policy
	Source string // where Policy came from, for Reason, e.g. "outbound default"
	// Route is the static route the next hop comes from; nil for MX hops
	// and address literals.
	Route *Route
	Host  string // MX or relay host name: what the certificate must match under Verify
	Port  int
	// Mode forces how TLS starts (the probe's --starttls, --implicit-tls,
	// --no-tls); ModeAuto, the zero value, lets the port and policy decide,
	// as delivery does. ModeSource names it in Reason, e.g. "--starttls".
	Mode       Mode
	ModeSource string

	// DANE is the hop's secure TLSA answer (RFC 7672); nil when DANE is
	// off, the hop is a static route or a literal, or its DNS answers were
	// not DNSSEC-validated.
	DANE *DANE
	// STS is the recipient domain's MTA-STS policy (RFC 8461) for this
	// MX; nil when there is none (or mode none, or MTA-STS is off).
	STS *STS
	// RequireTLS: the message came with REQUIRETLS (RFC 8689 §4.1).
	RequireTLS bool
	// TLSOptional: the message has "TLS-Required: No" (RFC 8689 §4.2.2).
	TLSOptional bool
}

// Route is what a static route says about TLS.
type Route struct {
	Domain string // the route's domain, "example.net" or "*"
	// HasPolicy reports that the route names its own policy (route.tls);
	// without it the default applies.
	HasPolicy bool
	Policy    Policy
	// Auth: the route logs in to the relay (SMTP AUTH). Credentials never
	// go out in plaintext, so the policy is at least Required: without
	// this a relay that does not offer STARTTLS would fail as "connection
	// failed" rather than as the TLS problem it is.
	Auth bool
}

// Plan is what one connection must do about TLS; delivery obeys it, the
// probe prints it.
type Plan struct {
	Policy     Policy
	Implicit   bool   // TLS from the first byte (port 465 routes)
	StartTLS   bool   // try STARTTLS when offered
	Require    bool   // no TLS → no delivery (temporary failure, message stays queued)
	VerifyName string // "" = do not verify the certificate; else the name it must be valid for
	ServerName string // SNI sent in the ClientHello: the host name (empty for an IP literal)
	Reason     string // human text, e.g. "policy verify from route example.net"

	// Mechanism is what decided the plan: dane, mta-sts, route or default.
	Mechanism Mechanism
	// DANE are the usable TLSA records the server's certificate must
	// match (VerifyName is then empty), DANENames the names a DANE-TA
	// certificate must be valid for.
	DANE      []dns.TLSA
	DANENames []string
	// AuditName is set under an MTA-STS testing policy: the certificate is
	// checked for this name after the handshake (Audit), for TLS-RPT only.
	AuditName string
	// Refuse, when set, is why this hop must not be used at all (a failed
	// TLSA lookup, an MX outside an enforced MTA-STS policy, a REQUIRETLS
	// message to a host that cannot be authenticated): the courier does
	// not connect and tries the next hop.
	Refuse *smtp.Error
	// Report is what TLS-RPT is told about sessions under this plan.
	Report Report
}

// Decide turns the inputs into a Plan. It is pure: the same Input always
// gives the same Plan.
//
//   - the policy is the route's own when it names one, else the default;
//     a route with AUTH raises it to at least required;
//   - none: no TLS;
//   - opportunistic: StartTLS;
//   - required: StartTLS + Require;
//   - verify: StartTLS (or Implicit) + Require + VerifyName = Host;
//   - an unknown policy is treated as verify, the strictest;
//   - port 465: Implicit, and Require (a TLS port cannot be spoken in
//     plaintext), whatever the policy;
//   - then DANE, MTA-STS, TLS-Required: No and REQUIRETLS (see enforce
//     in enforced.go), which may raise the plan or refuse the hop;
//   - last, a forced Mode: implicit (Require), STARTTLS (Require only
//     under required or verify, or with DANE or MTA-STS) or none (no TLS
//     at all).
func Decide(in Input) Plan {
	host := strings.TrimSuffix(in.Host, ".")
	policy, source := in.Policy, in.Source
	if r := in.Route; r != nil {
		if r.HasPolicy {
			policy, source = r.Policy, "route "+r.Domain
		}
		if r.Auth && policy < Required {
			policy, source = Required, source+", raised to required for AUTH"
		}
	}
	p := Plan{Policy: policy, ServerName: sniName(host), Mechanism: MechDefault, Report: Report{Type: tlsrpt.PolicyNone}}
	if in.Route != nil && in.Route.HasPolicy {
		p.Mechanism = MechRoute
	}
	switch policy {
	case None:
	case Opportunistic:
		p.StartTLS = true
	case Required:
		p.StartTLS, p.Require = true, true
	case Verify:
		p.StartTLS, p.Require, p.VerifyName = true, true, host
	default:
		// An unknown policy is a programming error; fail safe by demanding
		// the strictest behaviour rather than sending in plaintext.
		p.Policy = Verify
		p.StartTLS, p.Require, p.VerifyName = true, true, host
	}
	var b strings.Builder
	fmt.Fprintf(&b, "policy %s", p.Policy)
	if source != "" {
		fmt.Fprintf(&b, " from %s", source)
	}
	if in.Port == ImplicitTLSPort {
		p.Implicit, p.StartTLS, p.Require = true, false, true
		fmt.Fprintf(&b, "; port %d is implicit TLS", in.Port)
	}
	if why := enforce(&p, in); why != "" {
		fmt.Fprintf(&b, "; %s", why)
	}
	if force(&p, in.Mode) {
		fmt.Fprintf(&b, "; %s", cmp.Or(in.ModeSource, "mode "+in.Mode.String()))
	}
	p.Reason = b.String()
	return p
}

// force makes the plan start TLS as m says and reports whether that
// changed it.
func force(p *Plan, m Mode) bool {
	switch m {
	case ModeImplicit:
		if !p.Implicit {
			p.Implicit, p.StartTLS, p.Require = true, false, true
			return true
		}
	case ModeStartTLS:
		if p.Implicit {
			p.Implicit, p.StartTLS = false, true
			p.Require = p.Policy >= Required || len(p.DANE) > 0 || p.VerifyName != ""
			return true
		}
	case ModeNone:
		if p.UsesTLS() {
			p.Implicit, p.StartTLS, p.Require, p.VerifyName = false, false, false, ""
			p.DANE, p.DANENames, p.AuditName = nil, nil, ""
			return true
		}
	}
	return false
}

// sniName is the name to send as SNI: RFC 6066 §3 forbids IP literals.
func sniName(host string) string {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if h == "" || strings.ContainsRune(h, ':') || isIPv4(h) {
		return ""
	}
	return host
}

func isIPv4(s string) bool {
	dots := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			dots++
		case c < '0' || c > '9':
			return false
		}
	}
	return dots == 3
}

// UsesTLS reports whether the plan tries TLS at all.
func (p Plan) UsesTLS() bool { return p.Implicit || p.StartTLS }

// ClientConfig is the tls.Config for this plan's connection: TLS 1.2 at
// least (RFC 8996 retires 1.0 and 1.1), SNI set to the host name. Without a
// VerifyName the certificate is not checked (InsecureSkipVerify): the
// opportunistic and required policies encrypt without authenticating, as
// RFC 7435 §3 intends. With one, the chain is verified against roots (nil:
// the system roots) for VerifyName.
func (p Plan) ClientConfig(roots *x509.CertPool) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: p.ServerName,
		RootCAs:    roots,
	}
	if len(p.DANE) > 0 {
		p.daneConfig(cfg, time.Now)
		return cfg
	}
	if p.VerifyName == "" {
		cfg.InsecureSkipVerify = true
		return cfg
	}
	// ServerName is what crypto/tls verifies the certificate against, so it
	// must be VerifyName even when VerifyName is an IP literal (no SNI then:
	// crypto/tls leaves IP addresses out of the ClientHello by itself).
	cfg.ServerName = strings.TrimSuffix(strings.TrimPrefix(p.VerifyName, "["), "]")
	return cfg
}

// String is the plan in one line, for the probe and logs.
func (p Plan) String() string {
	var parts []string
	switch {
	case p.Implicit:
		parts = append(parts, "implicit TLS")
	case p.StartTLS:
		parts = append(parts, "STARTTLS when offered")
	default:
		parts = append(parts, "no TLS")
	}
	if p.Require {
		parts = append(parts, "TLS required")
	}
	if len(p.DANE) > 0 {
		parts = append(parts, "certificate must match the TLSA records of "+strings.Join(p.DANENames, ", "))
	} else if p.VerifyName != "" {
		parts = append(parts, "certificate must be valid for "+p.VerifyName)
	} else if p.UsesTLS() {
		parts = append(parts, "any certificate accepted")
	}
	return strings.Join(parts, ", ") + " (" + p.Reason + ")"
}
