package inbound

import (
	"net/netip"

	"smtpkit/internal/dnsbl"
	"smtpkit/internal/sendlimit"
	"smtpkit/internal/smtp"
)

// Every reply the inbound Backend gives the server is named here (issue
// #12); codes and enhanced codes come from internal/smtp/codes.go.

// RCPT on the MX and submission ports (RFC 5321 §3.6.2, §4.1.1.3).
var (
	// errRelayDenied refuses a remote recipient from an unauthenticated
	// client: no open relay (RFC 5321 §3.6.2, §7.1).
	errRelayDenied = smtp.E(smtp.CodeMailboxUnavail, smtp.EnhNotAuthorized, "Relaying denied")
	// errNoRelayYet defers a remote recipient while no outbound queue is
	// configured.
	errNoRelayYet = smtp.E(smtp.CodeLocalError, smtp.EnhDirectory.Temp(), "Outbound delivery is not configured; try again later")
)

// MAIL on submission (RFC 6409 §6.1: the sender must be the user's own).
var (
	errNotOwner     = smtp.E(smtp.CodeMailboxName, smtp.EnhNotAuthorized, "Sender address not owned by authenticated user")
	errNullOnSubmit = smtp.E(smtp.CodeMailboxName, smtp.EnhNotAuthorized, "Null sender not allowed on submission")
)

// errAccountLimited refuses a MAIL or RCPT of an account over one of its
// sending limits (accountlimits.go): 451 4.7.1, temporary (RFC 3463 §3.8),
// since the window slides and the same message goes through later.
func errAccountLimited(e sendlimit.Exceeded) error {
	return smtp.E(smtp.CodeLocalError, smtp.EnhNotAuthorized.Temp(),
		"Sending limit reached for this account ("+e.String()+"), try again later")
}

// errQueueUnavailable answers a message the queue cannot open an entry
// for: 452 4.3.1 (RFC 5321 §4.2.3; RFC 3463 §3.4), so the client retries
// later.
var errQueueUnavailable = smtp.R(smtp.CodeInsufficientSpace, smtp.EnhSystemFull.Temp(), "Queue unavailable, try again later")

// RCPT TO an SRS address in our domain that does not verify (forward.go):
// 550 5.1.1, the address is not one we issued, or no longer honour (RFC
// 5321 §3.6.2; RFC 3463 §3.2).
var (
	errSRSForged    = smtp.E(smtp.CodeMailboxUnavail, smtp.EnhBadMailbox, "No such SRS address: its hash does not verify (forged, or not issued here)")
	errSRSExpired   = smtp.E(smtp.CodeMailboxUnavail, smtp.EnhBadMailbox, "SRS address has expired: bounces are accepted for a limited time only")
	errSRSMalformed = smtp.E(smtp.CodeMailboxUnavail, smtp.EnhBadMailbox, "Malformed SRS address")
)

// errDMARCReject refuses, at the end of DATA, a message that fails DMARC
// under a p=reject policy with [verify] dmarc = "enforce" (RFC 7489
// §6.6.4, §10.3: 550 5.7.1 is the usual rejection; RFC 3463 §3.8).
// Nothing of it is stored.
func errDMARCReject(domain string) error {
	return smtp.E(smtp.CodeMailboxUnavail, smtp.EnhNotAuthorized, "Message rejected: DMARC policy of "+domain+" (p=reject)")
}

// errDNSBLBlocked is Postfix's reply for a client on a block list
// (RFC 5782 §2.1.1: the TXT record is the reason to show): "554 5.7.1
// Service unavailable; client [192.0.2.1] blocked using bl.example
// (127.0.0.2: reason)".
func errDNSBLBlocked(ip netip.Addr, h dnsbl.Hit) error {
	why := h.Answer.String()
	if h.Text != "" {
		why += ": " + h.Text
	}
	return smtp.E(smtp.CodeTransactionFailed, smtp.EnhNotAuthorized,
		"Service unavailable; client ["+ip.String()+"] blocked using "+h.Zone+" ("+why+")")
}

// errGreylisted defers a delivery attempt of a new triplet (greylist.go):
// 451 4.7.1 (RFC 6647: a temporary failure, which a real MTA retries as
// RFC 5321 §4.5.4.1 asks; RFC 3463 §3.8: not authorized, for now).
var errGreylisted = smtp.E(smtp.CodeLocalError, smtp.EnhNotAuthorized.Temp(), "Greylisted, please try again later")
