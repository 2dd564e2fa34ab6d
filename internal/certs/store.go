// Package certs holds the server's TLS certificates: loaded from PEM files,
// chosen by the SNI name a client sends (RFC 6066 §3), reloaded in place
// without dropping sessions, and — for development — a generated
// self-signed certificate.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// Pair names a PEM certificate chain file and its private key file.
type Pair struct {
	Cert string
	Key  string
}

// Store serves certificates by SNI. It is safe for concurrent use; Reload
// swaps the whole set atomically, so handshakes in progress keep the set
// they started with.
type Store struct {
	set atomic.Pointer[certSet]
}

// certSet is one loaded generation of certificates.
type certSet struct {
	pairs []Pair                        // the files this set was loaded from
	all   []*tls.Certificate            // in Pair order; all[0] is the default
	names map[string][]*tls.Certificate // lower-case SAN (DNS name, "*.x" for wildcards) → certificates in Pair order
}

// Load reads every pair. The first pair is the default, served to clients
// that send no SNI or a name no certificate covers.
func Load(pairs []Pair) (*Store, error) {
	if len(pairs) == 0 {
		return nil, errors.New("certs: no certificate configured")
	}
	s := &Store{}
	if err := s.ReloadPairs(pairs); err != nil {
		return nil, err
	}
	return s, nil
}

func load(pairs []Pair) (*certSet, error) {
	set := &certSet{names: map[string][]*tls.Certificate{}}
	var errs []error
	for _, p := range pairs {
		c, err := tls.LoadX509KeyPair(p.Cert, p.Key)
		if err != nil {
			errs = append(errs, fmt.Errorf("certs: %s and %s: %w", p.Cert, p.Key, err))
			continue
		}
		if c.Leaf == nil { // Go fills Leaf since 1.23; parse in case x509keypairleaf=0.
			if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				errs = append(errs, fmt.Errorf("certs: %s: %w", p.Cert, err))
				continue
			}
		}
		set.all = append(set.all, &c)
		for _, n := range c.Leaf.DNSNames {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			set.names[n] = append(set.names[n], &c)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// GetCertificate implements tls.Config.GetCertificate: the certificate
// whose DNS SAN equals the SNI name, else one whose wildcard SAN
// ("*.example.com") covers it (one label only, RFC 6125 §6.4.3), else the
// default. Among several matches it takes the first, in configuration
// order, that the client supports (an ECDSA and an RSA certificate for the
// same name can coexist).
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := s.set.Load()
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" {
		if c := pick(hello, set.names[name]); c != nil {
			return c, nil
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if c := pick(hello, set.names["*"+name[i:]]); c != nil {
				return c, nil
			}
		}
	}
	if c := pick(hello, set.all); c != nil {
		return c, nil
	}
	return set.all[0], nil
}

// pick returns the first of cs the client supports, else the first of cs,
// else nil.
func pick(hello *tls.ClientHelloInfo, cs []*tls.Certificate) *tls.Certificate {
	for _, c := range cs {
		if hello.SupportsCertificate(c) == nil {
			return c
		}
	}
	if len(cs) > 0 {
		return cs[0]
	}
	return nil
}

// Reload re-reads the files. On any error the current certificates stay
// in use and the error is returned; on success new handshakes use the new
// set while established sessions are unaffected.
func (s *Store) Reload() error {
	return s.ReloadPairs(s.set.Load().pairs)
}

// ReloadPairs replaces the configured files with pairs and loads them, with
// Reload's all-or-nothing semantics (a config reload that changed the
// certificate list).
func (s *Store) ReloadPairs(pairs []Pair) error {
	if len(pairs) == 0 {
		return errors.New("certs: no certificate configured")
	}
	pairs = append([]Pair(nil), pairs...)
	set, err := load(pairs)
	if err != nil {
		return err
	}
	set.pairs = pairs
	s.set.Store(set)
	return nil
}

// ServerConfig returns a server tls.Config serving s's certificates with
// TLS 1.2 as the minimum (RFC 8996 deprecates 1.0 and 1.1; RFC 8314 §4.1).
// Session tickets are off unless sessionTickets is set (golang/go#70232).
func ServerConfig(s *Store, sessionTickets bool) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS12,
		GetCertificate:         s.GetCertificate,
		SessionTicketsDisabled: !sessionTickets,
	}
}
