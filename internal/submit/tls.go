package submit

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
)

// TLSMode is how the session with the server uses TLS.
type TLSMode string

// The TLS modes of the client side (smtpkit send --tls, SMTPKIT_TLS).
const (
	TLSNone          TLSMode = "none"          // plaintext
	TLSOpportunistic TLSMode = "opportunistic" // STARTTLS when offered, verified when used
	TLSStartTLS      TLSMode = "starttls"      // STARTTLS required
	TLSImplicit      TLSMode = "implicit"      // TLS from the first byte (RFC 8314 §3.3)
)

// ParseTLSMode reads a TLS mode by its name; "" is DefaultTLSMode(addr).
func ParseTLSMode(s, addr string) (TLSMode, error) {
	switch m := TLSMode(s); m {
	case "":
		return DefaultTLSMode(addr), nil
	case TLSNone, TLSOpportunistic, TLSStartTLS, TLSImplicit:
		return m, nil
	}
	return "", fmt.Errorf("want none, opportunistic, starttls or implicit")
}

// DefaultTLSMode is implicit TLS for port 465 (RFC 8314 §3.3), STARTTLS
// required everywhere else.
func DefaultTLSMode(addr string) TLSMode {
	if _, port, _ := net.SplitHostPort(addr); port == "465" {
		return TLSImplicit
	}
	return TLSStartTLS
}

// TLSConfig verifies the server's certificate against the system roots,
// or the PEM certificates in caFile, for serverName; insecure skips
// verification.
func TLSConfig(caFile, serverName string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate found", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
