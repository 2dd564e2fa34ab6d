package cli

// tlsa.go: `smtpkit tlsa` — the TLSA record (DANE, RFC 7672) to publish
// for our own certificate, as a zone-file line.

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"smtpkit/internal/acmecert"
	"smtpkit/internal/certs"
	"smtpkit/internal/config"
	"smtpkit/internal/dane"
)

const tlsaUsage = `usage: smtpkit tlsa [flags] [CERT.pem]

Print the TLSA record (DANE for SMTP, RFC 7672) to publish for a certificate,
as a zone-file line:

  _25._tcp.mx.example.com. IN TLSA 3 1 1 <sha256 of the public key>

CERT.pem is a PEM certificate chain, leaf first (a fullchain.pem). Without it
the certificate comes from the configuration (-config): the [[tls.certificate]]
whose names cover --host (the one the server presents to a client sending
that name as SNI), else the first; or the generated self-signed certificate.

--usage 3 (DANE-EE, the default) pins the leaf; --usage 2 (DANE-TA) pins the
last certificate of the chain, the issuing CA, which the server must then send
in its chain. Usages 0 and 1 (PKIX-TA, PKIX-EE) are unusable for SMTP
(RFC 7672 §3.1.3) and refused. --selector 1 (the public key, the default)
survives a renewal that keeps the key; 0 pins the whole certificate.
--matching 1 is SHA2-256 (the default), 2 SHA2-512, 0 the full data.

Exit status: 0 printed, 1 the certificate or configuration could not be
read, 2 usage error.

Flags:
`

// tlsaFlags are the parsed command line of `smtpkit tlsa`.
type tlsaFlags struct {
	usage, selector, matching uint
	port                      uint
	host, configPath, file    string
}

func runTLSA(args []string, stdio Stdio) int {
	var f tlsaFlags
	fs := flag.NewFlagSet("tlsa", flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	fs.Usage = func() { fmt.Fprint(stdio.Err, tlsaUsage); fs.PrintDefaults() }
	fs.UintVar(&f.usage, "usage", uint(dane.UsageDANEEE), "certificate usage: 3 DANE-EE (the leaf) or 2 DANE-TA (the issuing CA)")
	fs.UintVar(&f.selector, "selector", uint(dane.SelectorSPKI), "selector: 1 the public key (SPKI) or 0 the whole certificate")
	fs.UintVar(&f.matching, "matching", uint(dane.MatchSHA256), "matching type: 1 SHA2-256, 2 SHA2-512 or 0 the full data")
	fs.UintVar(&f.port, "port", 25, "the TCP port of the TLSA name (_PORT._tcp.HOST)")
	fs.StringVar(&f.host, "host", "", "the MX host name the record is for (default: hostname from the configuration)")
	fs.StringVar(&f.configPath, "config", "", "config file (default "+DefaultConfigPath+", or the built-in development default)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 1 {
		fmt.Fprintf(stdio.Err, "smtpkit tlsa: one certificate file at most, not %d\n", len(pos))
		return 2
	}
	if len(pos) == 1 {
		f.file = pos[0]
	}
	if msg := f.check(); msg != "" {
		fmt.Fprintf(stdio.Err, "smtpkit tlsa: %s\n", msg)
		return 2
	}
	line, err := tlsaLine(f)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit tlsa: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdio.Out, line)
	return 0
}

// check returns what is wrong with the flags, or "".
func (f tlsaFlags) check() string {
	switch {
	case f.usage == uint(dane.UsagePKIXTA) || f.usage == uint(dane.UsagePKIXEE):
		return fmt.Sprintf("--usage %d (PKIX) is unusable for SMTP (RFC 7672 §3.1.3): use 3 (DANE-EE) or 2 (DANE-TA)", f.usage)
	case f.usage != uint(dane.UsageDANETA) && f.usage != uint(dane.UsageDANEEE):
		return fmt.Sprintf("--usage %d: want 3 (DANE-EE) or 2 (DANE-TA)", f.usage)
	case f.selector > 1:
		return fmt.Sprintf("--selector %d: want 1 (public key) or 0 (certificate)", f.selector)
	case f.matching > 2:
		return fmt.Sprintf("--matching %d: want 1 (SHA2-256), 2 (SHA2-512) or 0 (full)", f.matching)
	case f.port < 1 || f.port > 65535:
		return fmt.Sprintf("--port %d: want 1 to 65535", f.port)
	case f.host != "" && !validHostName(strings.TrimSuffix(f.host, ".")):
		return fmt.Sprintf("--host %q is not a host name", f.host)
	}
	return ""
}

// validHostName reports a plausible DNS host name: dot-separated labels
// of letters, digits, '-' and '_', none empty, at most 63 octets each.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// tlsaLine is the zone-file line for f: the certificate chain from the file
// or the configuration, the record of the chosen certificate.
func tlsaLine(f tlsaFlags) (string, error) {
	host := f.host
	var chain []*x509.Certificate
	if f.file != "" && host != "" {
		var err error
		if chain, err = readChain(f.file); err != nil {
			return "", err
		}
	} else {
		cfg, source, err := resolveConfig(f.configPath, nil)
		if err != nil {
			return "", err
		}
		if host == "" {
			host = cfg.Hostname
		}
		if !validHostName(host) {
			return "", fmt.Errorf("hostname %q (%s) is not a host name: give --host", host, source)
		}
		if f.file != "" {
			chain, err = readChain(f.file)
		} else {
			chain, err = configuredChain(cfg, source, host)
		}
		if err != nil {
			return "", err
		}
	}
	cert := chain[0]
	if uint8(f.usage) == dane.UsageDANETA {
		if len(chain) < 2 {
			return "", errors.New("--usage 2 (DANE-TA) pins the issuing CA, and the chain holds only the leaf: use a file with the chain (fullchain.pem), or --usage 3")
		}
		cert = chain[len(chain)-1]
	}
	r := dane.Record(uint8(f.usage), uint8(f.selector), uint8(f.matching), cert)
	owner := fmt.Sprintf("_%d._tcp.%s.", f.port, strings.ToLower(strings.TrimSuffix(host, ".")))
	return owner + " IN TLSA " + dane.Format(r), nil
}

// configuredChain is the chain the server presents to a client asking
// for host by SNI: the [acme] or configured certificate whose names cover
// host, else the first (the default); or the generated self-signed one.
func configuredChain(cfg config.Config, source, host string) ([]*x509.Certificate, error) {
	var files []string
	if cfg.ACME.Enabled() { // served first (acme.go); its key is kept across renewals
		issued := filepath.Join(cfg.DataDir, "acme", acmecert.CertFile)
		if _, err := os.Stat(issued); err != nil && len(cfg.TLS.Certificates) == 0 {
			return nil, fmt.Errorf("%s: the [acme] certificate (%s) is not issued yet: start smtpkit serve once, or give CERT.pem", source, issued)
		} else if err == nil {
			files = append(files, issued)
		}
	}
	for _, c := range cfg.TLS.Certificates {
		files = append(files, c.Cert)
	}
	if len(files) == 0 && cfg.TLS.SelfSigned && !cfg.ACME.Enabled() {
		self := filepath.Join(cfg.DataDir, "tls", certs.SelfSignedCert)
		if _, err := os.Stat(self); err != nil {
			return nil, fmt.Errorf("%s: no certificate configured, and the self-signed one (%s) does not exist yet: start smtpkit serve once, or give CERT.pem", source, self)
		}
		files = append(files, self)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no certificate configured ([[tls.certificate]]): give CERT.pem", source)
	}
	var first []*x509.Certificate
	for i, file := range files {
		chain, err := readChain(file)
		if err != nil {
			return nil, err
		}
		if chain[0].VerifyHostname(host) == nil {
			return chain, nil
		}
		if i == 0 {
			first = chain
		}
	}
	return first, nil
}

// readChain reads the PEM certificates of file, leaf first.
func readChain(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return parseChain(data, file)
}

// parseChain parses the CERTIFICATE blocks of PEM data; name is for errors.
func parseChain(data []byte, name string) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", name, len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate in the file", name)
	}
	return chain, nil
}
