package userdb

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Add creates an account. The password is hashed (argon2id and SCRAM)
// before any lock is taken; only the hashes are stored.
func (f *File) Add(address, password string) error { return f.add(address, password, false) }

// AddAdmin creates an account marked admin (Account.Admin): one that may
// log in to the status page.
func (f *File) AddAdmin(address, password string) error { return f.add(address, password, true) }

// SetAdmin marks an existing account admin or not.
func (f *File) SetAdmin(address string, admin bool) error {
	key := strings.ToLower(strings.TrimSpace(address))
	return f.update(func(d *db) error {
		a, ok := d.accounts[key]
		if !ok {
			return fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		a.Admin = admin
		d.accounts[key] = a
		return nil
	})
}

func (f *File) add(address, password string, admin bool) error {
	key, err := Canonical(address)
	if err != nil {
		return err
	}
	hash, keys, err := credentials(password)
	if err != nil {
		return err
	}
	return f.update(func(d *db) error {
		if _, ok := d.accounts[key]; ok {
			return fmt.Errorf("%w: account %s", ErrExists, key)
		}
		if _, ok := d.aliases[key]; ok {
			return fmt.Errorf("%w: %s is an alias", ErrExists, key)
		}
		d.accounts[key] = Account{Address: key, PasswordHash: hash, Scram: keys, Admin: admin}
		return nil
	})
}

// SetPassword replaces an account's password.
func (f *File) SetPassword(address, password string) error {
	key := strings.ToLower(strings.TrimSpace(address))
	hash, keys, err := credentials(password)
	if err != nil {
		return err
	}
	return f.update(func(d *db) error {
		old, ok := d.accounts[key]
		if !ok {
			return fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		d.accounts[key] = Account{Address: key, PasswordHash: hash, Scram: keys, Admin: old.Admin}
		return nil
	})
}

// Delete removes an account. Aliases that point to it are kept (they then
// resolve to its address, which the caller no longer accepts); its Maildir
// is not touched.
func (f *File) Delete(address string) error {
	key := strings.ToLower(strings.TrimSpace(address))
	return f.update(func(d *db) error {
		if _, ok := d.accounts[key]; !ok {
			return fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		delete(d.accounts, key)
		return nil
	})
}

// List returns all accounts sorted by address.
func (f *File) List() []Account {
	d, _ := f.snapshot()
	return d.list()
}

func (d *db) list() []Account {
	out := make([]Account, 0, len(d.accounts))
	for _, k := range slices.Sorted(maps.Keys(d.accounts)) {
		out = append(out, d.accounts[k].copy())
	}
	return out
}

// AddAlias adds targets to alias, creating it if needed; targets already
// present are not repeated. Targets may be local accounts, other aliases or
// external addresses. Targets naming an existing account or alias are
// stored in canonical form; others keep their local part's case (RFC 5321
// §2.4: only the destination host may treat it as case-insensitive).
func (f *File) AddAlias(alias string, targets ...string) error {
	key, err := Canonical(alias)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return fmt.Errorf("userdb: alias %s needs at least one target", key)
	}
	clean := make([]string, 0, len(targets))
	for _, t := range targets {
		ct, err := checkTarget(t)
		if err != nil {
			return err
		}
		if strings.EqualFold(ct, key) {
			return fmt.Errorf("userdb: alias %s cannot point to itself", key)
		}
		clean = append(clean, ct)
	}
	return f.update(func(d *db) error {
		if _, ok := d.accounts[key]; ok {
			return fmt.Errorf("%w: %s is an account", ErrExists, key)
		}
		cur := d.aliases[key]
		for _, t := range clean {
			if lt := strings.ToLower(t); d.known(lt) {
				t = lt // a local account or alias: store it canonical
			}
			if !slices.ContainsFunc(cur, func(c string) bool { return strings.EqualFold(c, t) }) {
				cur = append(cur, t)
			}
		}
		d.aliases[key] = cur
		return nil
	})
}

// known reports whether addr (lowercased) is an account or an alias.
func (d *db) known(addr string) bool {
	_, acct := d.accounts[addr]
	_, alias := d.aliases[addr]
	return acct || alias
}

// DeleteAlias removes an alias.
func (f *File) DeleteAlias(alias string) error {
	key := strings.ToLower(strings.TrimSpace(alias))
	return f.update(func(d *db) error {
		if _, ok := d.aliases[key]; !ok {
			return fmt.Errorf("%w: alias %s", ErrNotFound, key)
		}
		delete(d.aliases, key)
		return nil
	})
}

// Aliases returns a copy of all aliases and their targets.
func (f *File) Aliases() map[string][]string {
	d, _ := f.snapshot()
	out := make(map[string][]string, len(d.aliases))
	for k, v := range d.aliases {
		out[k] = slices.Clone(v)
	}
	return out
}
