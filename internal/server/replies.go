package server

import (
	"strconv"
	"strings"

	"smtpkit/internal/smtp"
)

// Every reply the server sends is named here, grouped by the command that
// sends it; the handlers refer to the names. Codes and enhanced codes come
// from internal/smtp/codes.go (RFC 5321 §4.2.2, RFC 3463 §3). A reply
// whose text carries a value (the hostname, a size, a queue id) is a small
// function. TestServerRepliesInOneFile (internal/codes_test.go) keeps
// smtp.R and smtp.E calls of this package in this file.

// Connection: greeting, admission and the replies that close a session
// (RFC 5321 §3.1, §3.8, §4.2: 220 opens, 421 closes).

// replyGreeting opens a session (RFC 5321 §3.1, §4.3.1).
func replyGreeting(hostname string) smtp.Reply {
	return smtp.R(smtp.CodeReady, "", hostname+" ESMTP smtpkit ready")
}

// replyRefused turns a connection away before its greeting, saying why
// (RFC 5321 §3.1: 421 instead of 220).
func replyRefused(hostname, why string) smtp.Reply {
	return smtp.R(smtp.CodeUnavailable, smtp.EnhSecurity.Temp(), hostname+" "+why+", try again later")
}

// replyShuttingDown ends a session when the server stops (RFC 5321 §3.8).
func replyShuttingDown(hostname string) smtp.Reply {
	return smtp.R(smtp.CodeUnavailable, smtp.EnhNotAccepting.Temp(), hostname+" service shutting down, closing connection")
}

// replyTimeout is the reply that ends a session whose client was too slow
// (RFC 5321 §4.5.3.2: the server may close after its timeout, with 421).
func replyTimeout(hostname string) smtp.Reply {
	return smtp.R(smtp.CodeUnavailable, smtp.EnhConnection.Temp(), hostname+" timeout exceeded, closing connection")
}

// replyEarlyTalker ends a session whose client sent something before the
// greeting (RFC 5321 §4.3.1: the client waits for the 220; §3.1 lets the
// server answer 554 instead of it).
func replyEarlyTalker(hostname string) smtp.Reply {
	return smtp.R(smtp.CodeTransactionFailed, smtp.EnhProtocol, hostname+" protocol error: you talked before the greeting (RFC 5321 §4.3.1), closing connection")
}

// replyTooManyErrors ends a session after too many 5xx answers (RFC 5321
// §4.2: 421 when the service must close the channel).
func replyTooManyErrors(hostname string) smtp.Reply {
	return smtp.R(smtp.CodeUnavailable, smtp.EnhSecurity.Temp(), hostname+" too many errors, closing connection")
}

// replyTooManyTxns ends a session that has used its Limits.SessionTxns
// transactions (RFC 9422 §4.1 MAILMAX; RFC 5321 §3.8: 421 closes).
func replyTooManyTxns(hostname string) smtp.Reply {
	return smtp.R(smtp.CodeUnavailable, smtp.EnhSystem.Temp(), hostname+" too many transactions in this session (LIMITS MAILMAX), closing connection; go on in a new one")
}

// replyLocalErrorClosing ends a session whose handler failed (RFC 5321
// §3.8: 421 when the server cannot go on).
func replyLocalErrorClosing(hostname string) smtp.Reply {
	return smtp.R(smtp.CodeUnavailable, smtp.EnhSystem.Temp(), hostname+" local error, closing connection")
}

// Command-line framing errors (RFC 5321 §2.3.8, §4.5.3.1.4); the session
// answers them and goes on.
var (
	errCommandTooLong = smtp.E(smtp.CodeSyntax, smtp.EnhSyntax, "Line too long")
	errCommandBareLF  = smtp.E(smtp.CodeSyntax, smtp.EnhSyntax, "Bare LF in command; lines must end in CRLF (RFC 5321 §2.3.8)")
)

// Replies shared by several commands (RFC 5321 §4.2.2, §4.1.4).
var (
	replyOK          = smtp.R(smtp.CodeOK, smtp.EnhOK, "OK")
	replyNeedHelo    = smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "Send EHLO or HELO first")
	replyNeedEHLO    = smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "Send EHLO first")
	replyNoParams    = smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "Syntax error, no parameters allowed")
	replyUnknownVerb = smtp.R(smtp.CodeSyntax, smtp.EnhSyntax, "Command unrecognized")
	// The replies of every message, built once.
	replySenderOK = smtp.R(smtp.CodeOK, smtp.EnhSenderOK, "Sender OK")
	replyRcptOK   = smtp.R(smtp.CodeOK, smtp.EnhRecipientOK, "Recipient OK")
	replyDataGo   = smtp.R(smtp.CodeStartData, "", "End data with <CR><LF>.<CR><LF>")
)

// Sequence refusals (RFC 5321 §4.1.4: 503 for commands out of order).
var (
	replyNeedMail       = smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "Need MAIL command first")
	replyNeedRcpt       = smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "Need RCPT command first")
	replyNestedMail     = smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "Nested MAIL command")
	replyRcptDuringBDAT = smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "RCPT not allowed during BDAT")
	replyDataAfterBDAT  = smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "DATA not allowed after BDAT")
	// RFC 3030 §3: after MAIL BODY=BINARYMIME, DATA gets 503; the
	// transaction stays, so the client may still send BDAT.
	replyBinaryNeedsBDAT   = smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "BODY=BINARYMIME data must be sent with BDAT (RFC 3030 §3)")
	replyAuthInTransaction = smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "AUTH not allowed during a mail transaction")
)

// EHLO, HELO (RFC 5321 §4.1.1.1) and QUIT (§4.1.1.10).
var replyEHLOSyntax = smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "Syntax: EHLO hostname")

// replyHelo answers HELO with the server's name (RFC 5321 §4.1.1.1).
func replyHelo(hostname string) smtp.Reply {
	return smtp.R(smtp.CodeOK, "", hostname)
}

// replyEHLO answers EHLO: the greeting line, then one extension keyword a
// line (RFC 5321 §4.1.1.1).
func replyEHLO(hostname, client string, extensions []string) smtp.Reply {
	lines := []string{hostname + " greets " + client}
	lines = append(lines, extensions...)
	return smtp.Reply{Code: smtp.CodeOK, Lines: lines}
}

// replyClosing answers QUIT (RFC 5321 §4.1.1.10).
func replyClosing(hostname string) smtp.Reply {
	return smtp.R(smtp.CodeClosing, smtp.EnhOK, hostname+" closing connection")
}

// HELP (RFC 5321 §4.1.1.8), EXPN and VRFY (§3.5.3, §7.3).

// replyHelp lists the commands (RFC 5321 §4.1.1.8).
func replyHelp(verbs []string) smtp.Reply {
	return smtp.Reply{Code: smtp.CodeHelp, Enhanced: smtp.EnhOK, Lines: []string{
		"smtpkit: commands are",
		strings.Join(verbs, " "),
		"See RFC 5321",
	}}
}

var (
	replyNoEXPN     = smtp.R(smtp.CodeNotImplemented, smtp.EnhInvalidCommand, "EXPN not available")
	replyVRFYSyntax = smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "Syntax: VRFY address")
	// RFC 5321 §3.5.3: 252 when the server will not verify but will try.
	replyCannotVRFY = smtp.R(smtp.CodeCannotVRFY, smtp.EnhProtocolOK, "Cannot VRFY user, but will accept message and attempt delivery")
)

// STARTTLS (RFC 3207 §4).
var (
	replyTLSActive = smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "TLS already active")
	replyNoTLS     = smtp.R(smtp.CodeNotImplemented, smtp.EnhInvalidCommand, "STARTTLS not available")
	replyTLSReady  = smtp.R(smtp.CodeReady, smtp.EnhOK, "Ready to start TLS")
)

// AUTH (RFC 4954 §4, §6).
var (
	replyAuthNotOffered  = smtp.R(smtp.CodeNotImplemented, smtp.EnhInvalidCommand, "AUTH not available on this port")
	replyAuthNeedTLS     = smtp.R(smtp.CodeEncryptRequired, smtp.EnhEncryptRequired, "Encryption required for requested authentication mechanism")
	replyAuthAgain       = smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "Already authenticated")
	replyAuthSyntax      = smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "Syntax: AUTH mechanism [initial-response]")
	replyAuthUnknownMech = smtp.R(smtp.CodeParamNotImpl, smtp.EnhBadParams, "Unrecognized authentication mechanism")
	replyAuthCancelled   = smtp.R(smtp.CodeSyntaxParams, smtp.EnhOther, "Authentication cancelled")
	replyAuthOK          = smtp.R(smtp.CodeAuthOK, smtp.EnhAuthOK, "Authentication successful")
	replyAuthFailed      = smtp.R(smtp.CodeAuthFailed, smtp.EnhBadCredentials, "Authentication credentials invalid")
	replyAuthMalformed   = smtp.R(smtp.CodeSyntaxParams, smtp.EnhSyntax, "Malformed authentication exchange")
	replyAuthTempRetry   = smtp.R(smtp.CodeTempAuthFailure, smtp.EnhSecurity.Temp(), "Temporary authentication failure, try again later")
	replyAuthTemp        = smtp.R(smtp.CodeTempAuthFailure, smtp.EnhSecurity.Temp(), "Temporary authentication failure")
)

// replyAuthChallenge is a server challenge (RFC 4954 §4: 334 and base64).
func replyAuthChallenge(encoded string) smtp.Reply {
	return smtp.Reply{Code: smtp.CodeAuthContinue, Lines: []string{encoded}}
}

func replyBadBase64() smtp.Reply {
	return smtp.R(smtp.CodeSyntaxParams, smtp.EnhSyntax, "Invalid base64 data")
}

func replyAddressBlocked(hostname string) smtp.Reply {
	return smtp.R(smtp.CodeUnavailable, smtp.EnhSecurity.Temp(), hostname+" too many failed logins, try again later")
}

// replyAccountLocked is the one answer to every attempt on a locked
// account, whatever the password: it never depends on a check.
func replyAccountLocked() smtp.Reply {
	return smtp.R(smtp.CodeTempAuthFailure, smtp.EnhSecurity.Temp(), "Too many failed logins for this account, try again later")
}

// replyTooManyLogins closes a session after too many failed logins.
func replyTooManyLogins(hostname string) smtp.Reply {
	return smtp.R(smtp.CodeUnavailable, smtp.EnhSecurity.Temp(), hostname+" too many failed logins, closing connection")
}

// MAIL (RFC 5321 §4.1.1.2, RFC 1870 SIZE, RFC 6531 SMTPUTF8, RFC 4954 §5
// AUTH=) and RCPT (§4.1.1.3, §4.5.3.1.8).
var (
	replyNeedSTARTTLS   = smtp.R(smtp.CodeAuthRequired, smtp.EnhSecurity, "Must issue a STARTTLS command first")
	replyAuthRequired   = smtp.R(smtp.CodeAuthRequired, smtp.EnhSecurity, "Authentication required")
	replyParamsNeedEHLO = smtp.R(smtp.CodeParamsPerm, smtp.EnhBadParams, "Parameters need EHLO")
	replyTooBig         = smtp.R(smtp.CodeExceededStorage, smtp.EnhTooBig, "Message size exceeds fixed maximum message size")
	replySMTPUTF8Value  = smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "SMTPUTF8 takes no value")
	replyBadAuthParam   = smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "Bad AUTH parameter")
	// RFC 8689 §2: REQUIRETLS has no value and needs a TLS-protected session.
	replyRequireTLSValue    = smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "REQUIRETLS takes no value")
	replyRequireTLSNeedsTLS = smtp.R(smtp.CodeAuthRequired, smtp.EnhEncryptNeeded, "REQUIRETLS needs a TLS-protected session; issue STARTTLS first (RFC 8689)")
	replyNeedSMTPUTF8       = smtp.R(smtp.CodeMailboxName, smtp.EnhConversion, "Address needs SMTPUTF8")
	replyBadRcptParam       = smtp.R(smtp.CodeParamsPerm, smtp.EnhBadParams, "Unsupported RCPT parameter")
	replyRelayDenied        = smtp.R(smtp.CodeMailboxUnavail, smtp.EnhNotAuthorized, "Relaying denied")
	replyRcptDuplicate      = smtp.R(smtp.CodeOK, smtp.EnhRecipientOK, "Recipient OK (duplicate)")
	replyTooManyRcpt        = smtp.R(smtp.CodeInsufficientSpace, smtp.EnhTooManyRcpt.Temp(), "Too many recipients")
	replyTooManyRcptSession = smtp.R(smtp.CodeInsufficientSpace, smtp.EnhTooManyRcpt.Temp(), "Too many recipients in this session, try again in a new one")
	replyLocalError         = smtp.R(smtp.CodeLocalError, smtp.EnhSystem.Temp(), "Local error in processing, try again later")
)

// replyBadMailParam refuses a MAIL parameter the server does not know
// (RFC 5321 §4.1.1.2: 555).
func replyBadMailParam(keyword string) smtp.Reply {
	return smtp.R(smtp.CodeParamsPerm, smtp.EnhBadParams, "Unsupported parameter "+keyword)
}

// DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030 §2).
var (
	replyBDATSyntax = smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "Syntax: BDAT size [LAST]")
	// errMessageTooBig refuses a chunked message over SIZE (RFC 1870 §6).
	errMessageTooBig = smtp.E(smtp.CodeExceededStorage, smtp.EnhTooBig, "Message size exceeds fixed maximum message size")
	// errHeaderTooLarge refuses a message whose header block is over the
	// limit; like SIZE it is a permanent refusal of this message.
	errHeaderTooLarge = smtp.E(smtp.CodeExceededStorage, smtp.EnhTooBig, "Message header exceeds fixed maximum header size")
)

// replyQueued accepts a message (RFC 5321 §4.1.1.4: 250 after the end of
// data), naming its queue id.
func replyQueued(qid string) smtp.Reply {
	return smtp.R(smtp.CodeOK, smtp.EnhOK, "OK: queued as "+qid)
}

// replyChunkReceived acknowledges a BDAT chunk that is not the last
// (RFC 3030 §2).
func replyChunkReceived(n int64) smtp.Reply {
	return smtp.R(smtp.CodeOK, smtp.EnhOK, strconv.FormatInt(n, 10)+" octets received")
}

// XCLIENT and XFORWARD (Postfix's XCLIENT_README, XFORWARD_README; the
// codes and texts are Postfix's).
var (
	replyXNotAuthorized = smtp.R(smtp.CodeMailboxUnavail, smtp.EnhSecurity, "Insufficient authorization")
	replyXInTransaction = smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "MAIL transaction in progress")
)

// replyAttrSyntax refuses an XCLIENT or XFORWARD without attributes (or
// with too many).
func replyAttrSyntax(verb string) smtp.Reply {
	return smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "Syntax: "+verb+" attribute=value...")
}

// replyBadAttrName refuses an attribute the command does not have.
func replyBadAttrName(verb, name string) smtp.Reply {
	return smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "Bad "+verb+" attribute name: "+printable([]byte(name)))
}

// replyBadAttrValue refuses an attribute value.
func replyBadAttrValue(verb, name string) smtp.Reply {
	return smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "Bad "+verb+" attribute value for "+name)
}
