package tlspolicy

import (
	"errors"
	"fmt"
	"strings"

	"smtpkit/internal/smtp"
	"smtpkit/internal/tlsrpt"
)

// Failure is why a connection did not get the TLS its plan asked for.
type Failure int

// The kinds of failure, in the order a connection meets them.
const (
	// NotOffered: the server's EHLO reply lacks STARTTLS.
	NotOffered Failure = iota + 1
	// Refused: the server answered STARTTLS with a 4xx/5xx reply; the
	// session is still in plaintext and usable (RFC 3207 §4).
	Refused
	// Handshake: the TLS handshake failed; the connection is unusable.
	Handshake
	// Certificate: the handshake failed because the server's certificate
	// did not verify for VerifyName.
	Certificate
)

func (f Failure) String() string {
	switch f {
	case NotOffered:
		return "STARTTLS not offered"
	case Refused:
		return "STARTTLS refused"
	case Handshake:
		return "TLS handshake failed"
	case Certificate:
		return "certificate not verified"
	}
	return fmt.Sprintf("Failure(%d)", int(f))
}

// Action is what the courier does after a Failure.
type Action int

// The actions.
const (
	// ContinuePlain: go on with this connection without TLS.
	ContinuePlain Action = iota + 1
	// RetryPlain: close this connection and deliver once more on a new one
	// without TLS (the plan from WithoutTLS). Only opportunistic plans do
	// this, and only after a failed handshake: a server that offers STARTTLS
	// and then cannot complete it would otherwise never receive mail.
	RetryPlain
	// Defer: give up on this host for now; a temporary failure, the message
	// stays queued.
	Defer
)

func (a Action) String() string {
	switch a {
	case ContinuePlain:
		return "continue without TLS"
	case RetryPlain:
		return "retry once without TLS on a new connection"
	case Defer:
		return "defer (temporary failure)"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// OnFailure decides what to do when the connection did not get TLS:
//
//   - Require (required, verify, implicit TLS): always Defer;
//   - opportunistic, STARTTLS not offered or refused: ContinuePlain on the
//     same connection (RFC 7435 §3: plaintext is the baseline);
//   - opportunistic, handshake failed: RetryPlain (what Postfix does with
//     smtp_tls_security_level = may);
//   - a plan that did not try TLS (or an already downgraded retry): its
//     connection is plaintext anyway, ContinuePlain.
func (p Plan) OnFailure(f Failure) Action {
	switch {
	case p.Require:
		return Defer
	case !p.StartTLS:
		return ContinuePlain
	case f == Handshake || f == Certificate:
		return RetryPlain
	}
	return ContinuePlain
}

// FailureError is the temporary error that records a Failure when the plan
// defers: 451 4.7.4 when TLS was not offered or refused (RFC 3463 §3.8
// "security features not supported"), 451 4.7.5 when the handshake or the
// certificate failed ("cryptographic failure"). cause, if any, is wrapped.
func (p Plan) FailureError(f Failure, cause error) *smtp.Error {
	enh := smtp.EnhCrypto.Temp()
	text := f.String()
	switch f {
	case NotOffered, Refused:
		enh = smtp.EnhNoTLS.Temp()
		text = "TLS is required (" + p.requiredBy() + "), but " + f.String()
	case Certificate:
		var tf tlsrpt.Failure
		switch {
		case len(p.DANE) > 0 && errors.As(cause, &tf):
			// The queue keeps the reply, so the reason must be in it, not
			// only in the log.
			text = "server certificate does not match the TLSA records of " +
				strings.Join(p.DANENames, ", ") + " (" + oneLine(tf.Error(), 160) + ")"
		case len(p.DANE) > 0:
			text = "server certificate does not match the TLSA records of " + strings.Join(p.DANENames, ", ")
		default:
			text = "server certificate not verified for " + p.VerifyName
			if p.Mechanism == MechSTS {
				text += " (MTA-STS enforce)"
			}
		}
	}
	return smtp.Wrap(smtp.R(smtp.CodeLocalError, enh, text), cause)
}

// requiredBy names what made TLS mandatory, for the reply: DANE, MTA-STS
// or the policy.
func (p Plan) requiredBy() string {
	switch p.Mechanism {
	case MechDANE:
		return "DANE"
	case MechSTS:
		return "MTA-STS"
	}
	return p.Policy.String()
}

// oneLine makes s fit in a reply text: no line breaks, at most max bytes.
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}

// WithoutTLS is the plan for the single plaintext retry after RetryPlain.
// It does not try TLS again, so it cannot be downgraded twice.
func (p Plan) WithoutTLS() Plan {
	q := p
	q.StartTLS, q.Implicit, q.Require, q.VerifyName = false, false, false, ""
	q.DANE, q.DANENames, q.AuditName = nil, nil, ""
	q.Reason = p.Reason + "; retry without TLS after a failed handshake"
	return q
}
