package server

import (
	"context"
	"crypto/tls"
	"io"
	"net"

	"smtpkit/internal/smtp"
)

// Backend decides who may send and receive mail and stores what the server
// accepts. The server owns the protocol; the Backend owns the policy behind
// it and the storage (Maildir, queue). Errors of type *smtp.Error are sent
// as they are; any other error is answered 451 4.3.0 (unknown errors are
// temporary).
type Backend interface {
	// Sender is called at MAIL with the reverse-path (which may be null).
	Sender(ctx context.Context, s *SessionInfo, from smtp.Address) error
	// Recipient is called at RCPT with one forward-path.
	Recipient(ctx context.Context, s *SessionInfo, from, rcpt smtp.Address) error
	// Begin starts storing one message for env. The server then writes
	// the trace header and the message to the returned writer and calls
	// Commit, and answers 250 only when Commit returned nil.
	Begin(ctx context.Context, env *Envelope) (MessageWriter, error)
}

// MessageWriter receives one message's bytes. Commit makes the message
// durable (fsync, rename into place) and returns its id; Abort discards
// everything written. Exactly one of them is called.
type MessageWriter interface {
	io.Writer
	Commit() (id string, err error)
	Abort()
}

// SessionInfo is what the Backend may know about the client.
type SessionInfo struct {
	ID       string
	Listener string
	Role     Role
	Remote   net.Addr
	Helo     string
	// ClientName is the client's host name when a front end said it
	// (XCLIENT NAME), "" otherwise: the server does no reverse lookup.
	ClientName string
	// TLS is non-nil once TLS is established.
	TLS *tls.ConnectionState
	// AuthUser is the authenticated identity, "" when not authenticated.
	AuthUser string
	// Trusted is set when Remote is in the listener's trusted networks
	// (Postfix's mynetworks): such a client may relay without AUTH and is
	// exempt from the per-IP limits and the abuse checks.
	Trusted bool
}

// Envelope is the transaction a message is stored for.
type Envelope struct {
	// ID identifies the message in logs, the Received header and the queue.
	ID         string
	Session    *SessionInfo
	From       smtp.Address
	Recipients []smtp.Address
	// Body is the declared BODY parameter: "", "7BIT", "8BITMIME" or "BINARYMIME".
	Body string
	// SMTPUTF8 is set when MAIL carried the SMTPUTF8 parameter (RFC 6531).
	SMTPUTF8 bool
	// RequireTLS is set when MAIL carried REQUIRETLS (RFC 8689 §2): the
	// message must travel onwards only as RFC 8689 §4.2.1 says.
	RequireTLS bool
	// DeclaredSize is the SIZE parameter of MAIL, 0 when absent.
	DeclaredSize int64
	// Ret and EnvID are MAIL's RET (smtp.RetFull, smtp.RetHdrs or "") and
	// decoded ENVID (RFC 3461 §4.3, §4.4); DSN holds each recipient's
	// NOTIFY and ORCPT (§4.1, §4.2), parallel to Recipients. Only set when
	// Options.DSN offered the extension.
	Ret   string
	EnvID string
	DSN   []smtp.RcptDSN
}

// Discard is a Backend that accepts every sender and recipient and throws
// the message away after reading it whole: what a sink listener serves.
type Discard struct{}

func (Discard) Sender(context.Context, *SessionInfo, smtp.Address) error { return nil }

func (Discard) Recipient(context.Context, *SessionInfo, smtp.Address, smtp.Address) error {
	return nil
}

func (Discard) Begin(_ context.Context, env *Envelope) (MessageWriter, error) {
	return sinkWriter{id: env.ID}, nil
}

type sinkWriter struct{ id string }

func (sinkWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w sinkWriter) Commit() (string, error)   { return w.id, nil }
func (sinkWriter) Abort()                      {}

// backend is the Backend serving this session's listener.
func (s *session) backend() Backend {
	if s.listener.Backend != nil {
		return s.listener.Backend
	}
	return s.srv.opts.Backend
}
