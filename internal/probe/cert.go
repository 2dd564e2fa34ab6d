package probe

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"math"
	"time"
)

// inspectTLS describes a finished handshake and checks the server's
// certificate the way the verify policy would, but separately: the chain
// (to roots, nil meaning the system roots, at now) and the name (RFC 6125
// via x509.Certificate.VerifyHostname, which also matches IP SANs).
func inspectTLS(st tls.ConnectionState, name string, roots *x509.CertPool, now time.Time) *TLSInfo {
	info := &TLSInfo{
		Version:    tls.VersionName(st.Version),
		Cipher:     tls.CipherSuiteName(st.CipherSuite),
		ServerName: st.ServerName,
		VerifyName: name,
	}
	if len(st.PeerCertificates) == 0 {
		info.ChainError, info.NameError = "no certificate", "no certificate"
		return info
	}
	leaf := st.PeerCertificates[0]
	info.Certificate = certInfo(leaf, now)
	info.Certificate.Chain = len(st.PeerCertificates)

	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	info.ChainVerified = err == nil
	if err != nil {
		info.ChainError = err.Error()
	}
	if err := leaf.VerifyHostname(name); err != nil {
		info.NameError = err.Error()
	} else {
		info.NameMatches = true
	}
	info.Valid = info.ChainVerified && info.NameMatches
	return info
}

func certInfo(c *x509.Certificate, now time.Time) *CertInfo {
	sans := []string{}
	for _, n := range c.DNSNames {
		sans = append(sans, "DNS:"+n)
	}
	for _, ip := range c.IPAddresses {
		sans = append(sans, "IP:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		sans = append(sans, "email:"+e)
	}
	for _, u := range c.URIs {
		sans = append(sans, "URI:"+u.String())
	}
	sum := sha256.Sum256(c.Raw)
	return &CertInfo{
		Subject:   c.Subject.String(),
		Issuer:    c.Issuer.String(),
		SANs:      sans,
		NotBefore: c.NotBefore.UTC(),
		NotAfter:  c.NotAfter.UTC(),
		DaysLeft:  int(math.Floor(c.NotAfter.Sub(now).Hours() / 24)),
		Serial:    c.SerialNumber.Text(16),
		SHA256:    hex.EncodeToString(sum[:]),
	}
}
