package userdb

// source.go: the account store kept somewhere else than the JSON file —
// the cluster database (internal/pguserdb) — behind the same File API.
// Every node reads the whole content and caches it for a short TTL, so
// that RCPT and AUTH never wait for the database; `smtpkit user` writes go
// to the database at once and every node sees them within the TTL.

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Content is the whole account store: accounts and aliases by canonical
// address, as a Source reads and writes it.
type Content struct {
	Accounts map[string]Account
	Aliases  map[string][]string
}

// Source keeps a store's content for OpenSource.
type Source interface {
	// Name says where the content lives, for logs ("postgres").
	Name() string
	// Load reads the whole content.
	Load(ctx context.Context) (Content, error)
	// Update reads the current content, calls change with it, and stores
	// what change made of it, as one transaction that no other Update
	// interleaves with; nothing is stored when change returns an error.
	Update(ctx context.Context, change func(c *Content) error) error
}

// DefaultTTL is how long a node serves the content it read from a
// Source before it reads it again.
const DefaultTTL = 5 * time.Second

// sourceTimeout bounds one Load or Update.
const sourceTimeout = 10 * time.Second

// SourceOptions adjust a store opened on a Source.
type SourceOptions struct {
	Options
	// TTL is how long the content read is served; 0 is DefaultTTL.
	TTL time.Duration
	// Now is the clock (of the TTL and of the credential cache); nil is
	// Options.Now, then time.Now.
	Now func() time.Time
}

// sourced is the state of a File opened on a Source.
type sourced struct {
	src    Source
	ttl    time.Duration
	now    func() time.Time
	loaded time.Time // when data was read
}

// OpenSource opens the store kept by src: its content is read now (an
// error if that fails) and again whenever it is older than the TTL; a
// read that fails then is logged and the last good content stays in
// service. The changes (Add, SetPassword, AddAlias, …) go to src at once.
func OpenSource(src Source, opts SourceOptions) (*File, error) {
	f := &File{log: opts.Logger, secret: opts.Secret}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if len(f.secret) == 0 {
		f.secret = newSecret()
	}
	f.hashes = make(chan struct{}, hashSlots(opts.MaxHashes))
	if opts.Now == nil {
		opts.Now = opts.Options.Now
	}
	opts.Options.Now = opts.Now
	f.cache = newAuthCache(opts.Options)
	s := &sourced{src: src, ttl: opts.TTL, now: opts.Now}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	f.src = s
	d, err := s.load()
	if err != nil {
		return nil, err
	}
	f.data, s.loaded = d, s.now()
	return f, nil
}

// load reads and checks the content, as parse checks the file's.
func (s *sourced) load() (*db, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sourceTimeout)
	defer cancel()
	c, err := s.src.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("userdb: %s: %w", s.src.Name(), err)
	}
	d, err := fromContent(c)
	if err != nil {
		return nil, fmt.Errorf("userdb: %s: %w", s.src.Name(), err)
	}
	return d, nil
}

// refreshSource is refresh for a File on a Source: the content is read
// again when it is older than the TTL, or always when forced.
func (f *File) refreshSource(force bool) (*db, error) {
	s := f.src
	f.mu.RLock()
	d, loaded, lerr := f.data, s.loaded, f.loadErr
	f.mu.RUnlock()
	if !force && s.now().Sub(loaded) < s.ttl {
		return d, lerr
	}
	nd, err := s.load()
	f.mu.Lock()
	defer f.mu.Unlock()
	s.loaded = s.now() // a failed read is not retried before the TTL either
	if err != nil {
		if force || f.loadErr == nil {
			f.log.Error("account store reload failed, still serving the accounts loaded before",
				"source", s.src.Name(), "accounts", len(f.data.accounts), "err", err)
		}
		f.loadErr = err
		return f.data, err
	}
	if f.loadErr != nil || force {
		f.log.Info("account store reloaded", "source", s.src.Name(), "accounts", len(nd.accounts), "aliases", len(nd.aliases))
	}
	f.data, f.loadErr = nd, nil
	return nd, nil
}

// updateSource is update for a File on a Source.
func (f *File) updateSource(change func(d *db) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), sourceTimeout)
	defer cancel()
	var next *db
	err := f.src.src.Update(ctx, func(c *Content) error {
		cur, err := fromContent(*c)
		if err != nil {
			return err
		}
		if err := change(cur); err != nil {
			return err
		}
		*c = cur.content()
		next = cur
		return nil
	})
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.data, f.loadErr, f.src.loaded = next, nil, f.src.now()
	f.mu.Unlock()
	return nil
}

// fromContent checks c as parse checks the file and returns it as a db.
func fromContent(c Content) (*db, error) {
	df := diskFormat{Version: formatVersion, Aliases: c.Aliases}
	for _, a := range c.Accounts {
		df.Accounts = append(df.Accounts, a)
	}
	return check(df)
}

// content is d as a Content (d's maps, which d's owner no longer changes).
func (d *db) content() Content {
	return Content{Accounts: d.accounts, Aliases: d.aliases}
}
