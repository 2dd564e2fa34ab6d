package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"smtpkit/internal/smtp"
)

// ErrNoStartTLS: the server's EHLO reply does not offer STARTTLS (or the
// client said HELO). Nothing was sent; the connection is usable in plaintext.
var ErrNoStartTLS = errors.New("client: server does not offer STARTTLS")

// ErrTLSActive: StartTLS on a connection that already has TLS.
var ErrTLSActive = errors.New("client: TLS is already active")

// TLSError is a failed STARTTLS or implicit-TLS handshake.
//
// When Refused is true the server answered STARTTLS with Reply (4xx/5xx,
// e.g. 454 "TLS not available"); RFC 3207 §4 leaves the session in
// plaintext and the connection usable. Otherwise the handshake itself
// failed (Err), the connection is closed, and Certificate tells whether the
// cause was the server's certificate failing verification.
type TLSError struct {
	Refused bool
	Reply   smtp.Reply
	Err     error
}

func (e *TLSError) Error() string {
	if e.Refused {
		return "client: STARTTLS refused: " + smtp.Wrap(e.Reply, nil).Error()
	}
	return "client: TLS handshake: " + e.Err.Error()
}

func (e *TLSError) Unwrap() error { return e.Err }

// Certificate reports a handshake that failed because the server's
// certificate did not verify (unknown authority, wrong name, expired).
func (e *TLSError) Certificate() bool {
	var (
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(e.Err, &cv) || errors.As(e.Err, &ua) || errors.As(e.Err, &he) || errors.As(e.Err, &ci)
}

// StartTLS upgrades the connection (RFC 3207): STARTTLS, 220, the
// handshake with cfg, then EHLO again, because everything learned before
// TLS must be forgotten (§4.2). Errors: ErrNoStartTLS when not offered
// (nothing sent), *TLSError with Refused when the server declines (still
// usable in plaintext), *TLSError for a failed handshake (connection
// closed), *smtp.Error when the EHLO after TLS fails.
func (c *Conn) StartTLS(cfg *tls.Config) error {
	if c.tlsOn {
		return ErrTLSActive
	}
	if _, ok := c.Ext("STARTTLS"); !ok {
		return ErrNoStartTLS
	}
	rep, err := c.roundTrip("STARTTLS", c.t.Command)
	if err != nil {
		return err
	}
	if rep.Code != smtp.CodeReady {
		return &TLSError{Refused: true, Reply: rep, Err: smtp.Wrap(rep, nil)}
	}
	// Anything the server sent after its 220 arrived before TLS and must not
	// be read as if it came through TLS (the STARTTLS injection of
	// CVE-2011-0411, from the client's side).
	if n := c.r.Buffered(); n > 0 {
		c.Close()
		return &TLSError{Err: fmt.Errorf("server sent %d octets after its 220 to STARTTLS", n)}
	}
	if err := c.handshake(cfg); err != nil {
		c.Close()
		return &TLSError{Err: err}
	}
	c.ext, c.ehlo = nil, smtp.Reply{}
	return c.Hello()
}

// handshake runs the TLS client handshake over the current connection
// within the Command timeout and switches reads and writes to it.
func (c *Conn) handshake(cfg *tls.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.t.Command)
	defer cancel()
	c.mu.Lock()
	raw := c.nc
	c.mu.Unlock()
	if err := raw.SetDeadline(time.Now().Add(c.t.Command)); err != nil {
		return err
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.nc = tc
	c.mu.Unlock()
	c.r = bufio.NewReader(tc)
	c.w = bufio.NewWriterSize(tc, writeBufSize)
	c.tlsOn, c.tlsState = true, tc.ConnectionState()
	return nil
}
