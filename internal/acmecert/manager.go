// Package acmecert obtains and renews the server's certificate from an
// ACME certificate authority (RFC 8555) with golang.org/x/crypto/acme:
// one order for the configured names, validated by the tls-alpn-01
// (RFC 8737) or http-01 (RFC 8555 §8.3) challenge on a listener that
// exists only while the CA checks it; the account key, the certificate
// key (kept across renewals, so that a DANE TLSA 3 1 1 record stays
// valid) and the chain in one directory; renewal at two thirds of the
// lifetime; failures logged and retried with backoff while the current
// certificate keeps serving. What serves the certificate is the caller's
// (Options.Install; smtpkit's listeners take it through internal/certs).
package acmecert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Challenge types.
const (
	TLSALPN01 = "tls-alpn-01"
	HTTP01    = "http-01"
)

// orderTimeout bounds one whole attempt (account, order, challenges,
// finalization, download).
const orderTimeout = 5 * time.Minute

// Options configure a Manager.
type Options struct {
	Directory string   // the CA's directory URL
	Email     string   // account contact; "" for none
	Names     []string // DNS names of the certificate; the first is its subject
	Challenge string   // TLSALPN01 or HTTP01
	// ChallengeAddress is where the challenge listener binds during an
	// order ("host:port"; the CA connects to port 443 or 80 of the names).
	ChallengeAddress string
	Dir              string       // where keys and the certificate are kept (created 0700)
	HTTPClient       *http.Client // talks to the CA; nil = http.DefaultClient
	// RetryMin and RetryMax bound the backoff after a failed attempt.
	RetryMin, RetryMax time.Duration
	// Install is called with every certificate obtained (and the stored
	// one, by the caller, at start); it must not block.
	Install func(*tls.Certificate)
	Logger  *slog.Logger
	Now     func() time.Time // nil = time.Now
}

// Manager obtains and renews one certificate.
type Manager struct {
	opts Options
	log  *slog.Logger
}

// New returns a Manager for opts; nothing is read or contacted yet.
func New(opts Options) *Manager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Install == nil {
		opts.Install = func(*tls.Certificate) {}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts.Names = slices.Clone(opts.Names)
	return &Manager{opts: opts, log: log.With("names", strings.Join(opts.Names, ","))}
}

// Stored returns the certificate kept in Dir, or nil when there is none
// or its files do not make a pair (logged; a new certificate replaces
// it). It may be for other names or from another CA than configured now:
// it serves until the new one is issued (see Due).
func (m *Manager) Stored() *tls.Certificate {
	c, err := m.files().loadCert()
	if err != nil {
		m.log.Warn("acme: stored certificate not usable; a new one will be obtained", "err", err)
		return nil
	}
	return c
}

// Due reports why cur must be replaced now — there is none, it does not
// cover every configured name, it came from another directory, or it
// reached RenewAt — or "" when it need not be.
func (m *Manager) Due(cur *tls.Certificate) string {
	switch {
	case cur == nil:
		return "no certificate"
	case covers(cur.Leaf, m.opts.Names) != nil:
		return "the certificate does not cover every name"
	case m.files().directory() != m.opts.Directory:
		return "the certificate is from another directory"
	case !m.opts.Now().Before(RenewAt(cur.Leaf)):
		return "renewal time"
	}
	return ""
}

// Run keeps the certificate current until ctx is done: it obtains one at
// once when Due(cur) says so, else when cur reaches RenewAt; a failure is
// logged and retried after a backoff (RetryMin doubling to RetryMax) while
// cur keeps serving. Every new certificate goes to Options.Install. first,
// when not nil, is closed after the first attempt ends, whatever its
// outcome.
func (m *Manager) Run(ctx context.Context, cur *tls.Certificate, first chan<- struct{}) {
	failures := 0
	for {
		var wait time.Duration
		switch {
		case failures > 0:
			wait = Backoff(failures, m.opts.RetryMin, m.opts.RetryMax)
		case m.Due(cur) == "":
			wait = RenewAt(cur.Leaf).Sub(m.opts.Now())
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		if c := m.attempt(ctx, cur, &failures); c != nil {
			cur = c
		}
		if first != nil {
			close(first)
			first = nil
		}
	}
}

// attempt runs one order: the new certificate, installed and logged, or
// nil with the failure logged and counted.
func (m *Manager) attempt(ctx context.Context, cur *tls.Certificate, failures *int) *tls.Certificate {
	c, err := m.Obtain(ctx)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		*failures++
		attrs := []any{"attempt", *failures, "retry_in", Backoff(*failures, m.opts.RetryMin, m.opts.RetryMax).String(), "err", err}
		if cur != nil {
			attrs = append(attrs, "serving_serial", cur.Leaf.SerialNumber.Text(16), "serving_expires", cur.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		m.log.Error("acme: certificate not obtained; the current certificate keeps serving", attrs...)
		return nil
	}
	*failures = 0
	m.opts.Install(c)
	m.log.Info("acme: certificate installed", "serial", c.Leaf.SerialNumber.Text(16),
		"issuer", c.Leaf.Issuer.CommonName, "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339),
		"renew_at", RenewAt(c.Leaf).UTC().Format(time.RFC3339))
	return c
}

// covers reports whether leaf names every one of names.
func covers(leaf *x509.Certificate, names []string) error {
	for _, n := range names {
		if !slices.ContainsFunc(leaf.DNSNames, func(d string) bool { return strings.EqualFold(d, n) }) {
			return errors.New("certificate does not name " + n)
		}
	}
	return nil
}
