package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"smtpkit/internal/atomicfile"
	"strings"
	"time"
)

// Self-signed certificate file names inside the directory given to
// EnsureSelfSigned.
const (
	SelfSignedCert = "selfsigned.crt"
	SelfSignedKey  = "selfsigned.key"
)

// selfSignedLifetime is how long a generated certificate is valid;
// renewMargin is how close to expiry an existing one is replaced.
const (
	selfSignedLifetime = 365 * 24 * time.Hour
	renewMargin        = 7 * 24 * time.Hour
)

// EnsureSelfSigned makes sure dir/selfsigned.crt and dir/selfsigned.key
// hold an ECDSA P-256 self-signed certificate for hosts (DNS names and IP
// addresses; localhost, 127.0.0.1 and ::1 are always added), valid for a
// year. An existing pair is reused when it loads, covers every host and
// does not expire within a week; otherwise a new one is written (the key
// with mode 0600) and created is true. dir is created with mode 0700.
func EnsureSelfSigned(dir string, hosts []string) (pair Pair, created bool, err error) {
	return ensureSelfSigned(dir, hosts, time.Now())
}

func ensureSelfSigned(dir string, hosts []string, now time.Time) (Pair, bool, error) {
	pair := Pair{Cert: filepath.Join(dir, SelfSignedCert), Key: filepath.Join(dir, SelfSignedKey)}
	hosts = withLocal(hosts)
	if reusable(pair, hosts, now) {
		return pair, false, nil
	}
	certPEM, keyPEM, err := generate(hosts, now)
	if err != nil {
		return Pair{}, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Pair{}, false, fmt.Errorf("certs: %w", err)
	}
	// Key first: a crash between the renames leaves a mismatched pair,
	// which reusable rejects, so the next start generates again.
	if err := atomicfile.Write(pair.Key, keyPEM, 0o600); err != nil {
		return Pair{}, false, err
	}
	if err := atomicfile.Write(pair.Cert, certPEM, 0o644); err != nil {
		return Pair{}, false, err
	}
	return pair, true, nil
}

// withLocal returns hosts plus the loopback names, without duplicates.
func withLocal(hosts []string) []string {
	var out []string
	for _, h := range append(slices.Clone(hosts), "localhost", "127.0.0.1", "::1") {
		h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// reusable reports whether pair loads, covers hosts and stays valid for
// longer than renewMargin after now.
func reusable(pair Pair, hosts []string, now time.Time) bool {
	c, err := tls.LoadX509KeyPair(pair.Cert, pair.Key)
	if err != nil {
		return false
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil || now.Before(leaf.NotBefore) || now.Add(renewMargin).After(leaf.NotAfter) {
		return false
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(leaf.DNSNames, h) {
			return false
		}
	}
	return true
}

// generate makes a self-signed ECDSA P-256 certificate for hosts, valid
// from an hour before now (clock skew) for selfSignedLifetime, and returns
// it and its PKCS #8 key in PEM.
func generate(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generating key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("certs: serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"smtpkit self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if len(tmpl.DNSNames) > 0 {
		tmpl.Subject.CommonName = tmpl.DNSNames[0]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: creating certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: encoding key: %w", err)
	}
	var c, k bytes.Buffer
	pem.Encode(&c, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	pem.Encode(&k, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return c.Bytes(), k.Bytes(), nil
}

// SelfSigned returns a new self-signed certificate for hosts (loopback
// names added, as EnsureSelfSigned does), in memory only: a stand-in
// until a real one is obtained (ACME at first start).
func SelfSigned(hosts []string) (*tls.Certificate, error) {
	certPEM, keyPEM, err := generate(withLocal(hosts), time.Now())
	if err != nil {
		return nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err == nil && c.Leaf == nil { // x509keypairleaf=0
		c.Leaf, err = x509.ParseCertificate(c.Certificate[0])
	}
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return &c, nil
}
