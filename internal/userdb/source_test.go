package userdb

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"
)

// memSource is a Source in memory, shared by two Files as the database is
// shared by two nodes.
type memSource struct {
	mu    sync.Mutex
	c     Content
	loads int
	fail  error
}

func (m *memSource) Name() string { return "memory" }

func (m *memSource) Load(context.Context) (Content, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads++
	if m.fail != nil {
		return Content{}, m.fail
	}
	return Content{Accounts: maps.Clone(m.c.Accounts), Aliases: maps.Clone(m.c.Aliases)}, nil
}

func (m *memSource) Update(_ context.Context, change func(*Content) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := Content{Accounts: maps.Clone(m.c.Accounts), Aliases: maps.Clone(m.c.Aliases)}
	if err := change(&c); err != nil {
		return err
	}
	m.c = c
	return nil
}

// TestSourceTTL: a change made through one node's store reaches the
// other's within the TTL (not before: it serves its cache), a failing
// source keeps the last good content, and the admin rules (ErrExists,
// aliases) are the file's.
func TestSourceTTL(t *testing.T) {
	src := &memSource{}
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	a, err := OpenSource(src, SourceOptions{TTL: 5 * time.Second, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenSource(src, SourceOptions{TTL: 5 * time.Second, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add("Alice@Example.org", "pw alice"); err != nil {
		t.Fatal(err)
	}
	if err := a.Add("alice@example.org", "again"); !errors.Is(err, ErrExists) {
		t.Errorf("second Add: %v, want ErrExists", err)
	}
	if err := a.AddAlias("info@example.org", "alice@example.org", "far@other.example"); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Lookup("alice@example.org"); !ok {
		t.Error("the writing node does not see its own change at once")
	}
	if _, ok := b.Lookup("alice@example.org"); ok {
		t.Error("the other node saw the change before its TTL ran out")
	}
	now = now.Add(5 * time.Second)
	if got, ok := b.Resolve("info@example.org"); !ok || len(got) != 2 || got[0] != "alice@example.org" {
		t.Errorf("other node after the TTL: Resolve = %v, %v", got, ok)
	}
	if _, err := b.Authenticate(context.Background(), "alice@example.org", "pw alice"); err != nil {
		t.Errorf("Authenticate on the other node: %v", err)
	}
	src.mu.Lock()
	src.fail = errors.New("database down")
	src.mu.Unlock()
	now = now.Add(time.Minute)
	if _, ok := b.Lookup("alice@example.org"); !ok {
		t.Error("a failed reload dropped the accounts")
	}
	if err := b.Reload(); err == nil {
		t.Error("Reload with the source down: no error")
	}
	src.mu.Lock()
	src.fail = nil
	src.mu.Unlock()
	if err := b.Delete("alice@example.org"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(5 * time.Second)
	if _, ok := a.Lookup("alice@example.org"); ok {
		t.Error("deleted account still there after the TTL")
	}
	if _, err := OpenSource(&memSource{fail: errors.New("down")}, SourceOptions{}); err == nil {
		t.Error("OpenSource on a failing source: no error")
	}
}
