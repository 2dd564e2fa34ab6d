// Package sasl implements the SASL mechanisms smtpkit offers and uses for
// SMTP AUTH (RFC 4954): PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login)
// and SCRAM-SHA-256 (RFC 5802, RFC 7677), each with a server and a client side.
//
// The package deals only in raw, already base64-decoded bytes. The SMTP
// session owns the AUTH framing: base64, "=" for an empty initial response,
// "*" to cancel, the 334 challenges and the 235/535 replies. It also decides
// on which listeners (TLS only for PLAIN and LOGIN) a mechanism may be used.
// See docs/sasl.md for the exact exchange shapes.
package sasl

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Mechanism names as they appear in EHLO and AUTH (RFC 4954 §3).
const (
	MechPlain       = "PLAIN"
	MechLogin       = "LOGIN"
	MechScramSHA256 = "SCRAM-SHA-256"
	// MechScramSHA256Plus is SCRAM-SHA-256 with channel binding (RFC 5802
	// §6, RFC 7677): offered only where Options.ChannelBindings has one.
	MechScramSHA256Plus = "SCRAM-SHA-256-PLUS"
)

// Limits on what a peer controls.
const (
	// MaxResponse is the largest decoded response a server mechanism accepts.
	MaxResponse = 16 * 1024
	// MaxSteps is the largest number of Server.Next calls one exchange allows.
	MaxSteps = 4
)

// Error is the type of the package's sentinel errors. It is a string type so
// that the sentinels are constants and cannot be reassigned.
type Error string

func (e Error) Error() string { return string(e) }

// Sentinel errors; compare with errors.Is, since some are wrapped with detail.
const (
	// ErrInvalidCredentials: wrong password, unknown user, bad proof or a
	// refused authorization identity. The session answers 535 5.7.8.
	ErrInvalidCredentials = Error("sasl: invalid credentials")
	// ErrMalformed: the peer's message does not follow the mechanism's grammar
	// or exceeds MaxResponse. The session answers 501 5.5.2.
	ErrMalformed = Error("sasl: malformed message")
	// ErrUnsupportedMechanism: NewServer was given a name this package lacks.
	// The session answers 504 5.5.4.
	ErrUnsupportedMechanism = Error("sasl: unsupported mechanism")
	// ErrTooManySteps: Next was called more than MaxSteps times, or after the
	// exchange had already finished.
	ErrTooManySteps = Error("sasl: too many steps")
	// ErrChannelBinding: a SCRAM channel binding check failed (RFC 5802
	// §6): the binding data differ (a man in the middle), the type is not
	// one this connection offers, or the "y" flag shows that a client able
	// to bind was led to believe the server cannot. Always wrapped
	// together with ErrInvalidCredentials, so the session answers 535.
	ErrChannelBinding = Error("sasl: channel binding check failed")
)

// bindingFailure is the error of a failed channel binding check.
func bindingFailure(detail string) error {
	return fmt.Errorf("%w: %w: %s", ErrInvalidCredentials, ErrChannelBinding, detail)
}

// Credentials is what a server mechanism needs from the account store.
// Usernames are passed on exactly as the client sent them; the store does
// its own normalization (such as lowercasing the domain).
//
// Errors other than ErrInvalidCredentials are treated as failures of the
// store and returned (wrapped) from Server.Next, so that the session can
// answer with a temporary error (454 4.7.0) instead of a 535. The context
// is Next's: a store that has to wait (for a hash slot) gives up with it.
type Credentials interface {
	// CheckPassword verifies a username/password pair (PLAIN, LOGIN).
	// It returns ErrInvalidCredentials on mismatch or unknown user.
	CheckPassword(ctx context.Context, username, password string) error
	// ScramKeys returns the stored SCRAM-SHA-256 keys for username
	// (ErrInvalidCredentials if unknown).
	ScramKeys(ctx context.Context, username string) (ScramKeys, error)
}

// Decoys is implemented by Credentials that can answer SCRAM-SHA-256 for a
// username without an account the way they answer for one with an account
// (RFC 5802 §9). ScramDecoy returns the salt and iteration count to send:
// the same for the same name in every exchange, unpredictable without the
// store's secret, shaped like a real account's. A nil salt means "none";
// then, as for Credentials without Decoys, the mechanism sends a fresh
// random salt, which tells a client that asks twice that the name is
// unknown.
type Decoys interface {
	ScramDecoy(username string) (salt []byte, iterations int)
}

// Server is one server-side exchange.
type Server interface {
	// Next consumes the client's response and returns the next challenge to
	// send in a 334 reply, or done=true when the exchange is over: then
	// err==nil means success (235), else err wraps ErrInvalidCredentials,
	// ErrMalformed, ErrTooManySteps or a Credentials failure.
	//
	// The first call carries the initial response: nil when the client sent
	// none, empty (non-nil) when it sent "=". For SCRAM-SHA-256 the final
	// server message (v=...) is returned as a challenge with done=false, and
	// the client's empty reply to it then finishes the exchange.
	//
	// ctx bounds what Next asks of the Credentials.
	Next(ctx context.Context, response []byte) (challenge []byte, done bool, err error)
	// Username is the authenticated identity after a successful exchange, and
	// "" before that. An authorization identity (PLAIN's authzid, SCRAM's a=)
	// is accepted only when empty or equal to the authentication identity,
	// so Username is always the identity whose password was checked.
	Username() string
	// Identity is the authentication identity the client has claimed so
	// far, verified or not, and "" before it named one: the account an
	// unfinished or failed exchange was aimed at, for the throttle.
	Identity() string
}

// Client is one client-side exchange.
type Client interface {
	// Start returns the mechanism name and the initial response to send with
	// AUTH (nil: send none).
	Start() (mechanism string, initialResponse []byte, err error)
	// Next answers a decoded 334 challenge.
	Next(challenge []byte) (response []byte, err error)
}

// Options adjusts how mechanisms generate random values. The zero value is
// what production uses.
type Options struct {
	// Rand is the source of nonce characters and of the fake salt sent for an
	// unknown SCRAM user. Nil means crypto/rand.Reader. Tests inject a fixed
	// reader to reproduce RFC 7677's example exchange.
	Rand io.Reader
	// NonceLength is the number of characters in a generated SCRAM nonce;
	// zero means DefaultNonceLength. Each character is a printable byte taken
	// from Rand (see docs/sasl.md), so a nonce carries about 6.5 bits per
	// character.
	NonceLength int
	// ChannelBindings are the channel bindings of the connection the
	// exchange runs on (Bindings of its TLS state), preferred first. A
	// server offers SCRAM-SHA-256-PLUS only with one, and then refuses a
	// SCRAM-SHA-256 client that says "y" (RFC 5802 §6: a downgrade). A
	// client uses the first for SCRAM-SHA-256-PLUS; with any and plain
	// SCRAM-SHA-256 it says "y".
	ChannelBindings []ChannelBinding
}

// DefaultNonceLength gives a nonce of about 209 bits, more than 18 random bytes.
const DefaultNonceLength = 32

// maxNonceLength bounds Options.NonceLength.
const maxNonceLength = 256

func (o Options) rand() io.Reader {
	if o.Rand == nil {
		return rand.Reader
	}
	return o.Rand
}

func (o Options) nonceLength() int {
	switch {
	case o.NonceLength <= 0:
		return DefaultNonceLength
	case o.NonceLength > maxNonceLength:
		return maxNonceLength
	}
	return o.NonceLength
}

// Mechanisms lists the server mechanisms in advertising order. RFC 4954 gives
// the order no meaning and clients pick by their own preference; PLAIN comes
// first because every account can use it, LOGIN for old clients, and
// SCRAM-SHA-256 for accounts whose store holds SCRAM keys. Each call returns
// a fresh slice.
func Mechanisms() []string {
	return []string{MechPlain, MechLogin, MechScramSHA256}
}

// NewServer starts a server exchange for mechanism (case-insensitive) with
// default Options.
func NewServer(mechanism string, creds Credentials) (Server, error) {
	return NewServerOptions(mechanism, creds, Options{})
}

// NewServerOptions is NewServer with explicit Options.
func NewServerOptions(mechanism string, creds Credentials, opts Options) (Server, error) {
	switch strings.ToUpper(mechanism) {
	case MechPlain:
		return &plainServer{creds: creds}, nil
	case MechLogin:
		return &loginServer{creds: creds}, nil
	case MechScramSHA256:
		return &scramServer{creds: creds, opts: opts}, nil
	case MechScramSHA256Plus:
		if len(opts.ChannelBindings) == 0 {
			// RFC 5802 §6: -PLUS needs a channel to bind to.
			return nil, fmt.Errorf("%w: %q without a channel binding", ErrUnsupportedMechanism, mechanism)
		}
		return &scramServer{creds: creds, opts: opts, plus: true}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedMechanism, mechanism)
}

// steps enforces the bounds every server mechanism shares: MaxSteps calls,
// MaxResponse bytes, and no calls after the exchange finished.
type steps struct {
	n        int
	finished bool
}

// admit counts one Next call and checks the response size. A non-nil error
// ends the exchange.
func (s *steps) admit(response []byte) error {
	if s.finished {
		return fmt.Errorf("%w: exchange already finished", ErrTooManySteps)
	}
	s.n++
	if s.n > MaxSteps {
		s.finished = true
		return ErrTooManySteps
	}
	if len(response) > MaxResponse {
		s.finished = true
		return fmt.Errorf("%w: response of %d bytes exceeds %d", ErrMalformed, len(response), MaxResponse)
	}
	return nil
}

// finish marks the exchange over and returns Next's done form.
func (s *steps) finish(err error) ([]byte, bool, error) {
	s.finished = true
	return nil, true, err
}

// checkStoreError maps a Credentials error: anything that is
// ErrInvalidCredentials becomes exactly that (no detail leaks to the peer),
// anything else is wrapped as a store failure.
func checkStoreError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrInvalidCredentials):
		return ErrInvalidCredentials
	}
	return fmt.Errorf("sasl: credentials store: %w", err)
}
