package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"smtpkit/internal/smtp"
)

// Envelope is one mail transaction.
type Envelope struct {
	From string   // reverse-path mailbox; "" is the null sender <> (RFC 5321 §4.5.5)
	To   []string // forward-path mailboxes, "Postmaster" allowed without a domain
	// Size is the message size in octets for SIZE= (RFC 1870 §3) when the
	// server offers SIZE; 0 = unknown. A message bigger than the server's
	// declared limit fails before MAIL with a permanent 552 5.3.4.
	Size int64
	// EightBit asks for BODY=8BITMIME (RFC 6152). A server without 8BITMIME
	// makes Send fail before MAIL with a permanent 554 5.6.3: Send itself
	// does not convert; internal/delivery converts the message to 7 bit
	// (internal/mimeconv, RFC 6152 §3) before calling Send without
	// EightBit when the server lacks 8BITMIME.
	EightBit bool
	// Binary asks for BODY=BINARYMIME (RFC 3030 §3): the body goes out by
	// BDAT octet for octet, with no line-ending repair. It needs both
	// BINARYMIME and CHUNKING at the server; without them Send fails
	// before MAIL with a permanent 554 5.6.3 (ErrRefused), like EightBit
	// without 8BITMIME. It takes precedence over EightBit.
	Binary bool
	// SMTPUTF8 asks for SMTPUTF8 (RFC 6531); it is implied when an address is
	// not ASCII. A server without it makes Send fail before MAIL with a
	// permanent 553 5.6.7 (RFC 6531 §3.4).
	SMTPUTF8 bool
	// RequireTLS sends the message with REQUIRETLS (RFC 8689 §2) on MAIL.
	// Without TLS on this connection, or when the server's EHLO (inside
	// TLS) does not offer REQUIRETLS, Send fails before MAIL with an error
	// wrapping ErrNoRequireTLS (and ErrRefused): 550 5.7.10 without TLS,
	// 550 5.7.30 without the extension (the codes of RFC 8689 §4.2.1).
	// Whether the server's name was authenticated is the caller's check
	// (the TLS plan); Send only sees that TLS is on.
	RequireTLS bool
	// Ret, EnvID and DSN are the DSN parameters (RFC 3461 §4): MAIL's RET
	// and ENVID (decoded), and each recipient's NOTIFY and ORCPT, parallel
	// to To. They are sent only when the server offers DSN; otherwise the
	// caller owes the "relayed" notices (§6.2.1.2), see Result.NoDSN.
	Ret   string
	EnvID string
	DSN   []smtp.RcptDSN
}

// ErrNoRequireTLS is in the chain of Send's error when a REQUIRETLS
// message (Envelope.RequireTLS) cannot be sent on this connection: it is
// not TLS-protected, or the server does not offer REQUIRETLS. RFC 8689
// §4.2.1: the client must not send it there (it may try another MX).
var ErrNoRequireTLS = errors.New("client: REQUIRETLS message, but the server does not offer REQUIRETLS in a TLS-protected session")

// Result is the outcome of a transaction, per recipient.
type Result struct {
	// Rcpt has one entry per Envelope.To: nil = accepted at RCPT, else a
	// *smtp.Error with the server's reply (or a local 553 5.1.3 for an
	// address that is not valid syntax, which is never sent).
	Rcpt []error
	// Data applies to the recipients whose Rcpt is nil: nil means the
	// message was accepted (250 after the final "."); else a *smtp.Error or
	// a transport error. When no recipient was accepted it is
	// ErrNoRecipients.
	Data error
	// Reply is the reply to DATA: the final one after the message, or the
	// refusal of the DATA command itself. With BDAT it is the reply to the
	// LAST chunk, or the first refusal of a chunk.
	Reply smtp.Reply
	// Final is, for an LMTP Conn (Options.LMTP), each recipient's reply
	// after the end of the data (RFC 2033 §4.2), parallel to Envelope.To:
	// the zero Reply for a recipient refused at RCPT, and for those whose
	// reply was not read when the connection failed (Data then wraps
	// ErrNoFinalReply: the server may have delivered to them). Data is nil
	// once every reply was read, whatever each says; Reply is the first.
	// Nil for SMTP.
	Final []smtp.Reply
	// NoDSN is set when the server does not offer DSN: the DSN parameters
	// were not passed on, and a NOTIFY=SUCCESS recipient it accepted is
	// owed a "relayed" notice by the caller (RFC 3461 §6.2.1.2).
	NoDSN bool
}

// ErrRefused is in the chain of every refusal the client makes itself,
// without asking the server: an address that is not valid syntax (the
// recipient's Result.Rcpt entry), or a message the server declared it cannot
// take — over its SIZE limit, 8-bit without 8BITMIME, SMTPUTF8 needed but
// not offered (Send's error). Such an *smtp.Error carries smtpkit's reply,
// not the server's: no server said it. Send ends the session with QUIT when
// it refuses the whole message.
var ErrRefused = errors.New("client: refused before sending")

// refused is a refusal of the client's own (ErrRefused), with its cause.
func refused(rep smtp.Reply, cause error) *smtp.Error {
	if cause == nil {
		return smtp.Wrap(rep, ErrRefused)
	}
	return smtp.Wrap(rep, fmt.Errorf("%w: %w", ErrRefused, cause))
}

// ErrNoRecipients is Result.Data when every RCPT failed: DATA was not sent
// (or, when pipelined, was answered with just "."), and RSET ended the
// transaction.
var ErrNoRecipients = errors.New("client: no recipient accepted")

// Send runs one transaction: MAIL, every RCPT, DATA, the body and the final
// "." (RFC 5321 §3.3). When the server offers PIPELINING, MAIL, the RCPTs
// and DATA go out in one write and the replies are read afterwards
// (RFC 2920 §3.1); otherwise each command waits for its reply.
//
// When the server offers CHUNKING the body goes by BDAT instead of DATA
// (RFC 3030 §2): after MAIL and the RCPTs, chunks of Options.ChunkSize
// octets, the last one "BDAT n LAST", without dot stuffing; with
// PIPELINING several chunks are in flight at once (see writeChunks).
//
// body is the message as CRLF text; a smtp.DotWriter stuffs leading dots
// and turns bare LF or CR into CRLF (for BDAT a smtp.CRLFWriter does the
// latter; a Binary body is sent unchanged). A refusal of MAIL returns
// err = *smtp.Error. A message the client refuses itself before MAIL
// returns an *smtp.Error with ErrRefused in its chain, and the session is
// over: Send has sent QUIT and closed the connection. Transport failures return a plain err and leave the
// connection unusable. Whenever the transaction did not end with a
// delivered message, Send sends RSET so that the connection can be reused.
// ctx cancels the transaction (the connection is unusable afterwards).
func (c *Conn) Send(ctx context.Context, env Envelope, body io.Reader) (Result, error) {
	res := Result{Rcpt: make([]error, len(env.To))}
	_, dsn := c.Ext("DSN")
	res.NoDSN = !dsn
	mail, rcpts, err := c.envelopeCommands(env, res.Rcpt)
	if err != nil {
		// Refused here, before MAIL (errors.Is(err, ErrRefused)): the
		// session is sound but this client has nothing to say in it, so it
		// ends it properly (RFC 5321 §4.1.1.10) instead of dropping it.
		c.quitQuietly()
		return res, err
	}
	stop := c.watch(ctx)
	defer stop()
	c.txns++
	var accepted int
	var dataRep smtp.Reply
	_, pipelining := c.Ext("PIPELINING")
	_, chunking := c.Ext("CHUNKING")
	if c.opts.LMTP {
		chunking = false // RFC 2033 knows DATA only; one reply per recipient after it
	}
	if pipelining {
		accepted, dataRep, err = c.pipelined(mail, rcpts, res.Rcpt, !chunking)
	} else {
		accepted, dataRep, err = c.lockstep(mail, rcpts, res.Rcpt, !chunking)
	}
	if err != nil {
		res.Data = err
		return res, err
	}
	if chunking {
		return c.sendChunked(res, accepted, env.Binary, pipelining, body)
	}
	res.Reply = dataRep
	switch {
	case accepted == 0:
		res.Data = ErrNoRecipients
		if dataRep.Code == smtp.CodeStartData {
			// RFC 2920 §3.1: DATA was accepted although no RCPT was; end it
			// with an empty message the server must not deliver.
			if res.Reply, err = c.endData(); err != nil {
				return res, err
			}
		}
		c.resetQuietly()
		return res, nil
	case dataRep.Code != smtp.CodeStartData:
		res.Data = smtp.Wrap(dataRep, nil)
		c.resetQuietly()
		return res, nil
	}
	res.Reply, err = c.writeBody(body)
	if err != nil {
		res.Data = err
		return res, err
	}
	if c.opts.LMTP {
		return c.finalReplies(res)
	}
	res.Data = expect(res.Reply, smtp.CodeOK)
	return res, nil
}

// finalReplies reads the rest of LMTP's replies to the end of the data:
// one for every recipient accepted at RCPT, in the order of the RCPTs
// (RFC 2033 §4.2); res.Reply is the first, already read.
func (c *Conn) finalReplies(res Result) (Result, error) {
	res.Final = make([]smtp.Reply, len(res.Rcpt))
	first := true
	for i, rerr := range res.Rcpt {
		if rerr != nil {
			continue
		}
		if first {
			res.Final[i], first = res.Reply, false
			continue
		}
		rep, err := c.readReply(c.t.DataEnd)
		if err != nil {
			res.Data = fmt.Errorf("%w: %w", ErrNoFinalReply, err)
			return res, res.Data
		}
		res.Final[i] = rep
	}
	return res, nil
}

// sendChunked finishes a transaction whose MAIL and RCPTs went out: the
// body by BDAT when a recipient was accepted, RSET otherwise or when a
// chunk was refused.
func (c *Conn) sendChunked(res Result, accepted int, binary, pipelining bool, body io.Reader) (Result, error) {
	if accepted == 0 {
		res.Data = ErrNoRecipients
		c.resetQuietly()
		return res, nil
	}
	rep, err := c.writeChunks(body, binary, pipelining)
	if err != nil {
		res.Data = err
		return res, err
	}
	res.Reply = rep
	if rep.Code != smtp.CodeOK {
		res.Data = smtp.Wrap(rep, nil)
		c.resetQuietly()
		return res, nil
	}
	return res, nil
}

// cmdStep is one command with its timeout, and the index of its recipient.
type cmdStep struct {
	line string
	d    time.Duration
	rcpt int
}

// envelopeCommands checks the envelope against the server's extensions and
// builds MAIL and the RCPTs. Invalid recipients get a local error in
// rcptErrs and no command.
func (c *Conn) envelopeCommands(env Envelope, rcptErrs []error) (cmdStep, []cmdStep, error) {
	if len(env.To) == 0 {
		return cmdStep{}, nil, fmt.Errorf("%w: envelope without recipients", ErrRefused)
	}
	from, err := formatPath(env.From, true)
	if err != nil {
		return cmdStep{}, nil, refused(smtp.R(smtp.CodeMailboxName, smtp.EnhBadSender, "invalid sender address"), err)
	}
	utf8 := env.SMTPUTF8 || !isASCII(env.From)
	var rcpts []cmdStep
	for i, to := range env.To {
		p, err := formatPath(to, false)
		if err != nil {
			rcptErrs[i] = refused(smtp.R(smtp.CodeMailboxName, smtp.EnhBadSyntaxDest, "invalid recipient address"), err)
			continue
		}
		utf8 = utf8 || !isASCII(to)
		rcpts = append(rcpts, cmdStep{line: "RCPT TO:" + p + c.rcptDSNParams(env, i), d: c.t.Rcpt, rcpt: i})
	}
	if len(rcpts) == 0 {
		return cmdStep{}, nil, errors.Join(rcptErrs...)
	}
	params, err := c.mailParams(env, utf8)
	if err != nil {
		return cmdStep{}, nil, err
	}
	return cmdStep{line: "MAIL FROM:" + from + params, d: c.t.Mail, rcpt: -1}, rcpts, nil
}

// mailParams builds the MAIL parameters and refuses, before MAIL, what the
// server cannot take.
func (c *Conn) mailParams(env Envelope, utf8 bool) (string, error) {
	var b strings.Builder
	if env.RequireTLS {
		if err := c.checkRequireTLS(); err != nil {
			return "", err
		}
	}
	if limit, ok := c.Ext("SIZE"); ok && env.Size > 0 {
		// RFC 1870 §4: a limit of 0 (or none) means no fixed maximum.
		if n, err := strconv.ParseInt(limit, 10, 64); err == nil && n > 0 && env.Size > n {
			return "", refused(smtp.R(smtp.CodeExceededStorage, smtp.EnhTooBig,
				fmt.Sprintf("message of %d octets exceeds the server's limit of %d", env.Size, n)), nil)
		}
		b.WriteString(" SIZE=" + strconv.FormatInt(env.Size, 10))
	}
	if env.Binary {
		_, bin := c.Ext("BINARYMIME")
		_, chunking := c.Ext("CHUNKING")
		if !bin || !chunking {
			return "", refused(smtp.R(smtp.CodeTransactionFailed, smtp.EnhNoConversion,
				"binary message but the server does not support BINARYMIME with CHUNKING"), nil)
		}
		b.WriteString(" BODY=BINARYMIME") // RFC 3030 §3
	} else if env.EightBit {
		if _, ok := c.Ext("8BITMIME"); !ok {
			return "", refused(smtp.R(smtp.CodeTransactionFailed, smtp.EnhNoConversion,
				"8-bit message but the server does not support 8BITMIME"), nil)
		}
		b.WriteString(" BODY=8BITMIME")
	}
	if utf8 {
		if _, ok := c.Ext("SMTPUTF8"); !ok {
			return "", refused(smtp.R(smtp.CodeMailboxName, smtp.EnhConversion,
				"message needs SMTPUTF8 but the server does not support it"), nil)
		}
		b.WriteString(" SMTPUTF8")
	}
	if env.RequireTLS {
		b.WriteString(" REQUIRETLS") // RFC 8689 §2: no value
	}
	if _, ok := c.Ext("DSN"); ok {
		// RFC 3461 §4.3, §4.4: only to a server that offers DSN.
		if env.Ret != "" {
			b.WriteString(" RET=" + env.Ret)
		}
		if env.EnvID != "" {
			b.WriteString(" ENVID=" + smtp.EncodeXtext(env.EnvID))
		}
	}
	return b.String(), nil
}

// rcptDSNParams is recipient i's NOTIFY and ORCPT (RFC 3461 §4.1, §4.2)
// for RCPT, when the server offers DSN.
func (c *Conn) rcptDSNParams(env Envelope, i int) string {
	if i >= len(env.DSN) {
		return ""
	}
	if _, ok := c.Ext("DSN"); !ok {
		return ""
	}
	var b strings.Builder
	d := env.DSN[i]
	if d.Notify != 0 {
		b.WriteString(" NOTIFY=" + d.Notify.String())
	}
	if !d.ORCPT.IsZero() {
		b.WriteString(" ORCPT=" + d.ORCPT.Param())
	}
	return b.String()
}

// checkRequireTLS refuses a REQUIRETLS message on a connection that
// cannot carry it (RFC 8689 §4.2.1: TLS, then REQUIRETLS in the EHLO reply
// that follows it). A server that offers REQUIRETLS outside TLS is not
// believed: the offer could have been added by anyone on the path.
func (c *Conn) checkRequireTLS() error {
	if !c.tlsOn {
		return refused(smtp.R(smtp.CodeMailboxUnavail, smtp.EnhEncryptNeeded,
			"REQUIRETLS message but the session is not TLS-protected"), ErrNoRequireTLS)
	}
	if _, ok := c.Ext("REQUIRETLS"); !ok {
		return refused(smtp.R(smtp.CodeMailboxUnavail, smtp.EnhRequireTLS,
			"REQUIRETLS support required, but the server does not offer it"), ErrNoRequireTLS)
	}
	return nil
}

// formatPath checks a mailbox and puts it in angle brackets. The checked,
// re-formatted address goes on the wire, so nothing a caller passes can
// inject a command.
func formatPath(s string, sender bool) (string, error) {
	if s == "" {
		if sender {
			return "<>", nil
		}
		return "", errors.New("empty recipient")
	}
	if !sender && strings.EqualFold(s, "postmaster") {
		return "<" + s + ">", nil // RFC 5321 §4.1.1.3
	}
	a, err := smtp.ParseAddress(s)
	if err != nil {
		return "", err
	}
	return "<" + a.String() + ">", nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
