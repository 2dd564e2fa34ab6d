package smtp

// Reply codes of RFC 5321 §4.2.2 and §4.2.3, named.
const (
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
	CodeLocalError        = 451
	CodeInsufficientSpace = 452
	CodeTempAuthFailure   = 454 // RFC 4954 §6
	CodeSyntax            = 500
	CodeSyntaxParams      = 501
	CodeNotImplemented    = 502
	CodeBadSequence       = 503
	CodeParamNotImpl      = 504
	CodeAuthRequired      = 530 // RFC 4954 §6
	CodeAuthFailed        = 535 // RFC 4954 §6
	CodeEncryptRequired   = 538 // RFC 4954 §6
	CodeMailboxUnavail    = 550
	CodeExceededStorage   = 552
	CodeMailboxName       = 553
	CodeTransactionFailed = 554
	CodeParamsPerm        = 555
	CodeNoMail            = 556 // RFC 7504 §3, RFC 7505 §4.1: domain does not accept mail
)

// Enhanced status codes used by smtpkit (RFC 3463 §3; the registry of RFC 5248).
// Each is named once, in its permanent 5.x.x form where both exist; Temp()
// gives the 4.x.x twin. internal/codes_test.go refuses literal enhanced codes
// outside this package.
const (
	EnhOK              Enhanced = "2.0.0"
	EnhSenderOK        Enhanced = "2.1.0"
	EnhRecipientOK     Enhanced = "2.1.5"
	EnhProtocolOK      Enhanced = "2.5.0" // e.g. VRFY's 252: will accept, cannot verify
	EnhAuthOK          Enhanced = "2.7.0"
	EnhOther           Enhanced = "5.0.0" // other undefined status; 4.0.0 as Temp()
	EnhBadMailbox      Enhanced = "5.1.1" // bad destination mailbox address
	EnhBadSystem       Enhanced = "5.1.2"
	EnhBadSyntaxDest   Enhanced = "5.1.3"
	EnhBadSender       Enhanced = "5.1.7"
	EnhNullMX          Enhanced = "5.1.10" // RFC 7505 §4.1: recipient address has null MX
	EnhMailboxFull     Enhanced = "5.2.2"
	EnhSystem          Enhanced = "5.3.0" // other or undefined mail system status; 4.3.0 as Temp()
	EnhSystemFull      Enhanced = "5.3.1" // mail system full (RFC 3463 §3.4); 4.3.1 when it passes
	EnhNotAccepting    Enhanced = "5.3.2" // system not accepting network messages; 4.3.2 at shutdown
	EnhTooBig          Enhanced = "5.3.4" // message too big for system
	EnhMisconfigured   Enhanced = "5.3.5" // system incorrectly configured; 4.3.5 as Temp()
	EnhNoAnswer        Enhanced = "5.4.1" // no answer from host; 4.4.1 as Temp()
	EnhConnection      Enhanced = "5.4.2" // bad connection; 4.4.2 as Temp(), the timeout of RFC 5321 §4.5.3.2
	EnhDirectory       Enhanced = "5.4.3" // directory server (DNS) failure; 4.4.3 as Temp()
	EnhNoRoute         Enhanced = "5.4.4"
	EnhExpired         Enhanced = "5.4.7" // delivery time expired (RFC 3463 §3.5)
	EnhProtocol        Enhanced = "5.5.0" // other or undefined protocol status (RFC 3463 §3.6), e.g. talking before the greeting
	EnhInvalidCommand  Enhanced = "5.5.1"
	EnhSyntax          Enhanced = "5.5.2"
	EnhTooManyRcpt     Enhanced = "5.5.3"
	EnhBadParams       Enhanced = "5.5.4"
	EnhMedia           Enhanced = "5.6.0" // other or undefined media error (content not accepted)
	EnhNoConversion    Enhanced = "5.6.3" // conversion required but not supported (e.g. no 8BITMIME)
	EnhConversion      Enhanced = "5.6.7" // RFC 6531: address needs SMTPUTF8
	EnhSecurity        Enhanced = "5.7.0"
	EnhNotAuthorized   Enhanced = "5.7.1"  // delivery not authorized (relay denied)
	EnhNoTLS           Enhanced = "5.7.4"  // security features not supported (TLS not offered or refused)
	EnhCrypto          Enhanced = "5.7.5"  // cryptographic failure (handshake, certificate)
	EnhBadCredentials  Enhanced = "5.7.8"  // RFC 4954 §6
	EnhEncryptNeeded   Enhanced = "5.7.10" // encryption needed (RFC 5248); RFC 8689 §4.2.1: no TLS-protected session for a REQUIRETLS message
	EnhEncryptRequired Enhanced = "5.7.11"
	EnhRequireTLS      Enhanced = "5.7.30" // RFC 8689 §4.2.1, §7: REQUIRETLS support required (basic code 550)
)

// Temp returns the 4.x.x twin of a 5.x.x enhanced code.
func (e Enhanced) Temp() Enhanced {
	if len(e) > 0 && e[0] == '5' {
		return "4" + e[1:]
	}
	return e
}
