package submit

import (
	"errors"
	"fmt"
	"strings"

	"smtpkit/internal/sasl"
)

// AuthError marks a failed AUTH (RFC 4954), which the commands report
// with an exit code of its own.
type AuthError struct{ Err error }

func (e *AuthError) Error() string { return "authentication failed: " + e.Err.Error() }
func (e *AuthError) Unwrap() error { return e.Err }

// preference is the order Mechanism picks in: SCRAM-SHA-256-PLUS (offered
// only inside TLS: it also proves that no one sits between us and the
// server, RFC 5802 §6), SCRAM-SHA-256, which never reveals the password,
// then PLAIN, then LOGIN.
var preference = [...]string{sasl.MechScramSHA256Plus, sasl.MechScramSHA256, sasl.MechPlain, sasl.MechLogin}

// ParseMechanism reads a mechanism name asked for (case-insensitive).
func ParseMechanism(name string) (string, error) {
	for _, m := range preference {
		if strings.EqualFold(name, m) {
			return m, nil
		}
	}
	return "", errors.New("want plain, login, scram-sha-256 or scram-sha-256-plus")
}

// Mechanism picks the SASL mechanism: the one asked for, or the best one
// offered (the AUTH parameters of EHLO, RFC 4954 §3) in the order of
// preference.
func Mechanism(asked, offered string) (string, error) {
	if asked != "" {
		m, err := ParseMechanism(asked)
		if err != nil {
			return "", fmt.Errorf("mechanism %q: %v", asked, err)
		}
		return m, nil
	}
	have := strings.Fields(strings.ToUpper(offered))
	for _, m := range preference {
		for _, h := range have {
			if h == m {
				return m, nil
			}
		}
	}
	if offered == "" {
		return "", errors.New("the server does not offer AUTH")
	}
	return "", fmt.Errorf("no supported mechanism among %q", offered)
}

// saslClient is the client side of mech for user and password pw on a
// connection with the channel bindings cb (none outside TLS), to a server
// whose AUTH line is offered.
func saslClient(mech, user, pw string, cb []sasl.ChannelBinding, offered string) sasl.Client {
	switch mech {
	case sasl.MechScramSHA256Plus:
		return sasl.NewScramSHA256PlusClient(user, pw, sasl.Options{ChannelBindings: cb})
	case sasl.MechScramSHA256:
		// RFC 5802 §6: "y" (we could bind) only when the server did not
		// offer -PLUS; when it did and plain SCRAM was asked for, "n".
		if hasMech(offered, sasl.MechScramSHA256Plus) {
			cb = nil
		}
		return sasl.NewScramSHA256ClientOptions(user, pw, sasl.Options{ChannelBindings: cb})
	case sasl.MechLogin:
		return sasl.NewLoginClient(user, pw)
	}
	return sasl.NewPlainClient("", user, pw)
}

// hasMech reports whether the AUTH parameter list offered names mech.
func hasMech(offered, mech string) bool {
	for _, m := range strings.Fields(offered) {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}
