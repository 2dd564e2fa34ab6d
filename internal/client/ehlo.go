package client

import (
	"strings"

	"smtpkit/internal/smtp"
)

// Hello introduces the client with EHLO (RFC 5321 §4.1.1.1). When the
// server answers EHLO with a permanent error (500, 502, 504, 550: it does
// not speak ESMTP) the client falls back to HELO, as §3.2 allows; then no
// extensions are available. A 4xx to EHLO is returned as a *smtp.Error.
//
// An LMTP Conn (Options.LMTP) sends LHLO (RFC 2033 §4.1) instead; HELO
// and EHLO do not exist in LMTP, so there is no fallback.
func (c *Conn) Hello() error {
	name := c.localName()
	if c.opts.LMTP {
		rep, err := c.roundTrip("LHLO "+name, c.t.Command)
		if err != nil {
			return err
		}
		if err := expect(rep, smtp.CodeOK); err != nil {
			return err
		}
		c.setEHLO(rep)
		return nil
	}
	rep, err := c.roundTrip("EHLO "+name, c.t.Command)
	if err != nil {
		return err
	}
	if rep.Code == smtp.CodeOK {
		c.setEHLO(rep)
		return nil
	}
	if !rep.Permanent() {
		return smtp.Wrap(rep, nil)
	}
	rep, err = c.roundTrip("HELO "+name, c.t.Command)
	if err != nil {
		return err
	}
	if err := expect(rep, smtp.CodeOK); err != nil {
		return err
	}
	c.ehlo, c.ext, c.esmtp = rep, map[string]string{}, false
	return nil
}

func (c *Conn) localName() string {
	if c.opts.LocalName == "" {
		return "localhost"
	}
	return c.opts.LocalName
}

// setEHLO records an EHLO reply: its first line is the server's name and
// greeting, every further line an extension "KEYWORD [params]"
// (RFC 5321 §4.1.1.1). Keywords are case-insensitive and stored upper-case.
func (c *Conn) setEHLO(rep smtp.Reply) {
	c.ehlo, c.esmtp = rep, true
	c.ext = parseExtensions(rep.Lines)
}

func parseExtensions(lines []string) map[string]string {
	ext := make(map[string]string, len(lines))
	for i, l := range lines {
		if i == 0 {
			continue
		}
		kw, params, _ := strings.Cut(strings.TrimSpace(l), " ")
		if kw == "" {
			continue
		}
		ext[strings.ToUpper(kw)] = strings.TrimSpace(params)
	}
	return ext
}

// Extensions maps each extension keyword (upper-case) from the last EHLO to
// its parameters. The map is a copy. After HELO, or before any hello, it is
// empty.
func (c *Conn) Extensions() map[string]string {
	m := make(map[string]string, len(c.ext))
	for k, v := range c.ext {
		m[k] = v
	}
	return m
}

// Ext reports whether the server offered keyword (case-insensitive) and
// with which parameters.
func (c *Conn) Ext(keyword string) (string, bool) {
	v, ok := c.ext[strings.ToUpper(keyword)]
	return v, ok
}

// EHLOReply is the reply to the last EHLO (or HELO after a fallback).
func (c *Conn) EHLOReply() smtp.Reply { return c.ehlo }

// Limits are the limits the server announced with LIMITS in its last EHLO
// (RFC 9422 §4); zero fields are limits it did not announce.
func (c *Conn) Limits() smtp.Limits {
	params, ok := c.ext["LIMITS"]
	if !ok {
		return smtp.Limits{}
	}
	l, _ := smtp.ParseLimits(params)
	return l
}

// Transactions is the number of transactions begun on this connection
// (each Send that sent MAIL), to compare with Limits().MailMax.
func (c *Conn) Transactions() int { return c.txns }

// Spent reports whether the connection has used every transaction the
// server's LIMITS MAILMAX allows (RFC 9422 §4.1): the next message needs
// a new connection.
func (c *Conn) Spent() bool {
	m := c.Limits().MailMax
	return m > 0 && c.txns >= m
}
