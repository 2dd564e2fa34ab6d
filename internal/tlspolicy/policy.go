// Package tlspolicy makes every outbound TLS decision in one place
// (house rule 7): from a route's policy, the next hop's host name and port it
// builds a Plan that the delivery courier obeys and `smtpkit probe` prints.
//
// The four policies follow the vocabulary of RFC 7435 (opportunistic
// security) and the usual MTA levels (Postfix's none/may/encrypt/verify):
//
//   - None: never use TLS (except on an implicit-TLS port, where the
//     protocol leaves no choice).
//   - Opportunistic: STARTTLS when offered, without authenticating the
//     server (RFC 7435 §3); plaintext when it is not offered.
//   - Required: STARTTLS must succeed; the certificate is not verified.
//   - Verify: STARTTLS must succeed and the certificate must be valid for the
//     next hop's host name (RFC 6125 via crypto/x509).
//
// See docs/tls-policy.md for what happens on each kind of failure.
package tlspolicy

import (
	"fmt"
	"strings"
)

// Policy is how much TLS an outbound connection insists on. The zero value
// is None; configuration should always set a policy explicitly.
type Policy int

// The policies, weakest first.
const (
	None Policy = iota
	Opportunistic
	Required
	Verify
)

var policyNames = [...]string{
	None:          "none",
	Opportunistic: "opportunistic",
	Required:      "required",
	Verify:        "verify",
}

// ParsePolicy parses a policy name as written in the configuration:
// "none", "opportunistic", "required" or "verify" (case-insensitive).
func ParsePolicy(s string) (Policy, error) {
	for p, name := range policyNames {
		if strings.EqualFold(s, name) {
			return Policy(p), nil
		}
	}
	return None, fmt.Errorf("tlspolicy: unknown policy %q (want none, opportunistic, required or verify)", s)
}

// String is the policy's configuration name.
func (p Policy) String() string {
	if p >= 0 && int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}
