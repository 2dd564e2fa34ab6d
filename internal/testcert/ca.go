package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// CA is a throwaway certificate authority for tests that need a chain: a
// root (NewCA), optionally intermediates below it (Intermediate), and leaf
// certificates they issue (Issue).
type CA struct {
	Cert  *x509.Certificate
	Key   *ecdsa.PrivateKey
	chain [][]byte // DER: this CA, then its issuers up to the root
}

// NewCA returns a self-signed root CA named name, valid from an hour ago
// for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	return sign(t, nil, &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil)
}

// Intermediate returns a CA named name issued by ca.
func (ca *CA) Intermediate(t testing.TB, name string) *CA {
	t.Helper()
	return sign(t, ca, &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil)
}

// Issue returns a server certificate for names (DNS names or IP addresses;
// the first is also the common name) issued by ca, valid from an hour ago
// for a day. Its Certificate holds the chain a server presents: the leaf,
// then ca and ca's issuers up to and including the root.
func (ca *CA) Issue(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	return ca.IssueWith(t, nil, names...)
}

// IssueWith is Issue with edit applied to the leaf's template before it is
// signed (expired certificates, other validity dates, no SANs).
func (ca *CA) IssueWith(t testing.TB, edit func(*x509.Certificate), names ...string) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: names[0]},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	leaf := sign(t, ca, tmpl, edit)
	return tls.Certificate{Certificate: leaf.chain, PrivateKey: leaf.Key, Leaf: leaf.Cert}
}

// Pool is a certificate pool trusting ca.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// sign creates the certificate of tmpl with a new key, issued by parent
// (nil: self-signed).
func sign(t testing.TB, parent *CA, tmpl *x509.Certificate, edit func(*x509.Certificate)) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if edit != nil {
		edit(tmpl)
	}
	issuer, issuerKey := tmpl, key
	if parent != nil {
		issuer, issuerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	c := &CA{Cert: cert, Key: key, chain: [][]byte{der}}
	if parent != nil {
		c.chain = append(c.chain, parent.chain...)
	}
	return c
}
