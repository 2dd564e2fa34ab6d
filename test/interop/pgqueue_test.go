package interop

// The postgres back-end of the queue in the binary (issue #18): `smtpkit
// serve` with [cluster] database on a throwaway PostgreSQL (range
// 127.17.3.0/24). swaks relays through it to Postfix's smtp-sink; a
// recipient whose next hop is down is deferred, shown by `smtpkit queue
// list` and held in the database; with PostgreSQL down the end of data
// is answered 451 4.3.0 and nothing of the message is in the database
// once it is back.

import (
	"regexp"
	"strings"
	"testing"

	"smtpkit/internal/pgtest"
)

const (
	pgqDBAddr   = "127.17.3.10:0"
	pgqSinkIP   = "127.17.3.11"
	pgqServerIP = "127.17.3.20"
	pgqDownIP   = "127.17.3.12" // nothing listens here
)

func TestPgQueueServe(t *testing.T) {
	swaks := Need(t, "swaks")
	db := pgtest.Start(t, pgtest.Options{Addr: pgqDBAddr})
	dsn, err := db.CreateDatabase("smtpkit")
	if err != nil {
		t.Fatal(err)
	}
	sk := startSink(t, freeAddrOn(t, pgqSinkIP), "")
	down := freeAddrOn(t, pgqDownIP)
	conf := outConf{routes: []outRoute{{domain: "sink.example", host: sk.addr}, {domain: "down.example", host: down}}}.toml()
	conf += "\n[cluster]\ndatabase = \"" + dsn + "\"\nnode = \"node-1\"\npoll_interval = \"200ms\"\nlease = \"10s\"\n"
	s := StartServer(t, ServerOptions{IP: pgqServerIP, TopTOML: `trusted_networks = ["127.0.0.1"]`, ExtraTOML: conf})
	if !strings.Contains(s.Logs(), "pgqueue: opened") {
		t.Fatalf("serve did not open the postgres queue:\n%s", s.Logs())
	}
	send := func(to, tag string) peerRun {
		msg := []byte("From: App <app@" + testDomain + ">\r\nTo: <" + to + ">\r\nSubject: " + tag + "\r\n" +
			"Message-ID: <" + tag + "@test.example>\r\n\r\nthrough the shared queue\r\n")
		return runPeer(t, nil, swaks, "--server", s.MX, "--local-interface", "127.0.0.1", "--helo", "app.test.example",
			"--from", "app@"+testDomain, "--to", to, "--timeout", "20", "--data", swaksData(t, msg))
	}
	psql := func(sql string) string {
		t.Helper()
		out, err := db.ExecIn("smtpkit", sql)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}

	t.Run("relayed through the database", func(t *testing.T) {
		if r := send("bob@sink.example", "pgq-relay"); r.Err != nil {
			t.Fatalf("swaks: %v\n%s", r.Err, r.Stdout)
		}
		eventually(t, "smtp-sink to get the message", func() bool { return len(sk.files(t, "pgq-relay@test.example")) == 1 })
		eventually(t, "the delivered message to leave the database", func() bool {
			return psql(`SELECT count(*) FROM messages WHERE NOT void`) == "0"
		})
		if !regexp.MustCompile(`msg=queued msgid=[0-9a-f]{24} from=app@test.example`).MatchString(s.Logs()) {
			t.Errorf("no queued line in the log")
		}
	})

	t.Run("deferred: queue list and the database agree", func(t *testing.T) {
		if r := send("carol@down.example", "pgq-down"); r.Err != nil {
			t.Fatalf("swaks: %v\n%s", r.Err, r.Stdout)
		}
		eventually(t, "a deferred recipient in the database", func() bool {
			return psql(`SELECT count(*) FROM recipients WHERE addr = 'carol@down.example' AND state = 'deferred'`) == "1"
		})
		q := mustRun(t, nil, s.bin, "queue", "list", "-config", s.ConfigPath)
		if !strings.Contains(q.Stdout, "carol@down.example") || !strings.Contains(q.Stdout, "deferred") {
			t.Errorf("queue list:\n%s", q.Stdout)
		}
		id := psql(`SELECT id FROM messages WHERE NOT void AND sender <> ''`)
		mustRun(t, nil, s.bin, "queue", "hold", "-config", s.ConfigPath, id)
		if got := psql(`SELECT held FROM messages WHERE id = '` + id + `'`); got != "t" {
			t.Errorf("held column after queue hold: %q", got)
		}
		mustRun(t, nil, s.bin, "queue", "delete", "-config", s.ConfigPath, id)
		if got := psql(`SELECT count(*) FROM messages WHERE id = '` + id + `'`); got != "0" {
			t.Errorf("message still in the database after queue delete")
		}
	})

	t.Run("PostgreSQL down: 451 4.3.0, nothing stored", func(t *testing.T) {
		if err := db.Stop("immediate"); err != nil {
			t.Fatal(err)
		}
		r := send("dave@sink.example", "pgq-dbdown")
		if r.Err == nil || !regexp.MustCompile(`(?m)^<\*\* +451 4\.3\.0 `).MatchString(r.Stdout) {
			t.Errorf("swaks with the database down: %v\n%s", r.Err, r.Stdout)
		}
		if err := db.Start(); err != nil {
			t.Fatal(err)
		}
		if got := psql(`SELECT count(*) FROM messages WHERE NOT void`); got != "0" {
			t.Errorf("%s messages in the database after a 451", got)
		}
		// And it accepts again once the database is back.
		if r := send("erin@sink.example", "pgq-back"); r.Err != nil {
			t.Fatalf("swaks after the database came back: %v\n%s", r.Err, r.Stdout)
		}
		eventually(t, "smtp-sink to get the message after the database came back",
			func() bool { return len(sk.files(t, "pgq-back@test.example")) == 1 })
		if n := len(sk.files(t, "pgq-dbdown@test.example")); n != 0 {
			t.Errorf("the message answered 451 was delivered %d times", n)
		}
	})
}
