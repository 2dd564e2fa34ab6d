package cli

// credentials.go: the account store as the server's AUTH sees it.

import (
	"context"
	"errors"
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
	return userdb.OpenOptions(filepath.Join(cfg.DataDir, "accounts.json"), userdb.Options{Logger: log, Secret: secret,
		CacheTTL: cfg.Auth.CacheTTL.D(), CacheSize: cfg.Auth.CacheSize}) // [auth]: verified-credential cache
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
