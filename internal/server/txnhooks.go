package server

import (
	"context"
	"sort"

	"smtpkit/internal/smtp"
)

// TransactionHooks is implemented by a Backend that follows each
// transaction beyond Sender, Recipient and Begin: a content filter (the
// milter protocol's MAIL stage carries MAIL's ESMTP parameters, and its
// abort stage must know when a transaction is dropped).
type TransactionHooks interface {
	// Mail is called after Sender accepted the reverse-path, with MAIL's
	// ESMTP parameters as "KEYWORD" or "KEYWORD=value" (RFC 5321
	// §4.1.2 esmtp-param), in keyword order. A non-nil error is the reply
	// instead of the 250, and no transaction starts.
	Mail(ctx context.Context, s *SessionInfo, from smtp.Address, params []string) error
	// Reset is called when a transaction that Mail started ends without
	// its message: RSET, HELO/EHLO, STARTTLS, a DATA refused before its
	// 354, the end of the session. (A message that reached Begin ends
	// with its MessageWriter's Commit or Abort; Reset may follow an
	// Abort.)
	Reset(s *SessionInfo)
}

// txnHooks is the session's Backend as TransactionHooks, nil when it has
// none.
func (s *session) txnHooks() TransactionHooks {
	h, _ := s.backend().(TransactionHooks)
	return h
}

// mailHook runs TransactionHooks.Mail for the sender just accepted.
func (s *session) mailHook(from smtp.Address, params smtp.Params) error {
	h := s.txnHooks()
	if h == nil {
		return nil
	}
	args := make([]string, 0, len(params))
	for k, v := range params {
		if v != "" {
			k += "=" + v
		}
		args = append(args, k)
	}
	sort.Strings(args)
	return h.Mail(s.backendContext(), &s.info, from, args)
}

// resetHook runs TransactionHooks.Reset when a transaction is dropped.
func (s *session) resetHook() {
	if h := s.txnHooks(); h != nil {
		h.Reset(&s.info)
	}
}
