package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"smtpkit/internal/smtp"
)

// watch makes the connection's I/O fail soon after ctx ends, and returns a
// function that stops watching. Once ctx has ended the connection is
// broken: a transaction was cut at an unknown point.
func (c *Conn) watch(ctx context.Context) (stop func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	s := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.cancelErr = ctx.Err()
		c.nc.SetDeadline(time.Unix(1, 0)) // in the past: blocked I/O returns at once
	})
	return func() { s() }
}

// arm sets the deadline for the next step, unless the connection is broken
// or its context has ended.
func (c *Conn) arm(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancelErr != nil {
		return c.fail(c.cancelErr)
	}
	if c.broken != nil {
		return fmt.Errorf("client: connection unusable: %w", c.broken)
	}
	if err := c.nc.SetDeadline(time.Now().Add(d)); err != nil {
		return c.fail(err)
	}
	return nil
}

// fail records a transport error: after one, the conversation's state is
// unknown and every later step fails. Callers must hold mu or be the only
// goroutine touching c (the context watcher only sets cancelErr).
func (c *Conn) fail(err error) error {
	if c.cancelErr != nil && !errors.Is(err, c.cancelErr) {
		err = fmt.Errorf("%w (%v)", c.cancelErr, err)
	}
	if c.broken == nil {
		c.broken = err
	}
	return err
}

// transportErr records err under mu.
func (c *Conn) transportErr(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fail(err)
}

// writeLine buffers one command line; logged is what the transcript shows.
func (c *Conn) writeLine(line, logged string) error {
	c.logClient(logged)
	if _, err := c.w.WriteString(line + "\r\n"); err != nil {
		return c.transportErr(err)
	}
	return nil
}

func (c *Conn) flush() error {
	if err := c.w.Flush(); err != nil {
		return c.transportErr(err)
	}
	return nil
}

// readReply reads one reply within d. smtp.ReadReply bounds its size.
// A malformed reply breaks the connection like a transport error: the
// framing can no longer be trusted.
func (c *Conn) readReply(d time.Duration) (smtp.Reply, error) {
	if err := c.arm(d); err != nil {
		return smtp.Reply{}, err
	}
	rep, err := smtp.ReadReply(c.r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the server hung up while we waited
		}
		return smtp.Reply{}, c.transportErr(fmt.Errorf("client: reading reply: %w", err))
	}
	c.logServer(rep)
	return rep, nil
}

func (c *Conn) logClient(line string) {
	if c.opts.Transcript != nil {
		io.WriteString(c.opts.Transcript, "C: "+line+"\n")
	}
}

// logServer writes a reply as it was (re)formatted from its parts: code,
// enhanced code and text, one "S: " line per reply line.
func (c *Conn) logServer(rep smtp.Reply) {
	if c.opts.Transcript == nil {
		return
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(rep.String(), "\r\n") {
		if l != "" {
			b.WriteString("S: " + strings.TrimSuffix(l, "\r\n") + "\n")
		}
	}
	io.WriteString(c.opts.Transcript, b.String())
}
