package pgqueue

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"

	"smtpkit/internal/pgtest"
	"smtpkit/internal/queue"
	"smtpkit/internal/queue/queuetest"
)

// TestPostgres runs everything against one throwaway PostgreSQL on
// 127.17.3.1, a fresh database per test.
func TestPostgres(t *testing.T) {
	srv := pgtest.Start(t, pgtest.Options{Addr: "127.17.3.1:0"})
	var n atomic.Int32
	newDB := func(t *testing.T) string {
		dsn, err := srv.CreateDatabase(fmt.Sprintf("q%d", n.Add(1)))
		if err != nil {
			t.Fatal(err)
		}
		return dsn
	}
	for _, tt := range pgTests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, &env{srv: srv, dsn: newDB(t)}) })
	}
	t.Run("Conformance", func(t *testing.T) {
		queuetest.Run(t, func(t *testing.T) queuetest.Opener {
			dsn := newDB(t)
			return func(t *testing.T, o queuetest.Options) queue.Backend {
				return openTest(t, Options{Database: dsn, Courier: o.Courier, Local: o.Local, Now: o.Now,
					Policy: queue.Policy{RetryMin: o.RetryMin, RetryMax: o.RetryMax, MaxAge: o.MaxAge,
						DelayWarning: o.DelayWarning, Hostname: o.Hostname}})
			}
		})
	})
}

// env is one test's server and database.
type env struct {
	srv *pgtest.Server
	dsn string
}

// pgTests are the back-end's own tests, beside the conformance suite.
var pgTests = []struct {
	name string
	fn   func(t *testing.T, e *env)
}{
	// First, while the server's WAL is short: these two crash it, and
	// recovery replays every CREATE DATABASE before them.
	{"CommittedSurvivesCrash", testCrash},
	{"Unreachable451", testUnreachable},
	{"Migrations", testMigrations},
	{"LargeMessageChunks", testLarge},
	{"LeaseTakeover", testLeaseTakeover},
	{"CountsAgreeWithList", testCounts},
	{"TwoNodesNoDoubleDelivery", testTwoNodes},
	{"NotifyWakesWorker", testNotifyWakes},
	{"PerDomainLimit", testPerDomain},
	{"LongAttemptRenewed", testRenewed},
	{"AmbiguousCommit", testAmbiguousCommit},
	{"RecordSurvivesOutage", testRecordOutage},
	{"FailureAndBounceOneTransaction", testBounceAtomic},
}

func openTest(t testing.TB, o Options) *Queue {
	t.Helper()
	if o.Logger == nil && os.Getenv("PGQUEUE_LOG") != "" {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Node == "" {
		o.Node = "node-a"
	}
	if o.TmpDir == "" {
		o.TmpDir = t.TempDir()
	}
	q, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}
