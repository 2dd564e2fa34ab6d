package queue

import (
	"context"
	"io"

	"smtpkit/internal/smtp"
)

// Courier delivers one message to some recipients of ONE domain (internal/
// delivery implements it). It must honour ctx and return one Result per
// recipient; a recipient without a Result counts as a temporary failure.
type Courier interface {
	Deliver(ctx context.Context, d *Attempt) []Result
}

// Attempt is one delivery attempt handed to a Courier: one message, its
// recipients of one domain, and how to read the bytes.
type Attempt struct {
	ID         string
	From       string // "" is the null reverse-path
	Domain     string
	Recipients []string
	Size       int64
	SMTPUTF8   bool
	EightBit   bool
	// Binary: BODY=BINARYMIME (Meta.Binary); the bytes are not text.
	Binary bool
	// RequireTLS: the message was received with REQUIRETLS (RFC 8689
	// §4.2); delivery must meet RFC 8689 §4.2.1 or fail with 5.7.30.
	RequireTLS bool
	// Ret, EnvID and DSN are the DSN parameters (RFC 3461 §4) to pass to a
	// next hop that offers DSN: MAIL's RET and ENVID, each recipient's
	// NOTIFY and ORCPT parallel to Recipients.
	Ret   string
	EnvID string
	DSN   []smtp.RcptDSN
	// Prepend are the header fields Open puts before the stored bytes
	// (Meta.Prepend: our DKIM-Signature fields), "" for local delivery. A
	// courier that changes the message (delivery's 7-bit conversion) signs
	// it again instead of sending them.
	Prepend string
	// Open returns the message bytes as a stream; it may be called more
	// than once (for example once per MX tried). The caller closes it.
	Open func() (io.ReadCloser, error)
}

// Bounce is a built DSN on its way back to the original sender.
type Bounce struct {
	ID       string // the original message's id
	To       string // the original envelope sender (never empty)
	Delayed  bool   // a delay warning, not a failure
	Message  []byte // the complete DSN (internal/dsn.Build), CRLF lines
	SMTPUTF8 bool   // the DSN is internationalized (RFC 6533) and needs SMTPUTF8
	EightBit bool   // the DSN has 8-bit content and needs 8BITMIME
}
