package tlspolicy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"smtpkit/internal/testcert"
	"testing"
	"time"
)

// TestHandshakePerPolicy runs real TLS handshakes over loopback against a
// server with a self-signed certificate for mx.test, using each plan's
// ClientConfig.
func TestHandshakePerPolicy(t *testing.T) {
	cert := selfSigned(t, "mx.test")
	trusted := x509.NewCertPool()
	trusted.AddCert(cert.Leaf)
	tests := []struct {
		name     string
		policy   Policy
		host     string
		roots    *x509.CertPool
		wantCert bool // the handshake fails on the certificate
	}{
		{"opportunistic: encrypts without authenticating", Opportunistic, "mx.test", nil, false},
		{"required: encrypts without authenticating", Required, "mx.test", nil, false},
		{"verify: self-signed rejected", Verify, "mx.test", nil, true},
		{"verify: trusted root accepted", Verify, "mx.test", trusted, false},
		{"verify: trusted root, wrong name", Verify, "other.test", trusted, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveTLS(t, cert)
			plan := Decide(Input{Policy: tt.policy, Host: tt.host, Port: 25})
			conn, err := tls.Dial("tcp", addr, plan.ClientConfig(tt.roots))
			if tt.wantCert {
				var cv *tls.CertificateVerificationError
				if !errors.As(err, &cv) {
					t.Fatalf("handshake: %v, want a certificate verification error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if st := conn.ConnectionState(); st.Version < tls.VersionTLS12 {
				t.Errorf("version %x", st.Version)
			}
		})
	}
}

// TestMinVersion: a server that offers only TLS 1.1 is refused.
func TestMinVersion(t *testing.T) {
	cert := selfSigned(t, "mx.test")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS11})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go acceptOne(ln)
	plan := Decide(Input{Policy: Required, Host: "mx.test", Port: 25})
	if c, err := tls.Dial("tcp", ln.Addr().String(), plan.ClientConfig(nil)); err == nil {
		c.Close()
		t.Fatal("TLS 1.1 accepted")
	}
}

func serveTLS(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go acceptOne(ln)
	return ln.Addr().String()
}

func acceptOne(ln net.Listener) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.(*tls.Conn).Handshake()
}

func selfSigned(t *testing.T, host string) tls.Certificate { return testcert.New(t, host) }
