package client

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"smtpkit/internal/smtp"
)

// pipelined sends MAIL, the RCPTs and (with data) DATA in one write and
// then reads the replies in order (RFC 2920 §3.1). It returns how many
// RCPTs were accepted and the reply to DATA. Without data (the message goes
// by BDAT, whose chunks follow once a RCPT was accepted) the reply is zero.
func (c *Conn) pipelined(mail cmdStep, rcpts []cmdStep, rcptErrs []error, data bool) (int, smtp.Reply, error) {
	if err := c.arm(mail.d); err != nil {
		return 0, smtp.Reply{}, err
	}
	steps := append([]cmdStep{mail}, rcpts...)
	if data {
		steps = append(steps, cmdStep{line: "DATA"})
	}
	for _, s := range steps {
		if err := c.writeLine(s.line, s.line); err != nil {
			return 0, smtp.Reply{}, err
		}
	}
	if err := c.flush(); err != nil {
		return 0, smtp.Reply{}, err
	}
	mailRep, err := c.readReply(mail.d)
	if err != nil {
		return 0, smtp.Reply{}, err
	}
	accepted := 0
	for _, s := range rcpts {
		rep, err := c.readReply(s.d)
		if err != nil {
			return 0, smtp.Reply{}, err
		}
		if rep.Code == smtp.CodeOK || rep.Code == smtp.CodeNotLocalWillFwd {
			accepted++
		} else {
			rcptErrs[s.rcpt] = smtp.Wrap(rep, nil)
		}
	}
	var dataRep smtp.Reply
	if data {
		if dataRep, err = c.readReply(c.t.DataInit); err != nil {
			return 0, smtp.Reply{}, err
		}
	}
	if mailRep.Code != smtp.CodeOK {
		if dataRep.Code == smtp.CodeStartData {
			if _, err := c.endData(); err != nil {
				return 0, smtp.Reply{}, err
			}
		}
		return 0, smtp.Reply{}, c.mailRefused(mailRep, rcpts, rcptErrs)
	}
	return accepted, dataRep, nil
}

// lockstep sends one command at a time; DATA (with data) only when a RCPT
// was accepted.
func (c *Conn) lockstep(mail cmdStep, rcpts []cmdStep, rcptErrs []error, data bool) (int, smtp.Reply, error) {
	rep, err := c.roundTrip(mail.line, mail.d)
	if err != nil {
		return 0, smtp.Reply{}, err
	}
	if rep.Code != smtp.CodeOK {
		return 0, smtp.Reply{}, c.mailRefused(rep, rcpts, rcptErrs)
	}
	accepted := 0
	for _, s := range rcpts {
		rep, err := c.roundTrip(s.line, s.d)
		if err != nil {
			return 0, smtp.Reply{}, err
		}
		if rep.Code == smtp.CodeOK || rep.Code == smtp.CodeNotLocalWillFwd {
			accepted++
		} else {
			rcptErrs[s.rcpt] = smtp.Wrap(rep, nil)
		}
	}
	if accepted == 0 || !data {
		return accepted, smtp.Reply{}, nil
	}
	rep, err = c.roundTrip("DATA", c.t.DataInit)
	return accepted, rep, err
}

// mailRefused ends a transaction whose MAIL was refused: every recipient
// shares the refusal, and RSET clears whatever the server kept.
func (c *Conn) mailRefused(rep smtp.Reply, rcpts []cmdStep, rcptErrs []error) error {
	err := smtp.Wrap(rep, errors.New("client: MAIL refused"))
	for _, s := range rcpts {
		rcptErrs[s.rcpt] = err
	}
	c.resetQuietly()
	return err
}

// resetQuietly sends RSET after a failed transaction. Its outcome does not
// change the transaction's result; a transport failure leaves the
// connection marked unusable for the next Send.
func (c *Conn) resetQuietly() {
	_, _ = c.roundTrip("RSET", c.t.Command)
}

// endData sends the terminating "." and reads the final reply.
func (c *Conn) endData() (smtp.Reply, error) {
	if err := c.arm(c.t.DataBlock); err != nil {
		return smtp.Reply{}, err
	}
	if err := c.writeLine(".", "."); err != nil {
		return smtp.Reply{}, err
	}
	if err := c.flush(); err != nil {
		return smtp.Reply{}, err
	}
	return c.readReply(c.t.DataEnd)
}

// bodyReadError marks a failure to read the message, not to send it.
type bodyReadError struct{ err error }

func (e bodyReadError) Error() string { return "client: reading message: " + e.err.Error() }
func (e bodyReadError) Unwrap() error { return e.err }

// writeBody sends the message through a DotWriter, each network write
// bounded by the DataBlock timeout (RFC 5321 §4.5.3.2.5), then the final
// "." and waits DataEnd for the reply (§4.5.3.2.6). If the body cannot be
// read the connection is closed instead: sending "." would deliver a
// truncated message.
func (c *Conn) writeBody(body io.Reader) (smtp.Reply, error) {
	bufs := bodyBufs.Get().(*bodyBuf)
	defer bodyBufs.Put(bufs)
	bw := bufs.w
	bw.Reset(blockWriter{c})
	defer bw.Reset(nil) // keep no reference to c in the pool
	dw := smtp.NewDotWriter(bw)
	n, err := copyBody(dw, body, bufs.copy)
	if err == nil {
		c.logClient("<message data, " + strconv.FormatInt(n, 10) + " octets>")
		c.logClient(".")
		if err = dw.Close(); err == nil {
			err = bw.Flush()
		}
	}
	if err != nil {
		var re bodyReadError
		if errors.As(err, &re) {
			c.Close()
			return smtp.Reply{}, fmt.Errorf("%w (connection closed without ending DATA)", err)
		}
		return smtp.Reply{}, c.transportErr(err)
	}
	rep, err := c.readReply(c.t.DataEnd)
	if err != nil {
		return rep, fmt.Errorf("%w: %w", ErrNoFinalReply, err)
	}
	return rep, nil
}

// ErrNoFinalReply marks a transport failure after the final "." was sent
// and before the server's reply to it was read: the server may have taken
// the message, so sending it again may deliver it twice (RFC 1047).
var ErrNoFinalReply = errors.New("client: connection lost after the end of data, before the final reply")

// bodyBuf is the pair of buffers one DATA transfer uses; they are pooled,
// since a courier or load generator sends many messages.
type bodyBuf struct {
	w    *bufio.Writer
	copy []byte
}

var bodyBufs = sync.Pool{New: func() any {
	return &bodyBuf{w: bufio.NewWriterSize(nil, writeBufSize), copy: make([]byte, writeBufSize)}
}}

func copyBody(dst io.Writer, src io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			if _, err := dst.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
		}
		switch {
		case rerr == io.EOF:
			return n, nil
		case rerr != nil:
			return n, bodyReadError{rerr}
		}
	}
}

// blockWriter writes to the connection, renewing the DataBlock deadline for
// every write.
type blockWriter struct{ c *Conn }

func (b blockWriter) Write(p []byte) (int, error) {
	if err := b.c.arm(b.c.t.DataBlock); err != nil {
		return 0, err
	}
	b.c.mu.Lock()
	nc := b.c.nc
	b.c.mu.Unlock()
	return nc.Write(p)
}
