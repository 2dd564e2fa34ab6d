package pguserdb

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/pgtest"
	"smtpkit/internal/userdb"
)

// TestTwoNodes runs two account stores ("nodes") on one throwaway
// PostgreSQL (127.17.4.2): what one adds the other serves after its TTL,
// passwords and SCRAM keys round-trip, aliases keep their order,
// concurrent writers on both nodes lose nothing (the table lock), and
// with the server stopped a node keeps serving what it had while a change
// fails.
func TestTwoNodes(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{Addr: "127.17.4.2:0"})
	ctx := context.Background()
	open := func() (*Store, *userdb.File) {
		s, err := Open(ctx, pg.DSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		f, err := userdb.OpenSource(s, userdb.SourceOptions{TTL: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return s, f
	}
	_, a := open()
	_, b := open() // the tables exist already: Open is idempotent
	if err := a.Add("alice@example.org", "alice pw"); err != nil {
		t.Fatal(err)
	}
	if err := a.AddAdmin("root@example.org", "root pw"); err != nil {
		t.Fatal(err)
	}
	if err := a.AddAlias("team@example.org", "root@example.org", "Far@Other.example", "alice@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := b.Add("ALICE@example.org", "x"); !errors.Is(err, userdb.ErrExists) {
		t.Errorf("Add of an existing account on the other node: %v", err)
	}
	poll(t, "node b to see alice", func() bool { _, ok := b.Lookup("alice@example.org"); return ok })
	if _, err := b.Authenticate(ctx, "alice@example.org", "alice pw"); err != nil {
		t.Errorf("Authenticate on node b: %v", err)
	}
	acct, _ := b.Lookup("alice@example.org")
	want, _ := a.Lookup("alice@example.org")
	if len(acct.Scram.StoredKey) == 0 || !sameAccount(acct, want) {
		t.Errorf("account read back differs: %+v vs %+v", acct, want)
	}
	if r, _ := b.Lookup("root@example.org"); !r.Admin {
		t.Error("admin mark lost")
	}
	if got, ok := b.Resolve("team@example.org"); !ok || len(got) != 3 || got[0] != "root@example.org" || got[1] != "Far@other.example" {
		t.Errorf("alias on node b: %v %v", got, ok)
	}
	// Writers on both nodes at once: every account arrives.
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := a
			if i%2 == 1 {
				f = b
			}
			if err := f.AddAlias("list@example.org", "m"+string(rune('a'+i))+"@other.example"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	poll(t, "six members on node a", func() bool { got, _ := a.Resolve("list@example.org"); return len(got) == 6 })
	if err := b.SetPassword("alice@example.org", "new pw"); err != nil {
		t.Fatal(err)
	}
	poll(t, "the new password on node a", func() bool {
		_, err := a.Authenticate(ctx, "alice@example.org", "new pw")
		return err == nil
	})
	if err := b.Delete("root@example.org"); err != nil {
		t.Fatal(err)
	}
	poll(t, "root gone on node a", func() bool { _, ok := a.Lookup("root@example.org"); return !ok })

	if err := pg.Stop("immediate"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // past the TTL: the next call reads again, and fails
	if _, ok := a.Lookup("alice@example.org"); !ok {
		t.Error("database down: node a dropped its accounts")
	}
	if err := a.Add("new@example.org", "pw"); err == nil {
		t.Error("Add with the database down succeeded")
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	poll(t, "node a to write again", func() bool { return a.Add("new@example.org", "pw") == nil })
}

// poll waits up to 10 s for cond.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, bounded above
	}
}
