// Package pguserdb keeps the account store (internal/userdb) in
// PostgreSQL for cluster mode ([cluster] database): accounts with their
// credentials (the argon2id hash and the SCRAM-SHA-256 keys, never a
// password) and aliases, in the database every node shares. It is a
// userdb.Source: each node reads the whole store and serves it from memory
// for a short TTL (userdb.OpenSource); `smtpkit user` changes are one
// transaction each, under a table lock that keeps two writers apart.
package pguserdb

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"smtpkit/internal/userdb"
)

// schema creates the tables when they are missing. The accounts keep
// their canonical address as the key; an alias's targets keep their
// order (seq).
const schema = `
CREATE TABLE IF NOT EXISTS accounts (
	address          text PRIMARY KEY,
	password_hash    text NOT NULL,     -- argon2id, PHC string form
	scram_iterations integer NOT NULL DEFAULT 0,
	scram_salt       bytea,
	scram_stored_key bytea,
	scram_server_key bytea,
	admin            boolean NOT NULL DEFAULT false,
	updated          timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS aliases (
	alias  text NOT NULL,
	seq    integer NOT NULL,
	target text NOT NULL,
	PRIMARY KEY (alias, seq)
);
`

// schemaLock is the advisory lock key of the schema step ("userdb").
const schemaLock = 0x757365726462

// Store is the account store in one PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
}

var _ userdb.Source = (*Store)(nil)

// Open connects to the database dsn (postgres://…) and creates the tables
// if they are missing. Close releases the connections.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pguserdb: %w", err)
	}
	cfg.MaxConns = 4 // reads every TTL and rare writes
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pguserdb: %w", err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Two nodes starting at once must not race on CREATE TABLE.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("pguserdb: creating the tables: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the connections.
func (s *Store) Close() { s.pool.Close() }

// Name implements userdb.Source.
func (s *Store) Name() string { return "postgres" }

// querier is what load reads with: the pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Load implements userdb.Source: every account and alias, in one
// REPEATABLE READ transaction (one consistent view of both tables).
func (s *Store) Load(ctx context.Context) (userdb.Content, error) {
	var c userdb.Content
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			var err error
			c, err = load(ctx, tx)
			return err
		})
	return c, err
}

func load(ctx context.Context, q querier) (userdb.Content, error) {
	c := userdb.Content{Accounts: map[string]userdb.Account{}, Aliases: map[string][]string{}}
	rows, err := q.Query(ctx, `SELECT address, password_hash, scram_iterations, scram_salt, scram_stored_key, scram_server_key, admin FROM accounts`)
	if err != nil {
		return c, err
	}
	for rows.Next() {
		var a userdb.Account
		if err := rows.Scan(&a.Address, &a.PasswordHash, &a.Scram.Iterations, &a.Scram.Salt, &a.Scram.StoredKey, &a.Scram.ServerKey, &a.Admin); err != nil {
			rows.Close()
			return c, err
		}
		c.Accounts[a.Address] = a
	}
	if err := rows.Err(); err != nil {
		return c, err
	}
	rows, err = q.Query(ctx, `SELECT alias, target FROM aliases ORDER BY alias, seq`)
	if err != nil {
		return c, err
	}
	for rows.Next() {
		var alias, target string
		if err := rows.Scan(&alias, &target); err != nil {
			rows.Close()
			return c, err
		}
		c.Aliases[alias] = append(c.Aliases[alias], target)
	}
	return c, rows.Err()
}

// Update implements userdb.Source: in one transaction that holds a lock
// no other Update can take (readers go on), the current content is read,
// changed and what differs written back.
func (s *Store) Update(ctx context.Context, change func(c *userdb.Content) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE accounts, aliases IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		old, err := load(ctx, tx)
		if err != nil {
			return err
		}
		next := userdb.Content{Accounts: maps.Clone(old.Accounts), Aliases: maps.Clone(old.Aliases)}
		if err := change(&next); err != nil {
			return err
		}
		return write(ctx, tx, old, next)
	})
}

// write stores the difference between old and next.
func write(ctx context.Context, tx pgx.Tx, old, next userdb.Content) error {
	for addr := range old.Accounts {
		if _, ok := next.Accounts[addr]; !ok {
			if _, err := tx.Exec(ctx, `DELETE FROM accounts WHERE address = $1`, addr); err != nil {
				return err
			}
		}
	}
	for _, addr := range slices.Sorted(maps.Keys(next.Accounts)) {
		a := next.Accounts[addr]
		if o, ok := old.Accounts[addr]; ok && sameAccount(o, a) {
			continue
		}
		_, err := tx.Exec(ctx, `INSERT INTO accounts (address, password_hash, scram_iterations, scram_salt, scram_stored_key, scram_server_key, admin)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (address) DO UPDATE SET password_hash = EXCLUDED.password_hash, scram_iterations = EXCLUDED.scram_iterations,
	scram_salt = EXCLUDED.scram_salt, scram_stored_key = EXCLUDED.scram_stored_key, scram_server_key = EXCLUDED.scram_server_key,
	admin = EXCLUDED.admin, updated = now()`,
			addr, a.PasswordHash, a.Scram.Iterations, a.Scram.Salt, a.Scram.StoredKey, a.Scram.ServerKey, a.Admin)
		if err != nil {
			return err
		}
	}
	for alias := range old.Aliases {
		if _, ok := next.Aliases[alias]; !ok {
			if _, err := tx.Exec(ctx, `DELETE FROM aliases WHERE alias = $1`, alias); err != nil {
				return err
			}
		}
	}
	for _, alias := range slices.Sorted(maps.Keys(next.Aliases)) {
		targets := next.Aliases[alias]
		if slices.Equal(old.Aliases[alias], targets) {
			continue
		}
		if _, err := tx.Exec(ctx, `DELETE FROM aliases WHERE alias = $1`, alias); err != nil {
			return err
		}
		for i, t := range targets {
			if _, err := tx.Exec(ctx, `INSERT INTO aliases (alias, seq, target) VALUES ($1, $2, $3)`, alias, i, t); err != nil {
				return err
			}
		}
	}
	return nil
}

func sameAccount(a, b userdb.Account) bool {
	return a.Address == b.Address && a.PasswordHash == b.PasswordHash && a.Admin == b.Admin &&
		a.Scram.Iterations == b.Scram.Iterations && slices.Equal(a.Scram.Salt, b.Scram.Salt) &&
		slices.Equal(a.Scram.StoredKey, b.Scram.StoredKey) && slices.Equal(a.Scram.ServerKey, b.Scram.ServerKey)
}
