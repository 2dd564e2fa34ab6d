package cli

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"smtpkit/internal/config"
	"smtpkit/internal/delivery"
	"smtpkit/internal/dkim"
	"smtpkit/internal/local"
	"smtpkit/internal/metrics"
	"smtpkit/internal/mtasts"
	"smtpkit/internal/queue"
	"smtpkit/internal/tlsrpt"
)

// outbound is the wired outbound side: the queue and its remote courier.
type outbound struct {
	queue  queue.Backend
	remote *delivery.Remote
	sts    *mtasts.Cache // nil when outbound.mta_sts is off
	// routing is what the queue's courier was built from; the TLS-RPT
	// reporter uses its resolver and roots.
	routing routing
	// bounces hands the queue's DSNs to their recipients (SRS set by
	// wireSRS before the queue runs).
	bounces *delivery.Bounces
	// signer holds the [[dkim]] keys (nil: none): submissions, DSNs and
	// TLS-RPT reports that leave through the queue are signed with it.
	signer *dkim.Signer
	// lmtp delivers the mailboxes [[domain]] hands to LMTP servers; its
	// routes are replaced on a reload.
	lmtp *delivery.LMTP
}

// wireOutbound opens the queue in <data_dir>/queue with the remote courier
// (DNS → route → TLS policy → client) and, for the local recipients it
// takes over and the bounces to local senders, local delivery (store).
// Delivery counts its sessions into reports for TLS-RPT (nil: not counted).
// With [cluster] database the queue is the postgres back-end instead
// (cluster.go), with the same couriers.
func wireOutbound(cfg config.Config, store *local.Store, m *metrics.Metrics, reports tlsrpt.Recorder, log *slog.Logger) (*outbound, error) {
	rt, err := newRouting(cfg, filepath.Join(cfg.DataDir, "mta-sts"), log)
	if err != nil {
		return nil, err
	}
	signer, err := loadSigner(cfg) // [[dkim]] (dkim.go)
	if err != nil {
		return nil, err
	}
	if signer != nil {
		log.Info("dkim: signing outgoing mail", "domains", strings.Join(signer.Domains(), ","), "keys", len(cfg.DKIM))
	}
	remote := delivery.NewRemote(delivery.RemoteOptions{
		Router: rt.router, Policy: rt.policy, LocalName: cfg.Hostname, Roots: rt.roots, Logger: log,
		Reports: reports,
		Signer:  signer, // a message converted to 7 bit is signed again (delivery/downgrade.go)
	})
	// [[domain]] lmtp, lmtp_accounts: mailboxes handed to an LMTP server
	// by the queue's local courier (lmtp.go).
	lmtp := newLMTP(cfg, log)
	bounces := &delivery.Bounces{Local: store, LMTP: lmtp, Logger: log}
	out := &outbound{remote: remote, sts: rt.sts, routing: rt, bounces: bounces, signer: signer, lmtp: lmtp}
	if cfg.Cluster.Database != "" {
		// [cluster]: the queue in PostgreSQL, shared by the nodes (cluster.go).
		pq, err := openCluster(cfg, m.Courier(remote), delivery.NewLocal(store, lmtp), bounces, signer, log)
		if err != nil {
			return nil, err
		}
		bounces.Queue, out.queue = pq, pq
		return out, nil
	}
	q, err := queue.Open(queue.Options{
		Dir:     filepath.Join(cfg.DataDir, "queue"),
		Courier: m.Courier(remote), // counted for the metrics
		// Local recipients whose Maildir delivery failed on receipt
		// (queue.Writer.AddLocal), with NOTIFY=SUCCESS, or delivered by
		// LMTP.
		Local:         delivery.NewLocal(store, lmtp),
		Bounce:        bounces.Deliver,
		Sign:          signer.Sign, // DSNs and delay warnings that go out through the queue
		RetryMin:      cfg.Outbound.RetryMin.D(),
		RetryMax:      cfg.Outbound.RetryMax.D(),
		MaxAge:        cfg.Outbound.MaxAge.D(),
		DelayWarning:  cfg.Outbound.DelayWarning.D(),
		PerDomain:     cfg.Outbound.Concurrency,        // per destination, adaptive (queue/dest.go)
		Concurrency:   cfg.Outbound.MaxDeliveries,      // in flight in total
		ActiveLimit:   cfg.Outbound.ActiveLimit,        // messages whole in memory (queue/index.go)
		JournalMax:    int(cfg.Outbound.JournalMax),    // largest message the journal commits (queue/journal.go)
		JournalMemory: int(cfg.Outbound.JournalMemory), // journaled bytes held in memory before their files
		Hostname:      cfg.Hostname,
		Logger:        log,
	})
	if err != nil {
		return nil, err
	}
	bounces.Queue = q // DSNs for remote senders
	out.queue = queue.LocalBackend(q)
	return out, nil
}

// stsRefreshEvery is how often cached MTA-STS policies near expiry are
// fetched again (RFC 8461 §10.2: refresh before a policy expires, so that
// a policy host that is down when it expires does not leave the domain
// unprotected).
const stsRefreshEvery = time.Hour

// refreshSTS refreshes the MTA-STS cache every stsRefreshEvery until ctx
// ends.
func refreshSTS(ctx context.Context, sts *mtasts.Cache) {
	t := time.NewTicker(stsRefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sts.Refresh(ctx)
		}
	}
}
