package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Key sizes for RSA. RFC 8301 §3.2: signers MUST use RSA keys of at least
// 1024 bits and SHOULD use at least 2048; smtpkit refuses less than 2048.
// Verifiers need only handle keys up to 4096 bits (RFC 8301 §3.2), so a
// larger key could make our mail unverifiable: refused too.
const (
	MinRSABits     = 2048
	MaxRSABits     = 4096
	DefaultRSABits = 2048
)

// Algorithms keygen offers: Ed25519-SHA256 (RFC 8463) and RSA-SHA256
// (RFC 6376 §3.3; RFC 8301 §3.1 forbids rsa-sha1 for signing).
const (
	Ed25519 = "ed25519"
	RSA     = "rsa"
)

// ParseKey reads a private key from PEM: "PRIVATE KEY" (PKCS #8, Ed25519
// or RSA) or "RSA PRIVATE KEY" (PKCS #1). An RSA key outside
// MinRSABits..MaxRSABits, any other algorithm, or trailing PEM blocks are
// refused.
func ParseKey(data []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if more, _ := pem.Decode(rest); more != nil {
		return nil, errors.New("more than one PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q: want PRIVATE KEY (PKCS #8) or RSA PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		if n := k.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return nil, fmt.Errorf("RSA key of %d bits: want %d to %d (RFC 8301 §3.2)", n, MinRSABits, MaxRSABits)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("%T key: want Ed25519 or RSA", key)
	}
}

// LoadKey reads the PEM file path with ParseKey.
func LoadKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// GenerateKey makes a new key of algorithm Ed25519 or RSA (bits: 0 is
// DefaultRSABits; ignored for Ed25519).
func GenerateKey(algorithm string, bits int) (crypto.Signer, error) {
	switch algorithm {
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case RSA:
		if bits == 0 {
			bits = DefaultRSABits
		}
		if bits < MinRSABits || bits > MaxRSABits {
			return nil, fmt.Errorf("%d bits: want %d to %d (RFC 8301 §3.2)", bits, MinRSABits, MaxRSABits)
		}
		return rsa.GenerateKey(rand.Reader, bits)
	default:
		return nil, fmt.Errorf("algorithm %q: want %s or %s", algorithm, Ed25519, RSA)
	}
}

// MarshalKey encodes k as a PKCS #8 "PRIVATE KEY" PEM block.
func MarshalKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Record is the DKIM key record (RFC 6376 §3.6.1) that publishes pub:
// "v=DKIM1; k=ed25519; p=<the 32 raw bytes, base64>" (RFC 8463 §4.2) or
// "v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo DER, base64>".
func Record(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k), nil
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	default:
		return "", fmt.Errorf("%T key: want Ed25519 or RSA", pub)
	}
}

// RecordName is where the key record of selector in domain is published:
// <selector>._domainkey.<domain> (RFC 6376 §3.6.2.1).
func RecordName(selector, domain string) string {
	return selector + "._domainkey." + strings.TrimSuffix(domain, ".")
}

// ZoneLine is the record as a zone-file line, the TXT data split into
// character-strings of at most 255 bytes (RFC 1035 §3.3.14; RFC 6376
// §3.6.2.2: verifiers join them without separators):
//
//	s._domainkey.example.com. TXT "v=DKIM1; k=ed25519; p=..."
func ZoneLine(selector, domain, record string) string {
	var b strings.Builder
	b.WriteString(RecordName(selector, domain) + ". TXT")
	for len(record) > 0 {
		n := min(len(record), 255)
		b.WriteString(` "` + record[:n] + `"`)
		record = record[n:]
	}
	return b.String()
}
