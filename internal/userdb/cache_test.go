package userdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// cacheClock is a clock the cache tests move by hand.
type cacheClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *cacheClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *cacheClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// cachedStore is a store with one hash slot, a 60 s credential cache on
// clock and the accounts alice (pw "alice pw") and bob ("bob pw").
func cachedStore(t *testing.T, clock *cacheClock, size int) (*File, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "accounts.json")
	f, err := OpenOptions(p, Options{MaxHashes: 1, CacheTTL: time.Minute, CacheSize: size, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	must(t, f.Add("alice@example.org", "alice pw"))
	must(t, f.Add("bob@example.org", "bob pw"))
	return f, p
}

// authNoHash authenticates while the store's only hash slot is taken: a
// cache hit succeeds; anything that would compute a hash waits for the
// slot and fails with ErrBusy. So it tells, without timing, whether an
// answer came from the cache.
func authNoHash(t *testing.T, f *File, user, pw string) (hit bool, err error) {
	t.Helper()
	f.hashes <- struct{}{} // take the slot
	defer func() { <-f.hashes }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = f.Authenticate(ctx, user, pw)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrBusy):
		return false, nil
	}
	return false, err
}

// TestCredentialCache: what the verified-credential cache answers, seen
// through the hash slot (authNoHash): a success is answered from the
// cache for the TTL, for the same account (any spelling of its name) and
// the same password only; failures are never cached, so a wrong password
// and an unknown name always compute the hash; a changed password (here
// or in the file, by another process), a removed account and Reload end
// it; the size bound holds.
func TestCredentialCache(t *testing.T) {
	ctx := context.Background()
	clock := &cacheClock{t: time.Unix(1_700_000_000, 0)}
	f, path := cachedStore(t, clock, 0)
	hit := func(user, pw string) bool {
		t.Helper()
		h, err := authNoHash(t, f, user, pw)
		if err != nil {
			t.Fatalf("Authenticate(%s) from the cache: %v", user, err)
		}
		return h
	}

	if hit("alice@example.org", "alice pw") {
		t.Fatal("a first login was answered without computing the hash")
	}
	if _, err := f.Authenticate(ctx, "alice@example.org", "alice pw"); err != nil {
		t.Fatal(err)
	}
	if !hit("alice@example.org", "alice pw") {
		t.Error("a second login with the same password computed the hash again")
	}
	if !hit(" ALICE@Example.org", "alice pw") {
		t.Error("the same account spelt otherwise missed the cache")
	}
	for _, tc := range []struct{ user, pw string }{
		{"alice@example.org", "alice pw "}, {"alice@example.org", "wrong"}, {"alice@example.org", ""},
		{"bob@example.org", "alice pw"}, {"nobody@example.org", "alice pw"},
	} {
		if hit(tc.user, tc.pw) {
			t.Errorf("%s with %q answered from the cache", tc.user, tc.pw)
		}
		// With a slot: a failure, and still not cached afterwards.
		if _, err := f.Authenticate(ctx, tc.user, tc.pw); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s with %q: %v, want ErrBadCredentials", tc.user, tc.pw, err)
		}
		if hit(tc.user, tc.pw) {
			t.Errorf("%s with %q: a failure was cached", tc.user, tc.pw)
		}
	}

	clock.advance(time.Minute - time.Second)
	if !hit("alice@example.org", "alice pw") {
		t.Error("missed the cache before the TTL")
	}
	clock.advance(time.Second)
	if hit("alice@example.org", "alice pw") {
		t.Error("answered from the cache after the TTL (counted from the verification, not the last use)")
	}

	// A password change through the store.
	for _, u := range [][2]string{{"alice@example.org", "alice pw"}, {"bob@example.org", "bob pw"}} {
		if _, err := f.Authenticate(ctx, u[0], u[1]); err != nil {
			t.Fatal(err)
		}
	}
	must(t, f.SetPassword("alice@example.org", "new alice pw"))
	if hit("alice@example.org", "alice pw") {
		t.Error("the old password answered from the cache after SetPassword")
	}
	if err := authErr(f, "alice@example.org", "alice pw"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("the old password after SetPassword: %v, want ErrBadCredentials", err)
	}

	// Another process rewrites the file with a new password for bob.
	if !hit("bob@example.org", "bob pw") {
		t.Fatal("bob's login was not cached")
	}
	other, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	must(t, other.SetPassword("bob@example.org", "bob pw 2"))
	bumpMtime(t, path)
	if hit("bob@example.org", "bob pw") {
		t.Error("the old password answered from the cache after the file changed it")
	}

	// Removing the account.
	if _, err := f.Authenticate(ctx, "bob@example.org", "bob pw 2"); err != nil {
		t.Fatal(err)
	}
	must(t, f.Delete("bob@example.org"))
	if hit("bob@example.org", "bob pw 2") {
		t.Error("a removed account logged in from the cache")
	}

	// Reload (SIGHUP) drops everything.
	if _, err := f.Authenticate(ctx, "alice@example.org", "new alice pw"); err != nil {
		t.Fatal(err)
	}
	if !hit("alice@example.org", "new alice pw") {
		t.Fatal("not cached")
	}
	must(t, f.Reload())
	if hit("alice@example.org", "new alice pw") {
		t.Error("answered from the cache after Reload")
	}
}

func authErr(f *File, user, pw string) error {
	_, err := f.Authenticate(context.Background(), user, pw)
	return err
}

// bumpMtime moves the file's mtime on, so that a rewrite within the same
// timestamp granularity is seen as a change.
func bumpMtime(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	later := fi.ModTime().Add(2 * time.Second)
	must(t, os.Chtimes(path, later, later))
}

// TestCredentialCacheOff: a TTL of 0 caches nothing.
func TestCredentialCacheOff(t *testing.T) {
	f, _ := newStore(t)
	must(t, f.Add("alice@example.org", "alice pw"))
	for range 2 {
		if _, err := f.Authenticate(context.Background(), "alice@example.org", "alice pw"); err != nil {
			t.Fatal(err)
		}
	}
	if f.cache != nil || f.cache.len() != 0 {
		t.Fatal("a store without CacheTTL has a cache")
	}
	f.hashes = make(chan struct{}, 1)
	if h, err := authNoHash(t, f, "alice@example.org", "alice pw"); h || err != nil {
		t.Errorf("without a cache: hit %v, %v", h, err)
	}
}

// TestCredentialCacheBounded: no more than CacheSize entries; a full
// cache drops expired entries first.
func TestCredentialCacheBounded(t *testing.T) {
	clock := &cacheClock{t: time.Unix(0, 0)}
	c := newAuthCache(Options{CacheTTL: time.Minute, CacheSize: 3, Now: clock.now})
	for i := range 10 {
		c.add(fmt.Sprintf("u%d@example.org", i), "$hash", "pw")
		if n := c.len(); n > 3 {
			t.Fatalf("%d entries after %d adds, bound 3", n, i+1)
		}
	}
	c.clear()
	c.add("a@example.org", "$hash", "pw")
	c.add("b@example.org", "$hash", "pw")
	clock.advance(30 * time.Second)
	c.add("fresh1@example.org", "$hash", "pw")
	clock.advance(31 * time.Second) // a and b expired, fresh1 not
	c.add("fresh2@example.org", "$hash", "pw")
	c.add("fresh3@example.org", "$hash", "pw")
	for _, u := range []string{"fresh1@example.org", "fresh2@example.org", "fresh3@example.org"} {
		if !c.hit(u, "$hash", "pw") {
			t.Errorf("%s was evicted while expired entries were there", u)
		}
	}
	if c.hit("a@example.org", "$hash", "pw") || c.len() != 3 {
		t.Errorf("expired entry hit, or %d entries", c.len())
	}
}

// BenchmarkAuthPlainLogin is one AUTH PLAIN check as the server makes it
// (Authenticate of a known account with its password), from 8 sessions
// per CPU, with the credential cache off and on.
func BenchmarkAuthPlainLogin(b *testing.B) {
	for _, ttl := range []time.Duration{0, time.Minute} {
		b.Run(fmt.Sprintf("cache_ttl=%s", ttl), func(b *testing.B) {
			f, err := OpenOptions(filepath.Join(b.TempDir(), "accounts.json"), Options{CacheTTL: ttl})
			if err != nil {
				b.Fatal(err)
			}
			if err := f.Add("alice@example.org", "correct horse battery staple"); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := f.Authenticate(context.Background(), "alice@example.org", "correct horse battery staple"); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
		})
	}
}
