package userdb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// formatVersion is the "version" field of the accounts file.
const formatVersion = 1

// maxFileSize bounds what File reads, as a guard against a wrong path.
const maxFileSize = 64 << 20

// File is the embedded account store: one JSON file (see docs/accounts.md),
// rewritten atomically with the owner and mode it had (see replaceFile).
// Every call stats the file once and re-reads it when its identity
// (device, inode, size, mtime, ctime) changed, so the running server sees
// edits made by another process without a restart. Writers take an flock
// on "<path>.lock" around read-modify-write, so two processes never lose
// each other's changes. File is safe for concurrent use.
type File struct {
	path   string
	log    *slog.Logger
	secret []byte        // keys the SCRAM decoys (decoy.go)
	hashes chan struct{} // one token per argon2id computation running (hash.go)
	cache  *authCache    // verified credentials (cache.go); nil is off
	wmu    sync.Mutex    // serialises writers within this process

	mu      sync.RWMutex
	id      fileID
	data    *db    // immutable snapshot; replaced wholesale, never mutated
	loadErr error  // the last reload failed: data is the last good content
	statErr string // the stat failure last logged, so it is logged once

	src *sourced // opened with OpenSource: no file, the content is src's
}

// Options adjust a File. The zero value suits `smtpkit user`.
type Options struct {
	// Logger gets an error line, with the reason, for every version of the
	// file that cannot be loaded (and for every Reload that fails), and an
	// info line for every successful re-read. Nil discards.
	Logger *slog.Logger
	// Secret keys the SCRAM decoys given to names without an account
	// (ScramDecoy). Nil means a random key for the life of the File, which
	// keeps decoys stable only until the process restarts; the server
	// passes the durable one from LoadSecret.
	Secret []byte
	// MaxHashes bounds how many argon2id computations Authenticate runs at
	// once; further calls wait for a slot within their context. Zero means
	// runtime.GOMAXPROCS(0).
	MaxHashes int
	// CacheTTL is how long Authenticate trusts a successful verification
	// of the same password for the same account without computing the
	// hash again (cache.go); 0 (the default) caches nothing.
	CacheTTL time.Duration
	// CacheSize bounds the cached verifications; 0 is DefaultCacheSize.
	CacheSize int
	// Now is the clock of the cache's TTL; nil is time.Now.
	Now func() time.Time
}

// fileID identifies one version of the file on disk.
type fileID struct {
	exists       bool
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

func statID(fi os.FileInfo) fileID {
	id := fileID{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), uint64(st.Ino)
		id.ctime = st.Ctim.Nano()
	}
	return id
}

// db is one parsed version of the file, keyed by canonical address.
type db struct {
	accounts map[string]Account
	aliases  map[string][]string
}

// diskFormat is the JSON layout of the accounts file.
type diskFormat struct {
	Version  int                 `json:"version"`
	Accounts []Account           `json:"accounts"`
	Aliases  map[string][]string `json:"aliases"`
}

// Open opens the store at path with default Options. A missing file is an
// empty store (it is created by the first change); an unreadable or
// malformed file is an error.
func Open(path string) (*File, error) { return OpenOptions(path, Options{}) }

// OpenOptions is Open with explicit Options.
func OpenOptions(path string, opts Options) (*File, error) {
	d, id, err := load(path)
	if err != nil {
		return nil, err
	}
	f := &File{path: path, log: opts.Logger, secret: opts.Secret, data: d, id: id}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if len(f.secret) == 0 {
		f.secret = newSecret()
	}
	f.hashes = make(chan struct{}, hashSlots(opts.MaxHashes))
	f.cache = newAuthCache(opts)
	return f, nil
}

// Path is the file the store lives in; for a store on a Source its name
// ("postgres").
func (f *File) Path() string {
	if f.src != nil {
		return f.src.src.Name()
	}
	return f.path
}

// Reload re-reads the file now, even when its identity looks unchanged
// (SIGHUP), and reports why it could not be loaded, if it could not; the
// failure is also logged at error level. Queries re-read a changed file by
// themselves and keep serving the last good content on error.
func (f *File) Reload() error {
	f.cache.clear()
	_, err := f.refresh(true)
	return err
}

// snapshot returns the current content, re-reading the file if it changed
// since it was last read.
func (f *File) snapshot() (*db, error) { return f.refresh(false) }

// refresh re-reads the file if it changed since it was last read, or
// always when forced. Every version of the file that fails to load is
// logged once at error level with the reason (and again on each forced
// refresh); the last good content stays in service.
func (f *File) refresh(force bool) (*db, error) {
	if f.src != nil {
		return f.refreshSource(force)
	}
	var id fileID
	if fi, err := os.Stat(f.path); err == nil {
		id = statID(fi)
	} else if !errors.Is(err, os.ErrNotExist) {
		err = fmt.Errorf("userdb: %w", err)
		f.mu.Lock()
		defer f.mu.Unlock()
		if force || f.statErr != err.Error() {
			f.statErr = err.Error()
			f.logFailure(err)
		}
		return f.data, err
	}
	f.mu.RLock()
	d, cur, lerr := f.data, f.id, f.loadErr
	f.mu.RUnlock()
	if cur == id && !force {
		return d, lerr
	}
	nd, nid, err := load(f.path)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statErr = ""
	if err != nil {
		// Remember the failure for this version of the file so that we do
		// not re-parse it on every call; keep serving the last good data.
		if force || f.id != id || f.loadErr == nil {
			f.logFailure(err)
		}
		f.id, f.loadErr = id, err
		return f.data, err
	}
	if force || f.id != nid || f.loadErr != nil {
		f.log.Info("account store reloaded", "path", f.path, "accounts", len(nd.accounts), "aliases", len(nd.aliases))
	}
	f.data, f.id, f.loadErr = nd, nid, nil
	return nd, nil
}

// logFailure logs a failed reload; f.mu is held.
func (f *File) logFailure(err error) {
	f.log.Error("account store reload failed, still serving the accounts loaded before",
		"path", f.path, "accounts", len(f.data.accounts), "err", err)
}

// load reads and parses the file; the identity comes from the open file
// descriptor, so it describes exactly the bytes read.
func load(path string) (*db, fileID, error) {
	empty := &db{accounts: map[string]Account{}, aliases: map[string][]string{}}
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return empty, fileID{}, nil
	}
	if err != nil {
		return nil, fileID{}, fmt.Errorf("userdb: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fileID{}, fmt.Errorf("userdb: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, fileID{}, fmt.Errorf("userdb: %w", err)
	}
	if len(raw) > maxFileSize {
		return nil, fileID{}, fmt.Errorf("userdb: %s is larger than %d bytes", path, maxFileSize)
	}
	d, err := parse(raw)
	if err != nil {
		return nil, fileID{}, fmt.Errorf("userdb: %s: %w", path, err)
	}
	return d, statID(fi), nil
}

// parse decodes the file strictly and checks every address.
func parse(raw []byte) (*db, error) {
	var df diskFormat
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&df); err != nil {
		return nil, err
	}
	return check(df)
}

// check validates every address of df and builds the db.
func check(df diskFormat) (*db, error) {
	if df.Version != formatVersion {
		return nil, fmt.Errorf("unsupported version %d (want %d)", df.Version, formatVersion)
	}
	d := &db{accounts: make(map[string]Account, len(df.Accounts)), aliases: map[string][]string{}}
	for _, a := range df.Accounts {
		key, err := Canonical(a.Address)
		if err != nil {
			return nil, err
		}
		if _, dup := d.accounts[key]; dup {
			return nil, fmt.Errorf("account %s listed twice", key)
		}
		a.Address = key
		d.accounts[key] = a
	}
	for alias, targets := range df.Aliases {
		key, err := Canonical(alias)
		if err != nil {
			return nil, err
		}
		if _, clash := d.accounts[key]; clash {
			return nil, fmt.Errorf("%s is both an account and an alias", key)
		}
		if len(targets) == 0 {
			return nil, fmt.Errorf("alias %s has no targets", key)
		}
		for i, t := range targets {
			if targets[i], err = checkTarget(t); err != nil {
				return nil, err
			}
		}
		d.aliases[key] = targets
	}
	return d, nil
}

// encode renders d in the file format, accounts sorted by address.
func (d *db) encode() ([]byte, error) {
	df := diskFormat{Version: formatVersion, Accounts: d.list(), Aliases: d.aliases}
	out, err := json.MarshalIndent(df, "", "  ")
	return append(out, '\n'), err
}

// clone copies d deeply enough for a writer to change it.
func (d *db) clone() *db {
	n := &db{accounts: make(map[string]Account, len(d.accounts)), aliases: make(map[string][]string, len(d.aliases))}
	for k, v := range d.accounts {
		n.accounts[k] = v
	}
	for k, v := range d.aliases {
		n.aliases[k] = append([]string(nil), v...)
	}
	return n
}

// update applies change to the current file content under both locks and
// writes the result atomically.
func (f *File) update(change func(d *db) error) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.src != nil {
		return f.updateSource(change)
	}
	unlock, err := lockFile(f.path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	cur, _, err := load(f.path) // fresh: another process may have written
	if err != nil {
		return err
	}
	next := cur.clone()
	if err := change(next); err != nil {
		return err
	}
	raw, err := next.encode()
	if err != nil {
		return fmt.Errorf("userdb: %w", err)
	}
	id, err := replaceFile(f.path, raw)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.data, f.id, f.loadErr = next, id, nil
	f.mu.Unlock()
	return nil
}

// lockFile takes an exclusive flock on path (created with mode 0600),
// waiting for other holders, and returns the function that releases it.
func lockFile(path string) (func(), error) {
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("userdb: lock: %w", err)
	}
	ownLike(fh, filepath.Dir(path)) // so that the server's user can take it too
	for {
		err = syscall.Flock(int(fh.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("userdb: lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(fh.Fd()), syscall.LOCK_UN)
		fh.Close()
	}, nil
}
