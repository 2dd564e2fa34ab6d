package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"

	"smtpkit/internal/authres"
	"smtpkit/internal/config"
	"smtpkit/internal/dns"
	"smtpkit/internal/inbound"
	"smtpkit/internal/smtp"
)

// wireVerify turns [verify] into in.Verify (left nil when verification is
// off): an authres.Verifier on the daemon's resolver res (authres keeps
// its answers for their TTLs), whose Authentication-Results fields go
// above every copy of mail arriving on mx. Messages larger than 64 KiB
// are held in <data_dir>/tmp while they are verified.
//
// spf, dkim, iprev = false and dmarc = "off" leave those results out of
// the header; authres has no switch for its checks, so they still run
// (DMARC needs SPF and DKIM; SPF's ptr mechanism needs the PTR lookups
// iprev makes).
func wireVerify(cfg config.Config, res dns.Resolver, in *inbound.Options, log *slog.Logger) error {
	v := cfg.Verify
	if !v.Enabled {
		return nil
	}
	tmp := filepath.Join(cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	ver := authres.New(authres.Options{Resolver: res, AuthServID: cfg.AuthServID(), Logger: log})
	id := ver.AuthServID()
	var omit []string
	for _, m := range []struct {
		name string
		on   bool
	}{{"spf", v.SPF}, {"dkim", v.DKIM}, {"dmarc", v.DMARC != config.DMARCOff}, {"iprev", v.IPRev}} {
		if !m.on {
			omit = append(omit, m.name)
		}
	}
	in.Verify = &inbound.Verification{
		Begin: func(ctx context.Context, ip netip.Addr, helo string, from smtp.Address) inbound.Check {
			return ver.Begin(ctx, ip, helo, from)
		},
		IsOurs:  func(value string) bool { return authres.IsOurs(value, id) },
		Enforce: v.DMARC == config.DMARCEnforce,
		Omit:    omit,
		TmpDir:  tmp,
	}
	log.Info("verifying mail on mx", "authserv_id", id, "spf", v.SPF, "dkim", v.DKIM, "dmarc", v.DMARC, "iprev", v.IPRev)
	return nil
}
