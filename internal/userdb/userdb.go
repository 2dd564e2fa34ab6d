// Package userdb is the account store: accounts with argon2id password
// hashes and SCRAM-SHA-256 keys, and aliases that map an address to one or
// more targets. The embedded implementation, File, keeps everything in one
// JSON file that it rewrites atomically and re-reads when another process
// (the `smtpkit user` command) changed it.
//
// Addresses are stored in canonical form: the whole address lowercased. The
// domain is case-insensitive by RFC 5321 §2.4; the local part is matched
// case-insensitively here by local policy, which that section permits for
// the receiving host.
package userdb

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"
)

// ScramKeys are the SCRAM-SHA-256 verifiers of one password (RFC 5802 §3,
// RFC 7677): the server stores StoredKey and ServerKey, never the password.
type ScramKeys struct {
	Iterations int    `json:"iterations"`
	Salt       []byte `json:"salt"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

// Account is one mailbox owner: its canonical address, its password as an
// argon2id hash in PHC string form, and its SCRAM keys. Admin marks an
// account that may log in to the status page (internal/web).
type Account struct {
	Address      string    `json:"address"`
	PasswordHash string    `json:"password_hash"`
	Scram        ScramKeys `json:"scram_sha256"`
	Admin        bool      `json:"admin,omitempty"`
}

// Store is what the server needs from an account store; SQL or LDAP
// back ends can implement it later.
type Store interface {
	// Resolve maps a recipient address in a local domain to the addresses
	// that receive it: the account itself, the expansion of an alias
	// (recursively, bounded), the account or alias behind a plus-address
	// "user+tag@d", and for postmaster@<domain> (RFC 5321 §4.5.1) the
	// postmaster account or alias if there is one, else the postmaster
	// address itself. Alias targets that are neither accounts nor aliases
	// (external addresses) are returned unchanged; the caller routes them.
	Resolve(address string) (mailboxes []string, ok bool)
	// Authenticate checks a password. Every failure is ErrBadCredentials,
	// and an unknown user costs as much time as a wrong password. Waiting
	// for the right to compute a hash ends with ctx (ErrBusy).
	Authenticate(ctx context.Context, username, password string) (Account, error)
	// Lookup returns an account by address, for SCRAM.
	Lookup(username string) (Account, bool)
	// Owns reports whether account may use addr as envelope sender
	// (RFC 6409 §6.1): its own address, its plus-addresses, and aliases
	// whose expansion reaches it.
	Owns(account, addr string) bool
}

// Errors returned by the store.
var (
	ErrBadCredentials = errors.New("userdb: invalid credentials")
	ErrNotFound       = errors.New("userdb: no such account or alias")
	ErrExists         = errors.New("userdb: address already exists")
	// ErrBusy: every hash slot stayed taken until the caller's context
	// ended. It is a temporary condition, not a wrong password.
	ErrBusy = errors.New("userdb: password check not started: every hash slot is busy")
)

// Bounds on what a client can make the store process.
const (
	maxAddressLen  = 254  // RFC 5321 §4.5.3.1.3 path minus the brackets
	maxLocalLen    = 64   // RFC 5321 §4.5.3.1.1
	maxPasswordLen = 1024 // longer passwords are refused, not hashed
)

// Canonical validates an account or alias address and returns its canonical
// (lowercased) form. Only dot-atom local parts (RFC 5322 §3.2.3) without
// "/" and "+" are accepted, so that the address is safe to use as a Maildir
// path component and "+" stays free for plus-addressing; UTF-8 is allowed
// in the local part (RFC 6531 §3.3). The domain must be an ASCII host name
// (A-labels for internationalised names).
func Canonical(addr string) (string, error) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	local, domain, ok := split(addr)
	if !ok {
		return "", errors.New("userdb: address must look like local@domain")
	}
	if err := checkLocal(local); err != nil {
		return "", err
	}
	if err := checkDomain(domain); err != nil {
		return "", err
	}
	return addr, nil
}

// split splits at the last "@"; both halves must be non-empty.
func split(addr string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 || len(addr) > maxAddressLen {
		return "", "", false
	}
	return addr[:i], addr[i+1:], true
}

func checkLocal(local string) error {
	bad := errors.New("userdb: local part " + quote(local) + " is not a plain dot-atom (letters, digits, !#$%&'*=?^_`{|}~.- are allowed)")
	if len(local) > maxLocalLen || !utf8.ValidString(local) {
		return bad
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return bad
	}
	for _, r := range local {
		if !localRune(r) {
			return bad
		}
	}
	return nil
}

// localRune reports whether r may appear in an account's local part: atext
// (RFC 5322 §3.2.3) without "/" and "+", dots, and non-ASCII letters.
func localRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case r >= 0x80:
		return r != utf8.RuneError && r > 0x9f // no C1 controls
	}
	return strings.ContainsRune("!#$%&'*=?^_`{|}~-.", r)
}

func checkDomain(domain string) error {
	bad := errors.New("userdb: domain " + quote(domain) + " is not a host name")
	if len(domain) > 253 {
		return bad
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return bad
			}
		}
	}
	return nil
}

// checkTarget validates an alias target, which may be an external address
// with a local part we would not accept for an account. It returns the
// target with its domain lowercased.
func checkTarget(t string) (string, error) {
	t = strings.TrimSpace(t)
	local, domain, ok := split(t)
	if !ok || !utf8.ValidString(t) {
		return "", errors.New("userdb: alias target " + quote(t) + " must look like local@domain")
	}
	for _, r := range t {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' {
			return "", errors.New("userdb: alias target " + quote(t) + " contains a space, control character or bracket")
		}
	}
	domain = strings.ToLower(domain)
	if err := checkDomain(domain); err != nil {
		return "", err
	}
	return local + "@" + domain, nil
}

// stripTag turns "user+tag@d" into "user@d".
func stripTag(addr string) (string, bool) {
	local, domain, ok := split(addr)
	if !ok {
		return "", false
	}
	i := strings.IndexByte(local, '+')
	if i <= 0 {
		return "", false
	}
	return local[:i] + "@" + domain, true
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return "\"" + strings.ToValidUTF8(s, "?") + "\""
}
