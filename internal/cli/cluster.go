package cli

// cluster.go: [cluster] database — the outbound queue in PostgreSQL,
// shared by every node that names the same database (internal/pgqueue).

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"smtpkit/internal/config"
	"smtpkit/internal/delivery"
	"smtpkit/internal/dkim"
	"smtpkit/internal/pgqueue"
	"smtpkit/internal/queue"
)

// clusterOpenTimeout bounds connecting and migrating at start.
const clusterOpenTimeout = 30 * time.Second

// openCluster opens the postgres back-end with the couriers the files
// would get. DSNs are queued in the database in the transaction that
// records the failure, addressed as bounces resolves them (local
// mailboxes, LMTP, SRS, aliases).
func openCluster(cfg config.Config, remote, local queue.Courier, bounces *delivery.Bounces, signer *dkim.Signer, log *slog.Logger) (*pgqueue.Queue, error) {
	tmp := filepath.Join(cfg.DataDir, "pgqueue-tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterOpenTimeout)
	defer cancel()
	return pgqueue.Open(ctx, pgqueue.Options{
		Database: cfg.Cluster.Database,
		Node:     cfg.Cluster.Node,
		TmpDir:   tmp,
		Courier:  remote,
		Local:    local,
		BounceTo: bounces.Recipients,
		Sign:     signer.Sign,
		Policy: queue.Policy{
			RetryMin: cfg.Outbound.RetryMin.D(), RetryMax: cfg.Outbound.RetryMax.D(),
			MaxAge: cfg.Outbound.MaxAge.D(), DelayWarning: cfg.Outbound.DelayWarning.D(),
			Hostname: cfg.Hostname, Logger: log,
		},
		Lease:        cfg.Cluster.Lease.D(),
		PollInterval: cfg.Cluster.PollInterval.D(),
		Concurrency:  cfg.Outbound.MaxDeliveries, // per node
		PerDomain:    cfg.Outbound.Concurrency,   // per destination, per node (no slow start)
		Logger:       log,
	})
}
