package inbound

import (
	"smtpkit/internal/sendlimit"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// accountlimits.go: per-account sending limits ([account_limits],
// internal/sendlimit). An authenticated account's message is counted
// when its MAIL is accepted, each distinct recipient when its RCPT is;
// over a limit the command gets 451 4.7.1 (RFC 3463 §3.8: a temporary
// security/policy refusal; the client's MTA or user tries again later),
// a warning naming the account and the limit is logged and Events is
// told. Clients that did not authenticate (mx, trusted networks) have no
// account and are not counted.

// AccountLimits counts what authenticated accounts send
// (*sendlimit.Store).
type AccountLimits interface {
	Message(account string) sendlimit.Exceeded
	Recipient(account, rcpt string) sendlimit.Exceeded
}

// limitMessage is asked at MAIL, after every other check of the sender.
func (b *Backend) limitMessage(s *server.SessionInfo) error {
	if b.opts.AccountLimits == nil || s.AuthUser == "" {
		return nil
	}
	return b.overLimit(s, "", b.opts.AccountLimits.Message(s.AuthUser))
}

// limitRecipient is asked at RCPT, after every other check of rcpt.
func (b *Backend) limitRecipient(s *server.SessionInfo, rcpt smtp.Address) error {
	if b.opts.AccountLimits == nil || s.AuthUser == "" {
		return nil
	}
	return b.overLimit(s, rcpt.String(), b.opts.AccountLimits.Recipient(s.AuthUser, rcpt.String()))
}

// overLimit turns an exceeded limit into the reply, logged and counted.
func (b *Backend) overLimit(s *server.SessionInfo, rcpt string, e sendlimit.Exceeded) error {
	if e.OK() {
		return nil
	}
	log := b.opts.Logger.With("conn", s.ID, "account", s.AuthUser, "limit", e.Limit, "max", e.Max)
	if rcpt != "" {
		log = log.With("rcpt", rcpt)
	}
	log.Warn("account over its sending limit")
	b.events().AccountLimited(e.Limit)
	return errAccountLimited(e)
}
