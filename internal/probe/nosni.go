package probe

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"

	"smtpkit/internal/client"
)

// noSNI makes a second connection that reaches TLS the same way (implicit
// TLS, or EHLO then STARTTLS) but sends no server_name extension (RFC 6066
// §3), and records whether the server still presents a certificate and
// which. It runs only after a first handshake that sent SNI; it reuses the
// port's deadline.
func (p *prober) noSNI() {
	first := p.r.TLS
	if first == nil || first.ServerName == "" {
		return
	}
	info := &NoSNIInfo{}
	p.r.NoSNI = info
	p.note("second connection, TLS without SNI")
	st, err := p.handshakeWithoutSNI()
	if err != nil {
		info.Error = describe(err)
		if p.ctx.Err() != nil {
			info.Error = "timeout"
		}
		p.note("without SNI: %s", info.Error)
		return
	}
	if len(st.PeerCertificates) == 0 {
		return
	}
	leaf := st.PeerCertificates[0]
	sum := sha256.Sum256(leaf.Raw)
	info.Presented, info.SHA256 = true, hex.EncodeToString(sum[:])
	info.SameCertificate = first.Certificate != nil && first.Certificate.SHA256 == info.SHA256
	info.NameMatches = leaf.VerifyHostname(first.VerifyName) == nil
}

// handshakeWithoutSNI connects again and returns the TLS state of a
// handshake without SNI.
func (p *prober) handshakeWithoutSNI() (tls.ConnectionState, error) {
	nc, err := p.opts.Dialer.DialContext(p.ctx, "tcp", p.r.Address)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	stop := closeOnDone(p.ctx, nc)
	defer stop()
	defer nc.Close()
	cfg := p.tlsConfig()
	cfg.ServerName = ""
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		p.note("TLS handshake without SNI done: %s, %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite))
		return nil
	}
	copts := client.Options{LocalName: p.opts.EHLOName, Transcript: p.tr, Timeouts: stepTimeouts(p.opts.Timeout)}
	if p.plan.Implicit {
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(p.ctx); err != nil {
			return tls.ConnectionState{}, err
		}
		st := tc.ConnectionState()
		if c, err := client.NewConn(tc, copts); err == nil {
			c.Quit()
		}
		return st, nil
	}
	c, err := client.NewConn(nc, copts)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	if err := c.Hello(); err != nil {
		return tls.ConnectionState{}, err
	}
	err = c.StartTLS(cfg)
	var te *client.TLSError
	if errors.As(err, &te) {
		if te.Refused {
			return tls.ConnectionState{}, te
		}
		return tls.ConnectionState{}, te.Err
	}
	st, ok := c.TLSState()
	if !ok {
		return tls.ConnectionState{}, errors.New("no TLS")
	}
	c.Quit()
	return st, nil
}
