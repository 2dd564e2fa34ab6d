package client

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"smtpkit/internal/sasl"
	"smtpkit/internal/smtp"
)

// ErrPlaintextAuth: Auth was refused locally because TLS is not active and
// Options.AllowPlaintextAuth is false. Nothing was sent.
var ErrPlaintextAuth = errors.New("client: refusing to send credentials without TLS")

// ErrNoAuth: the server does not offer AUTH, or not the mechanism asked for.
var ErrNoAuth = errors.New("client: server does not offer this AUTH mechanism")

// maxAuthSteps bounds the challenges one exchange may take; the longest
// mechanism (SCRAM) needs two.
const maxAuthSteps = 8

// maxInitialResponse keeps "AUTH mech ir" within RFC 4954 §4's 12288-octet
// line limit; a longer initial response waits for an empty 334.
const maxInitialResponse = 12000

// Auth authenticates with a SASL mechanism (RFC 4954 §4). It refuses to
// send credentials unless TLS is active or Options.AllowPlaintextAuth is
// set, and unless the server's EHLO lists the mechanism. Success is 235; any
// other final reply is a *smtp.Error (535 5.7.8 bad credentials is
// permanent, 454 4.7.0 temporary). A failure of the mechanism itself (for
// example a SCRAM server signature that does not verify) cancels the
// exchange with "*" and is returned as a plain error.
//
// The transcript shows every line the client sends during the exchange as
// "C: <credentials hidden>".
func (c *Conn) Auth(a sasl.Client) error {
	if !c.tlsOn && !c.opts.AllowPlaintextAuth {
		return ErrPlaintextAuth
	}
	mech, ir, err := a.Start()
	if err != nil {
		return err
	}
	if !c.offersMech(mech) {
		return fmt.Errorf("%w: %s", ErrNoAuth, mech)
	}
	line := "AUTH " + mech
	switch {
	case ir == nil || len(ir) > maxInitialResponse:
	case len(ir) == 0:
		line += " =" // RFC 4954 §4: an empty initial response
	default:
		line += " " + base64.StdEncoding.EncodeToString(ir)
	}
	rep, err := c.authRoundTrip(line)
	if err != nil {
		return err
	}
	for step := 0; rep.Code == smtp.CodeAuthContinue; step++ {
		if step == maxAuthSteps {
			return c.cancelAuth(errors.New("client: AUTH took too many steps"))
		}
		challenge, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rep.Text()))
		if err != nil {
			return c.cancelAuth(fmt.Errorf("client: AUTH challenge is not base64: %w", err))
		}
		resp, err := a.Next(challenge)
		if err != nil {
			return c.cancelAuth(err)
		}
		if rep, err = c.authRoundTrip(base64.StdEncoding.EncodeToString(resp)); err != nil {
			return err
		}
	}
	return expect(rep, smtp.CodeAuthOK)
}

func (c *Conn) offersMech(mech string) bool {
	params, ok := c.Ext("AUTH")
	if !ok {
		return false
	}
	for _, m := range strings.Fields(params) {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

// authRoundTrip is roundTrip with the line hidden from the transcript.
func (c *Conn) authRoundTrip(line string) (smtp.Reply, error) {
	if err := c.arm(c.t.Command); err != nil {
		return smtp.Reply{}, err
	}
	if err := c.writeLine(line, "<credentials hidden>"); err != nil {
		return smtp.Reply{}, err
	}
	if err := c.flush(); err != nil {
		return smtp.Reply{}, err
	}
	return c.readReply(c.t.Command)
}

// cancelAuth sends "*" (RFC 4954 §4), reads the server's 501 and returns
// cause.
func (c *Conn) cancelAuth(cause error) error {
	if _, err := c.roundTrip("*", c.t.Command); err != nil {
		return fmt.Errorf("%w (cancelling AUTH: %v)", cause, err)
	}
	return cause
}

// ChannelBindings are the channel bindings of the connection's TLS
// (sasl.Bindings: tls-exporter on TLS 1.3, tls-unique on TLS 1.2), nil
// without TLS.
func (c *Conn) ChannelBindings() []sasl.ChannelBinding {
	if !c.tlsOn {
		return nil
	}
	return sasl.Bindings(c.tlsState)
}

// SCRAM returns the SCRAM-SHA-256 client to use on this connection:
// SCRAM-SHA-256-PLUS bound to the TLS channel when the server offers it
// and the channel gives a binding (RFC 5802 §6), plain SCRAM-SHA-256
// otherwise — with the GS2 flag "y" inside TLS, so that a server which did
// offer -PLUS sees that someone took it out of the EHLO reply.
func (c *Conn) SCRAM(username, password string) sasl.Client {
	opts := sasl.Options{ChannelBindings: c.ChannelBindings()}
	if len(opts.ChannelBindings) > 0 && c.offersMech(sasl.MechScramSHA256Plus) {
		return sasl.NewScramSHA256PlusClient(username, password, opts)
	}
	return sasl.NewScramSHA256ClientOptions(username, password, opts)
}
