package cli

// srs.go: the Sender Rewriting Scheme for forwarded mail ([srs]).

import (
	"log/slog"
	"path/filepath"

	"smtpkit/internal/config"
	"smtpkit/internal/delivery"
	"smtpkit/internal/inbound"
	"smtpkit/internal/srs"
	"smtpkit/internal/userdb"
)

// openSRS returns the SRS rewriter of cfg, keyed from the installation
// secret <data_dir>/secret (the one the SCRAM decoys use; srs derives its
// own key from it), or nil when [srs] is off.
func openSRS(cfg config.Config, log *slog.Logger) (*srs.Rewriter, error) {
	if !cfg.SRS.Enabled {
		return nil, nil
	}
	secret, err := userdb.LoadSecret(filepath.Join(cfg.DataDir, "secret"))
	if err != nil {
		return nil, err
	}
	r, err := srs.New(srs.Options{Secret: secret, Domain: cfg.SRSDomain(), MaxAge: cfg.SRS.MaxAge.D()})
	if err != nil {
		return nil, err
	}
	log.Info("SRS: forwarded mail is sent from SRS addresses", "srs_domain", r.Domain(), "max_age", cfg.SRS.MaxAge.String())
	return r, nil
}

// wireSRS hands r to the inbound backend's options and the queue's
// bounces (a nil r leaves both without SRS: a nil pointer must not become
// a non-nil interface).
func wireSRS(r *srs.Rewriter, in *inbound.Options, b *delivery.Bounces) {
	if r == nil {
		return
	}
	in.SRS = r
	b.SRS = r
}
