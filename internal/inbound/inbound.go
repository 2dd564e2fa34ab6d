// Package inbound decides what happens to mail the server accepts: which
// senders and recipients are allowed on which listener, and where accepted
// bytes go — into local mailboxes through internal/local, and, for
// authenticated submission and clients in the trusted networks to other
// domains (or aliases that point outside), to the outbound queue. The fan-out of one message to both is
// all or nothing as the client sees it (writer.Commit). It implements
// server.Backend.
package inbound

import (
	"context"
	"log/slog"
	"sync"

	"smtpkit/internal/dnsbl"
	"smtpkit/internal/local"
	"smtpkit/internal/milter"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// Accounts is the part of the account store inbound needs: who owns
// which sender address.
type Accounts interface {
	Owns(account, addr string) bool
}

// Options configure a Backend.
type Options struct {
	// Local is local delivery: the local domains, address → mailbox
	// resolution and the Maildirs.
	Local *local.Store
	// Accounts decide which sender addresses an authenticated user owns.
	Accounts Accounts
	// Relay, when set, takes authenticated (or trusted) mail for remote
	// domains. When nil such mail is refused with a temporary error,
	// never dropped.
	Relay Relay
	// Handoff, when set, names the local mailboxes whose final delivery
	// is not a Maildir but the queue's local courier (LMTP to a mail
	// store, internal/delivery): they go into the queue entry, durable
	// before the 250, and are handed on from there. Needs Relay.
	Handoff func(mailbox string) bool
	// SRS, when set, rewrites the sender of mail forwarded outside the
	// local domains and decodes bounces to SRS addresses (forward.go).
	SRS SRS
	// Sign, when set, starts the DKIM signature of a message from an
	// authenticated submitter or a trusted client on its way to the queue
	// (sign.go), for a From domain that goes with the envelope sender's
	// domain.
	Sign func(senderDomain string) MessageSigner
	// Verify, when set, verifies mail arriving on mx listeners from
	// clients that did not authenticate and are not trusted (verify.go).
	// Nil leaves mail as it arrives.
	Verify *Verification
	// DMARCReports, when set, is told every DMARC evaluation (verify.go).
	DMARCReports DMARCRecorder
	// DNSBL, when set, screens mx clients against block and allow lists
	// (screen.go).
	DNSBL *dnsbl.Checker
	// Greylist, when set, greylists mail on mx listeners (greylist.go).
	Greylist Greylister
	// Milters are the content filters of each listener, by listener
	// name, in order (milter.go); none: no filtering.
	Milters map[string][]*milter.Filter
	// HoldDir holds a message larger than 64 KiB while milters see it
	// ("" = the system's temporary directory).
	HoldDir string
	// AccountLimits, when set, counts what authenticated accounts send
	// and refuses what goes over their limits (accountlimits.go).
	AccountLimits AccountLimits
	// Events, when set, is told what the abuse controls did (events.go).
	Events Events
	Logger *slog.Logger
}

// Backend implements server.Backend.
type Backend struct {
	opts     Options
	holds    sync.Pool    // *[]byte of holdMem for messages under verification (hold.go)
	sessions sessionTable // per-session state between Connect and Disconnect (sessions.go)
}

// New returns a Backend for opts.
func New(opts Options) *Backend {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Backend{opts: opts}
	b.holds.New = func() any { buf := make([]byte, 0, holdMem); return &buf }
	return b
}

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
	return b.limitMessage(s) // [account_limits] (accountlimits.go)
}

// Recipient accepts local recipients that resolve to a mailbox (550 5.1.1
// otherwise) and, for authenticated sessions and clients in the trusted
// networks only (trusted.go), remote recipients. Mail to other domains
// from anyone else is relaying and refused (550 5.7.1).
// An SRS address in our SRS domain is accepted from anyone when it
// verifies, as the address it encodes (550 5.1.1 otherwise, forward.go).
// A recipient so accepted may still be greylisted (451 4.7.1,
// greylist.go), and is then shown to the milters (milter.go), which may
// refuse it.
func (b *Backend) Recipient(_ context.Context, s *server.SessionInfo, from, rcpt smtp.Address) error {
	if err := b.screenRecipient(s); err != nil { // DNSBL (screen.go)
		return err
	}
	if err := b.recipient(s, rcpt); err != nil {
		return err
	}
	if err := b.greylistRecipient(s, from, rcpt); err != nil {
		return err
	}
	if err := b.milterRecipient(s, rcpt); err != nil {
		return err
	}
	return b.limitRecipient(s, rcpt) // [account_limits] (accountlimits.go), last: only what is accepted counts
}

// recipient is Recipient without the screening and the greylist: an
// unknown recipient is refused for good before any triplet is recorded
// for it.
func (b *Backend) recipient(s *server.SessionInfo, rcpt smtp.Address) error {
	if b.isSRS(rcpt) {
		return b.srsRecipient(rcpt)
	}
	if b.opts.Local.IsLocal(rcpt.Domain) {
		_, err := b.opts.Local.Mailboxes(rcpt)
		return err
	}
	if !submitter(s) {
		return errRelayDenied
	}
	if b.opts.Relay == nil {
		return errNoRelayYet
	}
	return nil
}

// Begin opens the storage for one message: one local delivery shared by
// every local mailbox, and a queue entry for remote recipients. RFC 5321
// §4.4: the final delivery adds Return-Path; for the queue copy that is
// the delivery that finally stores it, so only the local copy gets it
// here (local.Store.Begin).
//
// In front of the fan-out, in the order the message meets them at the
// end of DATA: verification (verify.go, with the greylist's decision at
// the end of DATA), then the milters (milterwriter.go), which hold the
// message until they have seen it — mail refused by our own policy is
// not shown to them.
func (b *Backend) Begin(ctx context.Context, env *server.Envelope) (server.MessageWriter, error) {
	if err := b.milterData(env); err != nil {
		return nil, err
	}
	w, err := b.fanout(ctx, env)
	if err != nil {
		return nil, err
	}
	var out server.MessageWriter = w
	if m := b.milterFilters(env); m != nil {
		out = b.filtering(ctx, env, w, m)
	}
	if b.verifies(env) {
		vw := b.verifying(ctx, env, out)
		vw.greylist = b.greylistAtData(env) // greylist.go
		return vw, nil
	}
	return out, nil
}

// fanout opens the fan-out of env: its local copies and its queue copy
// (Begin, and again for an envelope a milter changed).
func (b *Backend) fanout(ctx context.Context, env *server.Envelope) (*writer, error) {
	rcpts, bounces, err := b.reverseSRS(env.Recipients)
	if err != nil {
		return nil, err
	}
	dest, err := b.opts.Local.Resolve(rcpts)
	if err != nil {
		return nil, err
	}
	forwarded := append(dest.Forwarded, bounces...)
	direct, viaQueue := splitSuccess(env, dest.Mailboxes, b.opts.Relay != nil)
	direct, viaQueue = b.splitHandoff(direct, viaQueue)
	if len(viaQueue) > 0 && b.opts.Relay == nil {
		return nil, errNoRelayYet
	}
	if len(dest.Remote)+len(forwarded) > 0 && b.opts.Relay == nil {
		return nil, errNoRelayYet
	}
	w := &writer{id: env.ID, boxes: direct, log: b.opts.Logger}
	if len(direct) > 0 {
		if w.local, err = b.opts.Local.Begin(env.From, direct); err != nil {
			return nil, err
		}
	}
	if len(dest.Remote)+len(forwarded)+len(viaQueue) > 0 {
		q, err := b.beginQueue(ctx, env, dest.Remote, forwarded, viaQueue)
		if err != nil {
			w.Abort()
			return nil, err
		}
		w.queue = q
		w.sign = b.signer(env)
	}
	return w, nil
}
