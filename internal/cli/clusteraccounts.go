package cli

// clusteraccounts.go: in cluster mode ([cluster] database) the account
// store — accounts, aliases, credentials — is in the shared PostgreSQL
// database (internal/pguserdb), cached per node for userdb.DefaultTTL;
// serve and `smtpkit user` both use it instead of accounts.json.

import (
	"context"
	"time"

	"smtpkit/internal/pguserdb"
	"smtpkit/internal/userdb"
)

// clusterConnectTimeout bounds connecting and creating the tables.
const clusterConnectTimeout = 30 * time.Second

// openClusterAccounts opens the account store in the database dsn; close
// releases its connections.
func openClusterAccounts(dsn string, opts userdb.Options) (store *userdb.File, close func(), err error) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterConnectTimeout)
	defer cancel()
	src, err := pguserdb.Open(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	f, err := userdb.OpenSource(src, userdb.SourceOptions{Options: opts})
	if err != nil {
		src.Close()
		return nil, nil, err
	}
	return f, src.Close, nil
}
