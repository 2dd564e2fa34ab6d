package server

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"time"
)

// Role is what a listener is for. It decides which rules apply to a session;
// the port number never does.
type Role int

const (
	// RoleMX receives mail for local domains from anyone (port 25, RFC 5321).
	// It never relays.
	RoleMX Role = iota
	// RoleSubmission is message submission (port 587 and 2525, RFC 6409):
	// authenticated users only.
	RoleSubmission
	// RoleSubmissions is submission over implicit TLS (port 465, RFC 8314 §3.3).
	RoleSubmissions
	// RoleSink runs the whole protocol path and discards every message
	// (Discard): for benchmarks, like Postfix's smtp-sink.
	RoleSink
)

func (r Role) String() string {
	switch r {
	case RoleMX:
		return "mx"
	case RoleSubmission:
		return "submission"
	case RoleSubmissions:
		return "submissions"
	case RoleSink:
		return "sink"
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// ParseRole maps the config names to a Role.
func ParseRole(s string) (Role, error) {
	switch s {
	case "mx":
		return RoleMX, nil
	case "submission":
		return RoleSubmission, nil
	case "submissions":
		return RoleSubmissions, nil
	case "sink":
		return RoleSink, nil
	}
	return 0, fmt.Errorf("unknown listener role %q (want mx, submission or submissions)", s)
}

// IsSubmission reports whether the role is one of the submission roles,
// where MAIL requires AUTH (RFC 6409 §4.3).
func (r Role) IsSubmission() bool { return r == RoleSubmission || r == RoleSubmissions }

// TLSMode is how a listener uses TLS.
type TLSMode int

const (
	// TLSNone offers no TLS at all.
	TLSNone TLSMode = iota
	// TLSOpportunistic offers STARTTLS (RFC 3207) and accepts mail without it.
	TLSOpportunistic
	// TLSRequired offers STARTTLS and refuses MAIL and AUTH until it is done
	// (RFC 3207 §4: 530 5.7.0 Must issue a STARTTLS command first).
	TLSRequired
	// TLSImplicit starts TLS with the first byte (RFC 8314 §3.3).
	TLSImplicit
)

func (m TLSMode) String() string {
	switch m {
	case TLSNone:
		return "none"
	case TLSOpportunistic:
		return "opportunistic"
	case TLSRequired:
		return "required"
	case TLSImplicit:
		return "implicit"
	}
	return fmt.Sprintf("tls(%d)", int(m))
}

// ParseTLSMode maps the config names to a TLSMode.
func ParseTLSMode(s string) (TLSMode, error) {
	switch s {
	case "none":
		return TLSNone, nil
	case "opportunistic":
		return TLSOpportunistic, nil
	case "required":
		return TLSRequired, nil
	case "implicit":
		return TLSImplicit, nil
	}
	return 0, fmt.Errorf("unknown tls mode %q (want none, opportunistic, required or implicit)", s)
}

// Listener is one listening address with its role and TLS rules.
type Listener struct {
	Name    string // for logs; defaults to Address
	Address string // host:port
	Role    Role
	TLS     TLSMode
	// Auth enables the AUTH command (only ever inside TLS).
	Auth bool
	// TLSConfig is used for STARTTLS and implicit TLS. Required unless
	// TLS is TLSNone.
	TLSConfig *tls.Config
	// Backend, when set, replaces Options.Backend for this listener
	// (RoleSink listeners use Discard).
	Backend Backend
	// TrustedNetworks are the client networks trusted on this listener
	// (SessionInfo.Trusted, client.go).
	TrustedNetworks []netip.Prefix
	// ProxyProtocol: connections from ProxyFrom begin with a PROXY
	// protocol header (v1 or v2) naming the client (proxy.go); from any
	// other peer such a header is refused.
	ProxyProtocol bool
	ProxyFrom     []netip.Prefix
	// XClientFrom are the peers that may send XCLIENT and XFORWARD
	// (xclient.go, xforward.go); empty = nobody.
	XClientFrom []netip.Prefix
	// Pregreet, when positive on an mx listener, is how long the server
	// waits before its greeting for an early talker (pregreet.go):
	// untrusted clients that send anything in that time are refused.
	Pregreet time.Duration
}
