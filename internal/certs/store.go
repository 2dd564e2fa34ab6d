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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Pair names a PEM certificate chain file and its private key file.
type Pair struct {
	Cert string
	Key  string
}

// Store serves certificates by SNI. It is safe for concurrent use; Reload
// and SetManaged swap the whole set atomically, so handshakes in progress
// keep the set they started with.
type Store struct {
	set atomic.Pointer[certSet]
	mu  sync.Mutex // serializes the writers (Reload, ReloadPairs, SetManaged)
}

// certSet is one loaded generation of certificates.
type certSet struct {
	pairs   []Pair                        // the files this set was loaded from
	files   []*tls.Certificate            // loaded from pairs, in Pair order
	managed []*tls.Certificate            // obtained at run time (ACME), served before the files
	source  string                        // what the managed certificates are, for Certificates
	all     []*tls.Certificate            // managed, then files; all[0] is the default
	names   map[string][]*tls.Certificate // lower-case SAN (DNS name, "*.x" for wildcards) → certificates in all's order
}

// Load reads every pair. The first pair is the default, served to clients
// that send no SNI or a name no certificate covers.
func Load(pairs []Pair) (*Store, error) {
	if len(pairs) == 0 {
		return nil, errors.New("certs: no certificate configured")
	}
	return New(pairs, "", nil)
}

// New is Load with managed certificates (see SetManaged) served before
// the files; pairs may be empty when managed is not.
func New(pairs []Pair, source string, managed []*tls.Certificate) (*Store, error) {
	if len(pairs) == 0 && len(managed) == 0 {
		return nil, errors.New("certs: no certificate configured")
	}
	files, err := load(pairs)
	if err != nil {
		return nil, err
	}
	s := &Store{}
	s.set.Store(index(pairs, files, source, managed))
	return s, nil
}

func load(pairs []Pair) ([]*tls.Certificate, error) {
	var all []*tls.Certificate
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
		all = append(all, &c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return all, nil
}

// index builds the set serving managed, then files.
func index(pairs []Pair, files []*tls.Certificate, source string, managed []*tls.Certificate) *certSet {
	set := &certSet{pairs: pairs, files: files, managed: managed, source: source,
		names: map[string][]*tls.Certificate{}}
	set.all = append(slices.Clone(managed), files...)
	for _, c := range set.all {
		for _, n := range c.Leaf.DNSNames {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			set.names[n] = append(set.names[n], c)
		}
	}
	return set
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
// set while established sessions are unaffected. Managed certificates are
// kept.
func (s *Store) Reload() error {
	return s.ReloadPairs(s.set.Load().pairs)
}

// ReloadPairs replaces the configured files with pairs and loads them, with
// Reload's all-or-nothing semantics (a config reload that changed the
// certificate list). pairs may be empty while managed certificates serve.
func (s *Store) ReloadPairs(pairs []Pair) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.set.Load()
	if len(pairs) == 0 && len(cur.managed) == 0 {
		return errors.New("certs: no certificate configured")
	}
	pairs = append([]Pair(nil), pairs...)
	files, err := load(pairs)
	if err != nil {
		return err
	}
	s.set.Store(index(pairs, files, cur.source, cur.managed))
	return nil
}

// SetManaged replaces the managed certificates — those a program obtains
// while running, such as from ACME — with cs, each with its Leaf set;
// source names them in Certificates. They are served before the files (the
// first is the default). Established sessions keep the certificate they
// were handshaken with.
func (s *Store) SetManaged(source string, cs ...*tls.Certificate) error {
	for _, c := range cs {
		if c == nil || c.Leaf == nil || len(c.Certificate) == 0 {
			return errors.New("certs: a managed certificate needs its chain and parsed leaf")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.set.Load()
	if len(cs) == 0 && len(cur.files) == 0 {
		return errors.New("certs: no certificate configured")
	}
	s.set.Store(index(cur.pairs, cur.files, source, slices.Clone(cs)))
	return nil
}

// Info describes one certificate the store serves, for logs and status
// pages.
type Info struct {
	Source    string    // the certificate file, or the managed certificates' source ("acme")
	Names     []string  // DNS SANs, then IP SANs
	Serial    string    // hexadecimal
	Issuer    string    // the issuer's common name (or whole name)
	NotBefore time.Time //
	NotAfter  time.Time //
}

// Certificates lists what the store serves, in the order it prefers them
// (the first is the default).
func (s *Store) Certificates() []Info {
	set := s.set.Load()
	out := make([]Info, 0, len(set.all))
	for i, c := range set.all {
		src := set.source
		if i >= len(set.managed) {
			src = set.pairs[i-len(set.managed)].Cert
		}
		l := c.Leaf
		names := slices.Clone(l.DNSNames)
		for _, ip := range l.IPAddresses {
			names = append(names, ip.String())
		}
		issuer := l.Issuer.CommonName
		if issuer == "" {
			issuer = l.Issuer.String()
		}
		out = append(out, Info{Source: src, Names: names, Serial: l.SerialNumber.Text(16), Issuer: issuer,
			NotBefore: l.NotBefore, NotAfter: l.NotAfter})
	}
	return out
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
