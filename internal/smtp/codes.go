package smtp

// Reply codes of RFC 5321 §4.2.2 and §4.2.3, named.
const (
	CodeSystemStatus      = 211
	CodeHelp              = 214
	CodeReady             = 220 // <domain> Service ready
	CodeClosing           = 221 // Service closing transmission channel
	CodeAuthOK            = 235 // RFC 4954 §6
	CodeOK                = 250
	CodeNotLocalWillFwd   = 251
	CodeCannotVRFY        = 252
	CodeAuthContinue      = 334 // RFC 4954 §4
	CodeStartData         = 354
	CodeUnavailable       = 421 // Service not available, closing transmission channel
	CodeMailboxBusy       = 450
	CodeLocalError        = 451
	CodeInsufficientSpace = 452
	CodeTempAuthFailure   = 454 // RFC 4954 §6
	CodeParamsTemp        = 455
	CodeSyntax            = 500
	CodeSyntaxParams      = 501
	CodeNotImplemented    = 502
	CodeBadSequence       = 503
	CodeParamNotImpl      = 504
	CodeAuthRequired      = 530 // RFC 4954 §6
	CodeAuthFailed        = 535 // RFC 4954 §6
	CodeEncryptRequired   = 538 // RFC 4954 §6
	CodeMailboxUnavail    = 550
	CodeUserNotLocal      = 551
	CodeExceededStorage   = 552
	CodeMailboxName       = 553
	CodeTransactionFailed = 554
	CodeParamsPerm        = 555
)

// Enhanced status codes used by smtpkit (RFC 3463 §3; the registry of RFC 5248).
const (
	EnhOK              Enhanced = "2.0.0"
	EnhSenderOK        Enhanced = "2.1.0"
	EnhRecipientOK     Enhanced = "2.1.5"
	EnhProtocolOK      Enhanced = "2.5.0" // e.g. VRFY's 252: will accept, cannot verify
	EnhMessageOK       Enhanced = "2.6.0"
	EnhAuthOK          Enhanced = "2.7.0"
	EnhOther           Enhanced = "5.0.0"
	EnhBadMailbox      Enhanced = "5.1.1" // bad destination mailbox address
	EnhBadSystem       Enhanced = "5.1.2"
	EnhBadSyntaxDest   Enhanced = "5.1.3"
	EnhBadSender       Enhanced = "5.1.7"
	EnhMailboxFull     Enhanced = "5.2.2"
	EnhSystem          Enhanced = "5.3.0" // other or undefined mail system status; 4.3.0 as Temp()
	EnhSystemFull      Enhanced = "5.3.1" // mail system full (RFC 3463 §3.4); 4.3.1 when it passes
	EnhNotAccepting    Enhanced = "5.3.2" // system not accepting network messages; 4.3.2 at shutdown
	EnhTooBig          Enhanced = "5.3.4" // message too big for system
	EnhConnection      Enhanced = "5.4.2" // bad connection; 4.4.2 as Temp(), the timeout of RFC 5321 §4.5.3.2
	EnhNoRoute         Enhanced = "5.4.4"
	EnhProtocol        Enhanced = "5.5.0"
	EnhInvalidCommand  Enhanced = "5.5.1"
	EnhSyntax          Enhanced = "5.5.2"
	EnhTooManyRcpt     Enhanced = "5.5.3"
	EnhBadParams       Enhanced = "5.5.4"
	EnhWrongProtocol   Enhanced = "5.5.5"
	EnhMedia           Enhanced = "5.6.0" // other or undefined media error (content not accepted)
	EnhConversion      Enhanced = "5.6.7" // RFC 6531: address needs SMTPUTF8
	EnhSecurity        Enhanced = "5.7.0"
	EnhNotAuthorized   Enhanced = "5.7.1" // delivery not authorized (relay denied)
	EnhAuthRequired    Enhanced = "5.7.0"
	EnhBadCredentials  Enhanced = "5.7.8" // RFC 4954 §6
	EnhEncryptRequired Enhanced = "5.7.11"
	EnhMechTooWeak     Enhanced = "5.7.9"
)

// Temp returns the 4.x.x twin of a 5.x.x enhanced code.
func (e Enhanced) Temp() Enhanced {
	if len(e) > 0 && e[0] == '5' {
		return "4" + e[1:]
	}
	return e
}
