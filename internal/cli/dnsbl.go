package cli

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

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

// printScreening adds the mx screening to `smtpkit config check`'s
// summary: the lists with their weights and the threshold, and the
// greeting delay of each mx listener that has one.
func printScreening(w io.Writer, cfg config.Config) {
	if len(cfg.DNSBL) > 0 {
		zones := make([]string, len(cfg.DNSBL))
		for i, z := range cfg.DNSBL {
			weight := z.Weight
			if weight == 0 {
				weight = 1
			}
			zones[i] = fmt.Sprintf("%s (%+d)", z.Zone, weight)
		}
		fmt.Fprintf(w, "dnsbl\t%s; threshold %d\n", strings.Join(zones, ", "), cfg.DNSBLThreshold)
	}
	for _, l := range cfg.Listeners {
		if d := cfg.ListenerPregreet(l); d > 0 {
			fmt.Fprintf(w, "pregreet\t%s on %s\n", d, l.Address)
		}
	}
}
