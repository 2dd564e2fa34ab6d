package cli

// credentials.go: the account store as the server's AUTH sees it.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"smtpkit/internal/config"
	"smtpkit/internal/sasl"
	"smtpkit/internal/userdb"
)

// openAccounts opens <data_dir>/accounts.json for the server, with the
// durable server secret <data_dir>/secret (created on first start) that
// keys the SCRAM decoys, a logger for reloads that fail, and the
// verified-credential cache of [auth].
func openAccounts(cfg config.Config, log *slog.Logger) (*userdb.File, error) {
	secret, err := userdb.LoadSecret(filepath.Join(cfg.DataDir, "secret"))
	if err != nil {
		return nil, err
	}
	opts := userdb.Options{Logger: log, Secret: secret,
		CacheTTL: cfg.Auth.CacheTTL.D(), CacheSize: cfg.Auth.CacheSize} // [auth]: verified-credential cache
	if cfg.Cluster.Database != "" {
		// Cluster mode: the accounts of every node are in the database
		// (clusteraccounts.go); the secret stays the node's file, which
		// every node must share (docs/cluster.md).
		store, _, err := openClusterAccounts(cfg.Cluster.Database, opts)
		if err != nil {
			return nil, fmt.Errorf("cluster accounts: %w", err)
		}
		log.Info("accounts: in the cluster database", "ttl", userdb.DefaultTTL.String(), "accounts", len(store.List()))
		return store, nil // its connections live as long as serve
	}
	return userdb.OpenOptions(filepath.Join(cfg.DataDir, "accounts.json"), opts)
}

// credentials adapts the account store to the SASL mechanisms.
type credentials struct{ db *userdb.File }

var _ sasl.Decoys = credentials{}

func (c credentials) CheckPassword(ctx context.Context, username, password string) error {
	if _, err := c.db.Authenticate(ctx, username, password); err != nil {
		if errors.Is(err, userdb.ErrBadCredentials) {
			return sasl.ErrInvalidCredentials
		}
		return err
	}
	return nil
}

func (c credentials) ScramKeys(_ context.Context, username string) (sasl.ScramKeys, error) {
	acct, ok := c.db.Lookup(username)
	if !ok || len(acct.Scram.StoredKey) == 0 {
		return sasl.ScramKeys{}, sasl.ErrInvalidCredentials
	}
	k := acct.Scram
	return sasl.ScramKeys{Iterations: k.Iterations, Salt: k.Salt, StoredKey: k.StoredKey, ServerKey: k.ServerKey}, nil
}

// ScramDecoy implements sasl.Decoys with the store's keyed decoys.
func (c credentials) ScramDecoy(username string) ([]byte, int) { return c.db.ScramDecoy(username) }
