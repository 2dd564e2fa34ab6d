package certs

import (
	"bytes"
	"crypto/x509"
	"strings"
	"time"
)

// Info describes one loaded certificate for operators: the status page
// and the certificate-expiry metric.
type Info struct {
	File       string    // the PEM chain file it was loaded from
	Names      []string  // the leaf's DNS names
	Issuer     string    // the issuer's common name, or the whole issuer
	NotBefore  time.Time // validity
	NotAfter   time.Time
	SelfSigned bool // issued by its own subject
	Default    bool // served to clients without a matching SNI name
}

// Certificates describes the certificates in use, in configuration
// order (the first is the default).
func (s *Store) Certificates() []Info {
	set := s.set.Load()
	out := make([]Info, 0, len(set.all))
	for i, c := range set.all {
		leaf := c.Leaf
		if leaf == nil {
			continue
		}
		out = append(out, info(set.pairs[i].Cert, leaf, i == 0))
	}
	return out
}

func info(file string, leaf *x509.Certificate, def bool) Info {
	issuer := leaf.Issuer.CommonName
	if issuer == "" {
		issuer = leaf.Issuer.String()
	}
	names := append([]string(nil), leaf.DNSNames...)
	for i, n := range names {
		names[i] = strings.ToLower(n)
	}
	return Info{
		File: file, Names: names, Issuer: issuer,
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter,
		SelfSigned: bytes.Equal(leaf.RawIssuer, leaf.RawSubject),
		Default:    def,
	}
}
