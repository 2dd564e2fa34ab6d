// Package local is smtpkit's final delivery (RFC 5321 §4.4 "final
// delivery"): it resolves the addresses of the local domains to mailboxes
// (accounts, +tags, aliases and postmaster, as the account store resolves
// them), maps a mailbox local@domain to the Maildir <mail>/domain/local,
// creating it on first use, and stores messages there through maildir
// (written once, made durable, linked into every new/) with the
// Return-Path of the envelope's reverse-path.
//
// The inbound fan-out (internal/inbound) stores what the server accepts
// through Begin; the queue's courier for local recipients and the bounces
// to local senders (internal/delivery) store complete messages through
// Deliver. No SMTP session is involved in either.
package local

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"smtpkit/internal/maildir"
	"smtpkit/internal/smtp"
)

// Accounts is the part of the account store local delivery needs
// (userdb.File).
type Accounts interface {
	// Resolve maps an address to the mailboxes it delivers to: canonical
	// account addresses, and alias members that may be outside the local
	// domains. ok is false for an unknown address.
	Resolve(address string) (mailboxes []string, ok bool)
}

// Options configure a Store.
type Options struct {
	// Domains are the local domains; mail for them is delivered here,
	// never relayed. Matched case-insensitively.
	Domains []string
	// Accounts maps local addresses to mailboxes.
	Accounts Accounts
	// MailDir is <data_dir>/mail; a mailbox local@domain is the Maildir
	// MailDir/domain/local.
	MailDir string
	// Writer writes the Maildir files (its sync mode and journal); nil
	// gets a maildir.NewWriter of its own.
	Writer *maildir.Writer
	Logger *slog.Logger
}

// Store is the local mail store. Its methods are safe for concurrent use.
type Store struct {
	opts    Options
	domains atomic.Pointer[map[string]bool] // replaced by SetDomains on a config reload
	created sync.Map                        // Maildir paths known to exist
}

// New returns a Store for opts.
func New(opts Options) *Store {
	if opts.Writer == nil {
		opts.Writer = maildir.NewWriter(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{opts: opts}
	s.SetDomains(opts.Domains)
	return s
}

// SetDomains replaces the set of local domains (a config reload).
func (s *Store) SetDomains(domains []string) {
	d := make(map[string]bool, len(domains))
	for _, name := range domains {
		d[strings.ToLower(name)] = true
	}
	s.domains.Store(&d)
}

// IsLocal reports whether domain is one of ours.
func (s *Store) IsLocal(domain string) bool { return (*s.domains.Load())[strings.ToLower(domain)] }

// storageError turns a file system failure into 452 4.3.1 (insufficient
// system storage, RFC 5321 §4.2.3; RFC 3463 §3.4) so the client, or the
// queue, retries later.
func storageError(err error) error {
	return smtp.Wrap(replyStorageFull, err)
}
