package local

import "smtpkit/internal/smtp"

// Every reply of local delivery is named here (issue #12); codes and
// enhanced codes come from internal/smtp/codes.go.

// ErrNoSuchUser is the answer for a local address that resolves to no
// mailbox: 550 5.1.1 (RFC 3463 §3.2, bad destination mailbox address).
var ErrNoSuchUser = smtp.E(smtp.CodeMailboxUnavail, smtp.EnhBadMailbox, "No such user here")

// errNotLocal refuses a mailbox outside the local domains: 550 5.1.1
// (RFC 3463 §3.2).
func errNotLocal(box string) error {
	return smtp.E(smtp.CodeMailboxUnavail, smtp.EnhBadMailbox, "not a local mailbox: "+box)
}

// replyStorageFull is 452 4.3.1, insufficient system storage (RFC 5321
// §4.2.3; RFC 3463 §3.4): the client, or the queue, retries later.
var replyStorageFull = smtp.R(smtp.CodeInsufficientSpace, smtp.EnhSystemFull.Temp(), "Insufficient system storage, try again later")
