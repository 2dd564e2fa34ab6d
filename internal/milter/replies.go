package milter

import "smtpkit/internal/smtp"

// The replies for a milter's SMFIR_REJECT and SMFIR_TEMPFAIL and for a
// milter that is down under default_action = "tempfail": Postfix's
// (smtpd_milters), 550 5.7.1 and 451 4.7.1 — delivery not authorized
// (RFC 3463 §3.8), permanently or for now.
var (
	replyReject   = smtp.R(smtp.CodeMailboxUnavail, smtp.EnhNotAuthorized, "Command rejected")
	replyTempfail = smtp.R(smtp.CodeLocalError, smtp.EnhNotAuthorized.Temp(), "Service unavailable - try again later")
)
