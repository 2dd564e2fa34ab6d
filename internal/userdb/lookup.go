package userdb

import (
	"context"
	"slices"
	"strings"
)

// maxAliasDepth bounds alias recursion; deeper chains are cut off there.
const maxAliasDepth = 8

var _ Store = (*File)(nil)

// Resolve implements Store. See Store.Resolve for the rules; the result
// holds canonical account addresses and external targets, without
// duplicates, in the order the aliases list them.
func (f *File) Resolve(address string) ([]string, bool) {
	d, _ := f.snapshot()
	addr := strings.ToLower(strings.TrimSpace(address))
	local, _, ok := split(addr)
	if !ok {
		return nil, false
	}
	if out := d.resolve(addr); len(out) > 0 {
		return out, true
	}
	// RFC 5321 §4.5.1: postmaster must be accepted in every local domain.
	if local == "postmaster" {
		return []string{addr}, true
	}
	return nil, false
}

// resolve expands addr (already lowercased): exact account or alias first,
// then its plus-address base. It returns nil when neither is known.
func (d *db) resolve(addr string) []string {
	var out []string
	seen := map[string]bool{}
	if d.expand(addr, 0, seen, &out) {
		return out
	}
	if base, ok := stripTag(addr); ok && d.expand(base, 0, seen, &out) {
		return out
	}
	return nil
}

// expand appends what addr delivers to; false if addr is no account or alias.
func (d *db) expand(addr string, depth int, seen map[string]bool, out *[]string) bool {
	if _, ok := d.accounts[addr]; ok {
		if !seen[addr] {
			seen[addr] = true
			*out = append(*out, addr)
		}
		return true
	}
	targets, ok := d.aliases[addr]
	if !ok {
		return false
	}
	if seen[addr] || depth >= maxAliasDepth {
		return true // a loop or too deep: this branch adds nothing
	}
	seen[addr] = true
	for _, t := range targets {
		lt := strings.ToLower(t)
		if d.expand(lt, depth+1, seen, out) {
			continue
		}
		if base, ok := stripTag(lt); ok && d.expand(base, depth+1, seen, out) {
			continue
		}
		if !seen[lt] { // external (or dangling) target: the caller routes it
			seen[lt] = true
			*out = append(*out, t)
		}
	}
	return true
}

// Authenticate implements Store. Every call, for a known account or not,
// runs one argon2id computation, in one of the store's hash slots; when
// none frees up before ctx ends, the error wraps ErrBusy and ctx's error.
// The one exception is a password that was verified for the same account
// and its current password hash less than Options.CacheTTL ago
// (cache.go): that success is answered from the cache, without a hash
// slot. Failures are never cached.
func (f *File) Authenticate(ctx context.Context, username, password string) (Account, error) {
	d, _ := f.snapshot()
	name := normalize(username)
	acct, ok := d.accounts[name]
	if ok && f.cache.hit(name, acct.PasswordHash, password) {
		return acct.copy(), nil
	}
	release, err := f.hashSlot(ctx)
	if err != nil {
		return Account{}, err
	}
	defer release()
	if !ok || len(password) > maxPasswordLen {
		dummyWork(password)
		return Account{}, ErrBadCredentials
	}
	if !verifyPassword(acct.PasswordHash, password) {
		return Account{}, ErrBadCredentials
	}
	f.cache.add(name, acct.PasswordHash, password)
	return acct.copy(), nil
}

// Lookup implements Store.
func (f *File) Lookup(username string) (Account, bool) {
	d, _ := f.snapshot()
	acct, ok := d.accounts[normalize(username)]
	return acct.copy(), ok
}

// Owns implements Store: addr is account itself, one of its plus-addresses,
// or an alias (or an alias's plus-address) whose expansion reaches it.
func (f *File) Owns(account, addr string) bool {
	d, _ := f.snapshot()
	account = strings.ToLower(strings.TrimSpace(account))
	if _, ok := d.accounts[account]; !ok {
		return false
	}
	addr = strings.ToLower(strings.TrimSpace(addr))
	if addr == account {
		return true
	}
	if base, ok := stripTag(addr); ok && base == account {
		return true
	}
	if _, isAccount := d.accounts[addr]; isAccount {
		return false // someone else's account
	}
	return slices.Contains(d.resolve(addr), account)
}

// normalize is how a login name becomes an account key: trimmed and
// lowercased, the canonical form of Canonical.
func normalize(username string) string { return strings.ToLower(strings.TrimSpace(username)) }

// copy returns a with its byte slices copied, so callers cannot change the
// store's snapshot.
func (a Account) copy() Account {
	a.Scram.Salt = slices.Clone(a.Scram.Salt)
	a.Scram.StoredKey = slices.Clone(a.Scram.StoredKey)
	a.Scram.ServerKey = slices.Clone(a.Scram.ServerKey)
	return a
}
