// Package inbound decides what happens to mail the server accepts: which
// senders and recipients are allowed on which listener, and where accepted
// bytes go — into the Maildir of each local recipient (RFC 5321 §4.4 trace
// with Return-Path) or, for authenticated submission to other domains, to
// the outbound queue. It implements server.Backend.
package inbound

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"smtpkit/internal/maildir"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
	"smtpkit/internal/userdb"
)

// Accounts is the part of the account store inbound needs.
type Accounts interface {
	Resolve(address string) (mailboxes []string, ok bool)
	Owns(account, addr string) bool
}

// Relay takes messages for remote recipients (the outbound queue).
type Relay interface {
	// Begin opens a queue entry for env restricted to the remote
	// recipients; the message bytes follow, then Prepare or Abort.
	Begin(ctx context.Context, env *server.Envelope, rcpts []smtp.Address) (RelayWriter, error)
}

// RelayWriter is one queue entry being written (queue.Writer). Its two
// steps let the fan-out of a message to Maildirs and the queue be atomic
// as the client sees it (see writer.Commit).
type RelayWriter interface {
	io.Writer
	// Prepare makes the entry durable without releasing it for delivery.
	Prepare() (id string, err error)
	// AddLocal adds local mailboxes to a prepared entry, durably, for the
	// queue to deliver into their Maildirs later.
	AddLocal(boxes []string) error
	// Publish releases a prepared entry for delivery.
	Publish()
	// Withdraw takes a prepared entry back, durably.
	Withdraw() error
	// Abort discards an entry (before Prepare).
	Abort()
}

// Options configure a Backend.
type Options struct {
	// Domains are the local domains (lower case); mail for them is
	// delivered to Maildirs, never relayed.
	Domains []string
	// Accounts maps local recipients to mailboxes and senders to owners.
	Accounts Accounts
	// MailDir is <data_dir>/mail; a mailbox local@domain is the Maildir
	// MailDir/domain/local.
	MailDir string
	// Relay, when set, takes authenticated mail for remote domains. When
	// nil such mail is refused with a temporary error, never dropped.
	Relay  Relay
	Writer *maildir.Writer
	Logger *slog.Logger
}

// Backend implements server.Backend.
type Backend struct {
	opts    Options
	domains atomic.Pointer[map[string]bool] // replaced by SetDomains on a config reload
	created sync.Map                        // Maildir paths known to exist
}

// New returns a Backend for opts.
func New(opts Options) *Backend {
	if opts.Writer == nil {
		opts.Writer = maildir.NewWriter(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Backend{opts: opts}
	b.SetDomains(opts.Domains)
	return b
}

// SetDomains replaces the set of local domains (a config reload).
func (b *Backend) SetDomains(domains []string) {
	d := make(map[string]bool, len(domains))
	for _, name := range domains {
		d[strings.ToLower(name)] = true
	}
	b.domains.Store(&d)
}

// IsLocal reports whether domain is one of ours.
func (b *Backend) IsLocal(domain string) bool { return (*b.domains.Load())[strings.ToLower(domain)] }

var (
	errRelayDenied  = smtp.E(smtp.CodeMailboxUnavail, smtp.EnhNotAuthorized, "Relaying denied")
	errNoSuchUser   = smtp.E(smtp.CodeMailboxUnavail, smtp.EnhBadMailbox, "No such user here")
	errNotOwner     = smtp.E(smtp.CodeMailboxName, smtp.EnhNotAuthorized, "Sender address not owned by authenticated user")
	errNullOnSubmit = smtp.E(smtp.CodeMailboxName, smtp.EnhNotAuthorized, "Null sender not allowed on submission")
	errNoRelayYet   = smtp.E(smtp.CodeLocalError, smtp.EnhDirectory.Temp(), "Outbound delivery is not configured; try again later")
)

// Sender applies RFC 6409 §6.1 on submission: an authenticated user may
// send only as an address its account owns, and never with the null
// sender. On mx listeners any syntactically valid sender is accepted.
func (b *Backend) Sender(_ context.Context, s *server.SessionInfo, from smtp.Address) error {
	if !s.Role.IsSubmission() && s.AuthUser == "" {
		return nil
	}
	if from.IsNull() {
		return errNullOnSubmit
	}
	if !b.opts.Accounts.Owns(s.AuthUser, from.String()) {
		return errNotOwner
	}
	return nil
}

// Recipient accepts local recipients that resolve to a mailbox (550 5.1.1
// otherwise) and, for authenticated sessions only, remote recipients. Mail
// to other domains from anyone else is relaying and refused (550 5.7.1).
func (b *Backend) Recipient(_ context.Context, s *server.SessionInfo, _, rcpt smtp.Address) error {
	if b.IsLocal(rcpt.Domain) {
		if _, ok := b.opts.Accounts.Resolve(rcpt.String()); !ok {
			return errNoSuchUser
		}
		return nil
	}
	if s.AuthUser == "" {
		return errRelayDenied
	}
	if b.opts.Relay == nil {
		return errNoRelayYet
	}
	return nil
}

// Begin opens the storage for one message: one Maildir delivery shared by
// every local mailbox, and a queue entry for remote recipients.
func (b *Backend) Begin(ctx context.Context, env *server.Envelope) (server.MessageWriter, error) {
	var dirs []maildir.Dir
	var mailboxes []string
	seen := map[string]bool{}
	var remote []smtp.Address
	for _, rcpt := range env.Recipients {
		if !b.IsLocal(rcpt.Domain) {
			remote = append(remote, rcpt)
			continue
		}
		boxes, ok := b.opts.Accounts.Resolve(rcpt.String())
		if !ok {
			return nil, errNoSuchUser
		}
		for _, box := range boxes {
			if seen[box] {
				continue
			}
			seen[box] = true
			if !b.IsLocal(domainOf(box)) {
				// An alias pointing outside: forwarded through the relay.
				remote = append(remote, mustAddress(box))
				continue
			}
			dir, err := b.mailbox(box)
			if err != nil {
				return nil, err
			}
			dirs = append(dirs, dir)
			mailboxes = append(mailboxes, box)
		}
	}
	if len(remote) > 0 && b.opts.Relay == nil {
		return nil, errNoRelayYet
	}
	w := &writer{id: env.ID, dirs: dirs, boxes: mailboxes, b: b}
	if len(dirs) > 0 {
		d, err := b.opts.Writer.NewMessage(dirs[0])
		if err != nil {
			b.forget(dirs)
			return nil, storageError(err)
		}
		w.local = d
	}
	if len(remote) > 0 {
		q, err := b.opts.Relay.Begin(ctx, env, remote)
		if err != nil {
			w.Abort()
			return nil, err
		}
		w.queue = q
	}
	// RFC 5321 §4.4: the final delivery adds Return-Path. For the queue
	// copy it is added by the delivery that finally stores it, so only the
	// Maildir copy gets it here.
	if w.local != nil {
		if _, err := fmt.Fprintf(w.local, "Return-Path: <%s>\r\n", env.From.String()); err != nil {
			w.Abort()
			return nil, storageError(err)
		}
	}
	return w, nil
}

// mailbox returns (creating it on first use) the Maildir of a local
// account address.
// Created Maildirs are remembered so that the hot path does not stat and
// mkdir them for every message; a failed commit forgets them again, in case
// one was removed behind our back.
func (b *Backend) mailbox(addr string) (maildir.Dir, error) {
	local, domain, _ := strings.Cut(strings.ToLower(addr), "@")
	if _, err := userdb.Canonical(addr); err != nil || local == "" {
		return maildir.Dir{}, fmt.Errorf("mailbox name %q unusable: %w", addr, err)
	}
	path := filepath.Join(b.opts.MailDir, domain, local)
	if _, ok := b.created.Load(path); ok {
		return maildir.Dir{Path: path}, nil
	}
	dir, err := b.opts.Writer.Create(path)
	if err != nil {
		return maildir.Dir{}, storageError(err)
	}
	b.created.Store(path, struct{}{})
	return dir, nil
}

// forget drops dirs from the created-Maildir cache.
func (b *Backend) forget(dirs []maildir.Dir) {
	for _, d := range dirs {
		b.created.Delete(d.Path)
	}
}

func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	return addr[i+1:]
}

func mustAddress(addr string) smtp.Address {
	i := strings.LastIndexByte(addr, '@')
	return smtp.Address{Local: addr[:i], Domain: addr[i+1:]}
}

// storageError turns a file system failure into 452 4.3.1 (insufficient
// system storage, RFC 5321 §4.2.3; RFC 3463 §3.4) so the client retries
// later.
func storageError(err error) error {
	return smtp.Wrap(smtp.R(smtp.CodeInsufficientSpace, smtp.EnhSystemFull.Temp(), "Insufficient system storage, try again later"), err)
}

// writer fans the message out to the Maildir delivery and the queue entry.
type writer struct {
	b     *Backend
	id    string // the envelope id, used when there is no queue id
	dirs  []maildir.Dir
	boxes []string // the mailbox addresses of dirs, in order
	local *maildir.Message
	queue RelayWriter
}

func (w *writer) Write(p []byte) (int, error) {
	if w.local != nil {
		if _, err := w.local.Write(p); err != nil {
			return 0, storageError(err)
		}
	}
	if w.queue != nil {
		if _, err := w.queue.Write(p); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Commit stores the message so that, as the client sees it, the fan-out is
// all or nothing: a 250 means every recipient gets exactly one copy, an
// error means nothing was stored or queued and the client may send the
// whole message again.
//
//  1. The queue copy is prepared: durable, but not yet released for
//     delivery. If that fails, nothing is stored (4xx).
//  2. The Maildir copies are committed.
//  3. If that fails, the local mailboxes are added to the prepared queue
//     entry, durably, and the queue delivers them into their Maildirs
//     later (its local courier); the client gets 250. If even that fails,
//     the queue entry is withdrawn and the client gets 452 4.3.1.
//  4. The queue entry is published.
//
// The id is the queue id when there is one.
func (w *writer) Commit() (string, error) {
	if w.queue == nil {
		if w.local != nil {
			if _, err := w.local.Commit(w.dirs); err != nil {
				w.b.forget(w.dirs)
				return "", storageError(err)
			}
		}
		return w.id, nil
	}
	q := w.queue
	w.queue = nil
	id, err := q.Prepare()
	if err != nil {
		w.Abort()
		return "", err
	}
	if w.local != nil {
		if _, err := w.local.Commit(w.dirs); err != nil {
			w.b.forget(w.dirs)
			if err := w.queueLocal(q, id, err); err != nil {
				return "", err
			}
		}
	}
	q.Publish()
	return id, nil
}

// queueLocal is step 3 of Commit: the Maildir commit failed with cause
// after the queue copy was prepared.
func (w *writer) queueLocal(q RelayWriter, id string, cause error) error {
	log := w.b.opts.Logger.With("msgid", id, "mailboxes", len(w.boxes))
	aerr := q.AddLocal(w.boxes)
	if aerr == nil {
		log.Warn("maildir delivery failed; local recipients queued for a later delivery", "err", cause)
		return nil
	}
	if werr := q.Withdraw(); werr != nil {
		// The queue copy may survive a crash while the client sends the
		// message again: its remote recipients may get it twice.
		log.Error("maildir delivery failed and the queue copy could not be withdrawn",
			"err", cause, "queue_err", aerr, "withdraw_err", werr, "possible_duplicate", true)
	} else {
		log.Warn("maildir delivery failed; queue copy withdrawn, the client will retry", "err", cause, "queue_err", aerr)
	}
	return storageError(cause)
}

func (w *writer) Abort() {
	if w.local != nil {
		w.local.Abort()
	}
	if w.queue != nil {
		w.queue.Abort()
	}
}

var _ io.Writer = (*writer)(nil)

// DeliverMessage stores a complete message (a bounce, for example) for one
// local recipient, with Return-Path <from>.
func (b *Backend) DeliverMessage(ctx context.Context, id string, from smtp.Address, rcpt smtp.Address, msg []byte) error {
	env := &server.Envelope{ID: id, Session: &server.SessionInfo{}, From: from, Recipients: []smtp.Address{rcpt}}
	w, err := b.Begin(ctx, env)
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		w.Abort()
		return err
	}
	_, err = w.Commit()
	return err
}

// DeliverLocal stores a queued message (the local recipients that the
// queue took over when their Maildir delivery failed, see writer.Commit)
// into the Maildirs of boxes, local mailbox addresses, with Return-Path
// <from> ("" is the null sender). It is all or nothing: on error no
// Maildir holds the message.
func (b *Backend) DeliverLocal(ctx context.Context, id, from string, boxes []string, body io.Reader) error {
	dirs := make([]maildir.Dir, 0, len(boxes))
	for _, box := range boxes {
		if !strings.Contains(box, "@") || !b.IsLocal(domainOf(box)) {
			return smtp.E(smtp.CodeMailboxUnavail, smtp.EnhBadMailbox, "not a local mailbox: "+box)
		}
		dir, err := b.mailbox(box)
		if err != nil {
			return err
		}
		dirs = append(dirs, dir)
	}
	if len(dirs) == 0 {
		return nil
	}
	d, err := b.opts.Writer.NewMessage(dirs[0])
	if err != nil {
		b.forget(dirs)
		return storageError(err)
	}
	if _, err := fmt.Fprintf(d, "Return-Path: <%s>\r\n", from); err == nil {
		_, err = io.Copy(d, body)
	}
	if err != nil {
		d.Abort()
		return storageError(err)
	}
	if _, err := d.Commit(dirs); err != nil {
		b.forget(dirs)
		return storageError(err)
	}
	b.opts.Logger.Info("delivered", "msgid", id, "from", from, "mailboxes", len(dirs))
	return nil
}
