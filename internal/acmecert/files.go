package acmecert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"smtpkit/internal/atomicfile"
)

// The files in Options.Dir.
const (
	AccountKeyFile = "account.key" // the ACME account's key (0600), made once
	KeyFile        = "key.pem"     // the certificate's key (0600), made once and kept across renewals
	CertFile       = "cert.pem"    // the chain, leaf first (0644), replaced at every issuance
	DirectoryFile  = "directory"   // the directory URL cert.pem came from, written after it
)

// files is the directory a Manager keeps its state in.
type files struct{ dir string }

func (m *Manager) files() files { return files{m.opts.Dir} }

func (f files) path(name string) string { return filepath.Join(f.dir, name) }

// key returns the ECDSA P-256 key in name, generating and storing it
// (mode 0600, in a 0700 directory) when the file does not exist. A file
// that exists but does not parse is an error, not replaced: it may be an
// operator's key.
func (f files) key(name string) (crypto.Signer, error) {
	p := f.path(name)
	b, err := os.ReadFile(p)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("acme: %s: no PEM block", p)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("acme: %s: %w", p, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("acme: %s: not a signing key", p)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("acme: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("acme: generating %s: %w", name, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	if err := atomicfile.Write(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	return k, nil
}

// saveCert writes the chain (DER, leaf first) durably, then the
// directory it came from (a crash between them leaves the certificate
// "from another directory": replaced at the next start, never lost).
func (f files) saveCert(chain [][]byte, directory string) error {
	var b bytes.Buffer
	for _, der := range chain {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	if err := atomicfile.Write(f.path(CertFile), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	if err := atomicfile.Write(f.path(DirectoryFile), []byte(directory+"\n"), 0o644); err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	return nil
}

// directory is the directory URL the stored certificate came from, "" if
// unknown.
func (f files) directory() string {
	b, err := os.ReadFile(f.path(DirectoryFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// loadCert returns the stored certificate with its key, nil when there is
// none yet, or an error when the files do not make a pair.
func (f files) loadCert() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(f.path(CertFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(f.path(KeyFile))
	if err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if c.Leaf == nil { // x509keypairleaf=0
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &c, nil
}
