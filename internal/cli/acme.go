package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"smtpkit/internal/acmecert"
	"smtpkit/internal/certs"
	"smtpkit/internal/config"
)

// acmeStartWait is how long serve waits at start for a first certificate
// when none is stored; after it the listeners start with a self-signed
// stand-in, replaced as soon as the CA issues.
const acmeStartWait = 30 * time.Second

// acmeSource names the ACME certificate in certs.Store.Certificates.
const (
	acmeSource        = "acme"
	acmeStandInSource = "acme (self-signed stand-in until issued)"
)

// acmeTimeout bounds one request to the CA.
const acmeTimeout = 30 * time.Second

// startACME is [acme] (docs/operations.md, "Certificates by ACME"): the
// store serves the certificate kept in <data_dir>/acme (or a self-signed
// stand-in until the first one is issued) before the [[tls.certificate]]
// files, and acmecert keeps it renewed in the background, swapping each
// new one into the store; d.stopACME ends that. When nothing is stored,
// start-up waits up to acmeStartWait for the first certificate, and so
// it does when the stored one is for other names or from another
// directory (acme.names or acme.directory changed; it serves meanwhile)
// or past its renewal time.
func (d *daemon) startACME(cfg config.Config, pairs []certs.Pair, log *slog.Logger) error {
	hc, err := acmeHTTPClient(cfg.ACME.CA)
	if err != nil {
		return err
	}
	names := cfg.ACMENames()
	m := acmecert.New(acmecert.Options{
		Directory:        cfg.ACME.Directory,
		Email:            cfg.ACME.Email,
		Names:            names,
		Challenge:        cfg.ACME.Challenge,
		ChallengeAddress: cfg.ACMEChallengeAddress(),
		Dir:              filepath.Join(cfg.DataDir, "acme"),
		HTTPClient:       hc,
		RetryMin:         cfg.ACME.RetryMin.D(),
		RetryMax:         cfg.ACME.RetryMax.D(),
		Logger:           log,
		Install: func(c *tls.Certificate) {
			if err := d.certs.SetManaged(acmeSource, c); err != nil {
				log.Error("acme: certificate not installed", "err", err)
			}
		},
	})
	stored := m.Stored()
	serving, source := stored, acmeSource
	if stored != nil {
		log.Info("acme: using the stored certificate", "names", strings.Join(names, ","),
			"serial", stored.Leaf.SerialNumber.Text(16), "not_after", stored.Leaf.NotAfter.UTC().Format(time.RFC3339),
			"renew_at", acmecert.RenewAt(stored.Leaf).UTC().Format(time.RFC3339))
	} else {
		if serving, err = certs.SelfSigned(names); err != nil {
			return err
		}
		source = acmeStandInSource
	}
	if d.certs, err = certs.New(pairs, source, []*tls.Certificate{serving}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	first, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); m.Run(ctx, stored, first) }()
	d.stopACME = func() { cancel(); <-done }
	if reason := m.Due(stored); reason != "" {
		log.Info("acme: ordering a certificate", "reason", reason, "directory", cfg.ACME.Directory,
			"names", strings.Join(names, ","), "challenge", cfg.ACME.Challenge, "challenge_address", cfg.ACMEChallengeAddress())
		select {
		case <-first:
		case <-time.After(acmeStartWait):
		}
		if c := d.certs.Certificates(); len(c) > 0 && c[0].Source == acmeStandInSource {
			log.Warn("acme: no certificate yet; serving a self-signed stand-in until one is issued (retried with backoff)")
		}
	}
	return nil
}

// acmeHTTPClient talks to the CA, trusting the roots in caFile when set
// (acme.ca) instead of the system's.
func acmeHTTPClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("acme.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("acme.ca: %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: acmeTimeout}, nil
}

// printACME is config check's line for [acme].
func printACME(w io.Writer, cfg config.Config) {
	if !cfg.ACME.Enabled() {
		return
	}
	fmt.Fprintf(w, "acme\t%s by %s on %s from %s, kept in %s\n", strings.Join(cfg.ACMENames(), ", "), cfg.ACME.Challenge,
		cfg.ACMEChallengeAddress(), cfg.ACME.Directory, filepath.Join(cfg.DataDir, "acme"))
}
