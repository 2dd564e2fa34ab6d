package pgqueue

// schema.go: the tables and their migrations. Open applies the missing
// ones in order, each in its own transaction that also records its
// number in schema_version; an advisory lock keeps two nodes starting
// at once from applying the same one twice.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations are the schema, one step per version (index + 1). Never
// edit a step that has shipped: add one.
var migrations = []string{
	// 1: messages, their bytes in chunks, their recipients.
	`
CREATE TABLE messages (
	id        text PRIMARY KEY,           -- queue.NewID, made before the transaction
	void      boolean NOT NULL DEFAULT false, -- an id given up after an ambiguous commit: never delivered
	sender    text NOT NULL DEFAULT '',   -- the reverse-path; '' is the null sender
	arrival   timestamptz NOT NULL,
	size      bigint NOT NULL DEFAULT 0,  -- octets, with the prepended fields
	sha256    bytea,                      -- of the stored bytes
	meta      jsonb NOT NULL DEFAULT '{}', -- queue.Meta: TLS/AUTH facts, RET, ENVID, prepended fields
	held      boolean NOT NULL DEFAULT false,
	warned    boolean NOT NULL DEFAULT false, -- the delay warning was sent
	node      text NOT NULL DEFAULT '',   -- the node that accepted it
	created   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE chunks (
	message_id text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	seq        integer NOT NULL,
	data       bytea NOT NULL,             -- at most 1 MiB
	PRIMARY KEY (message_id, seq)
);
CREATE TABLE recipients (
	message_id      text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	seq             integer NOT NULL,
	addr            text NOT NULL,
	domain          text NOT NULL,         -- the grouping key
	local           boolean NOT NULL DEFAULT false,
	state           text NOT NULL,         -- queued, deferred, delivered, failed
	attempts        integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL,
	lease_owner     text,                  -- the node delivering it, or <node>/prepare
	lease_until     timestamptz,
	last_reply      text NOT NULL DEFAULT '',
	notify          text NOT NULL DEFAULT '', -- NOTIFY (RFC 3461 §4.1)
	orcpt           text NOT NULL DEFAULT '', -- ORCPT (RFC 3461 §4.2) as addr-type;xtext
	owes            boolean NOT NULL DEFAULT false, -- a DSN for it is still to be sent
	record          jsonb NOT NULL,        -- queue.RcptRecord: the whole state, as env files keep it
	PRIMARY KEY (message_id, seq)
);
CREATE INDEX recipients_due ON recipients (next_attempt_at) WHERE state IN ('queued', 'deferred');
CREATE INDEX recipients_leased ON recipients (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX recipients_owes ON recipients (message_id) WHERE owes;
`,
	// 2: void ids (ambiguous commits given up) are removed after a while.
	`CREATE INDEX messages_void ON messages (created) WHERE void;`,
}

// migrateLock is the advisory lock key of the migrations ("smtpkit" in ASCII).
const migrateLock = 0x736d74706b6974

// migrate brings the schema to the newest version.
func migrate(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLock)); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrateLock))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return err
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&have); err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("the database has schema version %d, newer than this binary's %d", have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, v)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	return nil
}

// SchemaVersion is the newest schema this binary knows.
func SchemaVersion() int { return len(migrations) }
