package dkim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	ed, rs := testKeys(t)
	edPEM, _ := MarshalKey(ed)
	rsPEM, _ := MarshalKey(rs)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rs.(*rsa.PrivateKey))})
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallDER, _ := x509.MarshalPKCS8PrivateKey(small)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	tests := []struct {
		name string
		pem  []byte
		err  string // "" = accepted
	}{
		{"ed25519 pkcs8", edPEM, ""},
		{"rsa pkcs8", rsPEM, ""},
		{"rsa pkcs1", pkcs1, ""},
		{"rsa 1024", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: smallDER}), "1024 bits"},
		{"ecdsa", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), "want Ed25519 or RSA"},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), "PEM block"},
		{"two blocks", append(append([]byte{}, edPEM...), edPEM...), "more than one"},
		{"not PEM", []byte("hello"), "no PEM"},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), "asn1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey(tt.pem)
			if tt.err == "" {
				if err != nil || k == nil {
					t.Fatalf("ParseKey: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err %v, want %q", err, tt.err)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "k.pem")
	os.WriteFile(path, pkcs1, 0o600)
	if _, err := LoadKey(path); err != nil {
		t.Errorf("LoadKey: %v", err)
	}
	if _, err := LoadKey(path + ".missing"); err == nil {
		t.Error("LoadKey of a missing file")
	}
}

func TestGenerateKey(t *testing.T) {
	tests := []struct {
		alg  string
		bits int
		ok   bool
	}{
		{Ed25519, 0, true}, {RSA, 0, true}, {RSA, 1024, false}, {RSA, 8192, false}, {"dsa", 0, false},
	}
	for _, tt := range tests {
		k, err := GenerateKey(tt.alg, tt.bits)
		if (err == nil) != tt.ok {
			t.Errorf("GenerateKey(%s, %d): %v", tt.alg, tt.bits, err)
		}
		if err == nil {
			if rk, ok := k.(*rsa.PrivateKey); ok && rk.N.BitLen() != DefaultRSABits {
				t.Errorf("default RSA size %d", rk.N.BitLen())
			}
		}
	}
}

func TestRecord(t *testing.T) {
	ed, rs := testKeys(t)
	rec, err := Record(ed.Public())
	if err != nil || !strings.HasPrefix(rec, "v=DKIM1; k=ed25519; p=") {
		t.Fatalf("%q %v", rec, err)
	}
	// RFC 8463 §4.2: p= is the raw 32-byte key, 44 base64 characters.
	if raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(rec, "v=DKIM1; k=ed25519; p=")); len(raw) != 32 {
		t.Errorf("ed25519 p= of %d bytes", len(raw))
	}
	line := ZoneLine("s1", "example.com.", rec)
	if line != `s1._domainkey.example.com. TXT "`+rec+`"` {
		t.Errorf("ZoneLine: %s", line)
	}
	rrec, err := Record(rs.Public())
	if err != nil || !strings.HasPrefix(rrec, "v=DKIM1; k=rsa; p=") {
		t.Fatalf("%q %v", rrec, err)
	}
	rline := ZoneLine("r", "example.com", rrec)
	rest := strings.TrimPrefix(rline, "r._domainkey.example.com. TXT ")
	if rest != `"`+rrec[:255]+`" "`+rrec[255:]+`"` {
		t.Errorf("RSA record not split into 255-byte strings: %s", rline)
	}
}

func TestCheck(t *testing.T) {
	ed, rs := testKeys(t)
	edRec, _ := Record(ed.Public())
	rsRec, _ := Record(rs.Public())
	k := Key{Domain: "example.com", Selector: "s", Signer: ed}
	tests := []struct {
		name    string
		key     Key
		records []string
		ok      bool
	}{
		{"ed25519 matches", k, []string{edRec}, true},
		{"rsa matches", Key{Domain: "example.com", Selector: "r", Signer: rs}, []string{rsRec}, true},
		{"other key", k, []string{rsRec}, false},
		{"revoked", k, []string{"v=DKIM1; k=ed25519; p="}, false},
		{"garbage", k, []string{"hello"}, false},
		{"none", k, nil, false},
		{"two", k, []string{edRec, edRec}, false},
		{"wrong k=", k, []string{strings.Replace(edRec, "k=ed25519", "k=rsa", 1)}, false},
	}
	for _, tt := range tests {
		if err := Check(tt.key, tt.records); (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
