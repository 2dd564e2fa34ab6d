// Package submit hands one message to one SMTP server, as `smtpkit send`
// and `smtpkit sendmail` do: connect, TLS as asked, AUTH, one transaction
// with a line of progress per step, and what the server said to each
// recipient. It also turns what a local program hands to sendmail into an
// envelope and a message (prepare.go).
//
// It knows neither the config nor exit codes: the commands in internal/cli
// fill a Target from their flags or the config and map an Outcome to their
// exit codes.
package submit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"smtpkit/internal/client"
	"smtpkit/internal/sasl"
)

// Target is how to reach one server and what to say to it.
type Target struct {
	Addr      string // host:port
	TLSMode   TLSMode
	TLSConfig *tls.Config
	EHLO      string
	// Timeout limits each step of the conversation.
	Timeout time.Duration
	// Transcript, when set, receives the SMTP transcript (credentials
	// hidden by the client).
	Transcript io.Writer
	// AUTH: none when User is empty; Mech "" = the best the server offers.
	User, Password, Mech string
	// GreetingTimeout is how long a plaintext connection waits for the
	// 220 greeting; 0 means DefaultGreetingTimeout (at most Timeout). A
	// server speaking implicit TLS says nothing until the client starts
	// TLS: the wait ends in a *NoGreetingError instead of Timeout's.
	GreetingTimeout time.Duration
}

// DefaultGreetingTimeout is the plaintext greeting wait: longer than the
// greeting delays servers use against early talkers (Postfix's postscreen
// waits 6 s), far shorter than RFC 5321 §4.5.3.2.1's 5 minutes, which
// serve a client that has nothing better to do.
const DefaultGreetingTimeout = 10 * time.Second

// NoGreetingError is a plaintext connection on which no greeting came:
// most likely a port that speaks implicit TLS (RFC 8314 §3.3). The
// commands add the setting that fixes it (--tls implicit, SMTPKIT_TLS).
type NoGreetingError struct {
	Addr  string
	After time.Duration
	Err   error
}

func (e *NoGreetingError) Error() string {
	return fmt.Sprintf("no greeting from %s within %s: the port may speak implicit TLS (as 465 does), where the server waits for the client's TLS handshake", e.Addr, e.After)
}

func (e *NoGreetingError) Unwrap() error { return e.Err }

// Open connects, says EHLO, sets up TLS as t.TLSMode asks and
// authenticates, reporting each step on progress. A failed AUTH is an
// *AuthError; every other error is a connection, TLS or protocol failure.
func Open(ctx context.Context, t Target, progress io.Writer) (*client.Conn, error) {
	opts := client.Options{
		LocalName: t.EHLO, Transcript: t.Transcript,
		// RFC 4954 §4: credentials only over TLS, unless the user asked
		// for plaintext.
		AllowPlaintextAuth: t.TLSMode == TLSNone,
		Timeouts: client.Timeouts{Connect: t.Timeout, Greeting: t.Timeout, Mail: t.Timeout, Rcpt: t.Timeout,
			DataInit: t.Timeout, DataBlock: t.Timeout, DataEnd: t.Timeout, Command: t.Timeout},
	}
	var c *client.Conn
	var err error
	if t.TLSMode == TLSImplicit {
		c, err = client.DialTLS(ctx, t.Addr, t.TLSConfig, opts)
	} else {
		c, err = dialPlain(ctx, t, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", t.Addr, err)
	}
	if err := setup(c, t, progress); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// dialPlain connects and waits GreetingTimeout for the greeting; a wait
// that times out is a *NoGreetingError.
func dialPlain(ctx context.Context, t Target, opts client.Options) (*client.Conn, error) {
	wait := t.GreetingTimeout
	if wait <= 0 {
		wait = DefaultGreetingTimeout
	}
	if t.Timeout > 0 && t.Timeout < wait {
		wait = t.Timeout
	}
	opts.Timeouts.Greeting = wait
	cctx := ctx
	if opts.Timeouts.Connect > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, opts.Timeouts.Connect)
		defer cancel()
	}
	nc, err := (&net.Dialer{}).DialContext(cctx, "tcp", t.Addr)
	if err != nil {
		return nil, err
	}
	c, err := client.NewConn(nc, opts)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, &NoGreetingError{Addr: t.Addr, After: wait, Err: err}
	}
	return c, err
}

// setup runs EHLO, STARTTLS and AUTH on a new connection.
func setup(c *client.Conn, t Target, progress io.Writer) error {
	if err := c.Hello(); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if t.TLSMode == TLSStartTLS || t.TLSMode == TLSOpportunistic {
		err := c.StartTLS(t.TLSConfig)
		var te *client.TLSError
		switch {
		case err == nil:
		case t.TLSMode == TLSOpportunistic && (errors.Is(err, client.ErrNoStartTLS) || errors.As(err, &te) && te.Refused):
			fmt.Fprintf(progress, "STARTTLS not available (%v): continuing without TLS\n", err)
		case errors.Is(err, client.ErrNoStartTLS):
			return fmt.Errorf("%s does not offer STARTTLS, which --tls %s requires", t.Addr, t.TLSMode)
		default:
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if st, ok := c.TLSState(); ok {
		fmt.Fprintf(progress, "connected to %s with %s (%s)\n", t.Addr, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	} else {
		fmt.Fprintf(progress, "connected to %s without TLS\n", t.Addr)
	}
	if t.User == "" {
		return nil
	}
	offered, _ := c.Ext("AUTH")
	mech, err := Mechanism(t.Mech, offered)
	if err != nil {
		return &AuthError{err}
	}
	cb := c.ChannelBindings()
	if mech == sasl.MechScramSHA256Plus && len(cb) == 0 && t.Mech == "" {
		// -PLUS offered where our side of the channel gives no binding
		// (TLS 1.2 resumed without extended master secret): plain SCRAM.
		mech = sasl.MechScramSHA256
	}
	if err := c.Auth(saslClient(mech, t.User, t.Password, cb, offered)); err != nil {
		return &AuthError{err}
	}
	fmt.Fprintf(progress, "authenticated as %s with %s\n", t.User, mech)
	return nil
}
