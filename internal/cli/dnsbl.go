package cli

import (
	"fmt"
	"log/slog"

	"smtpkit/internal/config"
	"smtpkit/internal/dns"
	"smtpkit/internal/dnsbl"
	"smtpkit/internal/inbound"
)

// wireDNSBL turns [[dnsbl]] into in.DNSBL (left nil when there is no
// list): a dnsbl.Checker on the daemon's resolver behind a cache of its
// own, so that the answers about a client are kept for their TTL (a bot
// reconnecting is not asked about again), with dnsbl_threshold and
// dnsbl_timeout.
func wireDNSBL(cfg config.Config, res dns.Resolver, in *inbound.Options, log *slog.Logger) error {
	if len(cfg.DNSBL) == 0 {
		return nil
	}
	zones := make([]dnsbl.Zone, 0, len(cfg.DNSBL))
	for i, z := range cfg.DNSBL {
		answers, err := z.AnswerPrefixes()
		if err != nil {
			return fmt.Errorf("dnsbl[%d].answers: %w", i, err)
		}
		zones = append(zones, dnsbl.Zone{Name: z.Zone, Weight: z.Weight, Answers: answers})
	}
	checker, err := dnsbl.New(dnsbl.Options{
		Zones:     zones,
		Threshold: cfg.DNSBLThreshold,
		Resolver:  dns.NewCache(res, dns.CacheOptions{}),
		Timeout:   cfg.DNSBLTimeout.D(),
		Logger:    log,
	})
	if err != nil {
		return err
	}
	in.DNSBL = checker
	log.Info("screening mx clients with dns lists", "zones", checker.Zones(), "threshold", cfg.DNSBLThreshold)
	return nil
}
