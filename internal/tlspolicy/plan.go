package tlspolicy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
)

// ImplicitTLSPort is the submissions port, where TLS starts with the first
// byte (RFC 8314 §3.3). Routes to it never use STARTTLS.
const ImplicitTLSPort = 465

// Input is what a decision is made from.
type Input struct {
	Policy Policy
	Host   string // MX or relay host name: what the certificate must match under Verify
	Port   int
	Source string // where the policy came from, for Reason, e.g. "route example.net"
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
}

// Decide turns a policy and a next hop into a Plan:
//
//   - port 465: Implicit, and Require (a TLS port cannot be spoken in
//     plaintext), whatever the policy;
//   - none: no TLS;
//   - opportunistic: StartTLS;
//   - required: StartTLS + Require;
//   - verify: StartTLS (or Implicit) + Require + VerifyName = Host.
func Decide(in Input) Plan {
	host := strings.TrimSuffix(in.Host, ".")
	p := Plan{Policy: in.Policy, ServerName: sniName(host)}
	switch in.Policy {
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
	if in.Port == ImplicitTLSPort {
		p.Implicit, p.StartTLS, p.Require = true, false, true
	}
	p.Reason = reason(in, p)
	return p
}

func reason(in Input, p Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy %s", p.Policy)
	if in.Source != "" {
		fmt.Fprintf(&b, " from %s", in.Source)
	}
	if p.Implicit {
		fmt.Fprintf(&b, "; port %d is implicit TLS", in.Port)
	}
	return b.String()
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
	if p.VerifyName != "" {
		parts = append(parts, "certificate must be valid for "+p.VerifyName)
	} else if p.UsesTLS() {
		parts = append(parts, "certificate not verified")
	}
	return strings.Join(parts, ", ") + " (" + p.Reason + ")"
}
