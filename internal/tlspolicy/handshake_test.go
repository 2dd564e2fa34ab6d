package tlspolicy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"smtpkit/internal/dane"
	"smtpkit/internal/dns"
	"smtpkit/internal/testcert"
	"smtpkit/internal/tlsrpt"
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

// TestHandshakeDANE: real handshakes under DANE plans. A DANE-EE record
// for a self-signed certificate is enough (names and roots do not
// matter); a record for another key fails the handshake with an error
// TLS-RPT can classify; an MTA-STS testing plan's handshake succeeds and
// Audit reports the untrusted certificate.
func TestHandshakeDANE(t *testing.T) {
	cert := selfSigned(t, "other.test")
	wrong := selfSigned(t, "mx.test")
	tests := []struct {
		name   string
		record dns.TLSA
		want   tlsrpt.ResultType // "" = handshake succeeds
	}{
		{"DANE-EE SPKI match, self-signed, wrong name", dane.Record(3, 1, 1, cert.Leaf), ""},
		{"DANE-EE full cert SHA-512 match", dane.Record(3, 0, 2, cert.Leaf), ""},
		{"DANE-EE mismatch", dane.Record(3, 1, 1, wrong.Leaf), tlsrpt.ValidationFailure},
		{"DANE-TA naming the self-signed leaf itself: no trust anchor", dane.Record(2, 1, 1, cert.Leaf), tlsrpt.ValidationFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveTLS(t, cert)
			plan := Decide(Input{Policy: Opportunistic, Host: "mx.test", Port: 25,
				DANE: &DANE{Records: []dns.TLSA{tt.record}, Names: []string{"mx.test"}}})
			conn, err := tls.Dial("tcp", addr, plan.ClientConfig(nil))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				conn.Close()
				return
			}
			if err == nil {
				conn.Close()
				t.Fatal("handshake succeeded")
			}
			if got := FailureResult(Certificate, err); got != tt.want {
				t.Errorf("result %q (%v), want %q", got, err, tt.want)
			}
		})
	}

	t.Run("MTA-STS testing audit", func(t *testing.T) {
		addr := serveTLS(t, wrong) // self-signed for mx.test
		plan := Decide(Input{Policy: Opportunistic, Host: "mx.test", Port: 25, STS: &STS{Domain: "test", MatchesMX: true}})
		conn, err := tls.Dial("tcp", addr, plan.ClientConfig(nil))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		err = plan.Audit(conn.ConnectionState(), nil, time.Now())
		if got := ResultOf(err); err == nil || got != tlsrpt.CertificateNotTrusted {
			t.Errorf("audit %v (%q), want certificate-not-trusted", err, got)
		}
		if err := plan.Audit(conn.ConnectionState(), testcert.Pool(wrong), time.Now()); err != nil {
			t.Errorf("audit with the cert trusted: %v", err)
		}
		other := Decide(Input{Policy: Opportunistic, Host: "other.test", Port: 25, STS: &STS{Domain: "test", MatchesMX: true}})
		if err := other.Audit(conn.ConnectionState(), testcert.Pool(wrong), time.Now()); ResultOf(err) != tlsrpt.CertificateHostMismatch {
			t.Errorf("audit for another name: %v, want a host mismatch", err)
		}
	})
}
