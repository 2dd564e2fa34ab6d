// Package milter is smtpkit's client of Sendmail's milter protocol, the
// content-filter protocol Postfix speaks too and that rspamd (its proxy
// worker in milter mode), clamav-milter, OpenDKIM and SpamAssassin's
// milters serve. The wire protocol (negotiation, packets, the stages) is
// github.com/emersion/go-milter's client; this package adds what an MTA
// needs around it: one connection per SMTP session, the macros milters
// read, the timeout and default action when the milter is down, the
// milter's answers as SMTP replies (verdict.go), and the modifications it
// asks for at the end of the message applied to the message (edit.go).
//
// The protocol has no RFC; its reference is libmilter's documentation and
// the protocol notes shipped with go-milter (milter-protocol.txt).
package milter

import (
	"errors"
	"net"
	"time"

	gomilter "github.com/emersion/go-milter"
)

// Options configure one milter ([[milter]]).
type Options struct {
	// Name names the milter in logs and metrics.
	Name string
	// Network and Address are what net.Dial takes: "tcp" and host:port,
	// or "unix" and a path.
	Network, Address string
	// Timeout bounds the connection and each reply (and each write).
	Timeout time.Duration
	// Accept is the default action: when the milter cannot be reached,
	// times out or breaks the protocol, true goes on without it for the
	// rest of the session; false (tempfail) answers 451 4.7.1 at the
	// stage that failed and at every later transaction of the session.
	Accept bool
	// Hostname is our name, the j macro (Sendmail's $j).
	Hostname string
}

// What we let a milter do (SMFIF_*): headers, envelope sender and
// recipients, the body, quarantine. Recipients with ESMTP arguments
// (SMFIF_ADDRCPT_PAR) and SMFIF_SETSYMLIST are not offered: go-milter
// does not parse them.
const offeredActions = gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptAddRcpt |
	gomilter.OptRemoveRcpt | gomilter.OptChangeFrom | gomilter.OptChangeBody | gomilter.OptQuarantine

// The protocol steps we can leave out or leave unanswered when the milter
// asks (SMFIP_*). SMFIP_RCPT_REJ (send rejected recipients too) and
// SMFIP_HDR_LEADSPC are not offered: we send neither.
const offeredProtocol = gomilter.OptNoConnect | gomilter.OptNoHelo | gomilter.OptNoMailFrom |
	gomilter.OptNoRcptTo | gomilter.OptNoBody | gomilter.OptNoHeaders | gomilter.OptNoEOH |
	gomilter.OptNoUnknown | gomilter.OptNoData | gomilter.OptSkip | gomilter.OptNoHeaderReply |
	gomilter.OptNoConnReply | gomilter.OptNoHeloReply | gomilter.OptNoMailReply |
	gomilter.OptNoRcptReply | gomilter.OptNoDataReply | gomilter.OptNoUnknownReply |
	gomilter.OptNoEOHReply | gomilter.OptNoBodyReply

// Filter is one configured milter. It is safe for concurrent use: each
// SMTP session opens its own Session.
type Filter struct {
	opts Options
}

// New returns the Filter for opts. It does not connect: Open does, once
// per SMTP session.
func New(opts Options) *Filter { return &Filter{opts: opts} }

// Name is the milter's name.
func (f *Filter) Name() string { return f.opts.Name }

// dial connects and negotiates. A milter of an older protocol version
// (libmilter before 8.14 speaks version 2) is asked again with only what
// that version knows: go-milter downgrades only when the offered masks
// fit the old version. go-milter leaves the connection open when the
// negotiation fails; the dialer keeps it so that it is closed here.
func (f *Filter) dial() (*gomilter.ClientSession, error) {
	actions, protocol := offeredActions, offeredProtocol
	for {
		d := &dialer{d: net.Dialer{Timeout: f.opts.Timeout}}
		c := gomilter.NewClientWithOptions(f.opts.Network, f.opts.Address, gomilter.ClientOptions{
			Dialer:       d,
			ReadTimeout:  f.opts.Timeout,
			WriteTimeout: f.opts.Timeout,
			ActionMask:   actions,
			ProtocolMask: protocol,
		})
		cs, err := c.Session()
		if err == nil {
			return cs, nil
		}
		if d.conn != nil {
			d.conn.Close()
		}
		if !errors.Is(err, gomilter.ErrUnsupportedMilterVersion) || actions == actions&v2Actions {
			return nil, err
		}
		actions, protocol = actions&v2Actions, protocol&v2Protocol
	}
}

// What protocol version 2 knows of the masks.
const (
	v2Actions  = 0x3f
	v2Protocol = 0x7f
)

// dialer is a net.Dialer that remembers the connection it made.
type dialer struct {
	d    net.Dialer
	conn net.Conn
}

func (d *dialer) Dial(network, address string) (net.Conn, error) {
	c, err := d.d.Dial(network, address)
	d.conn = c
	return c, err
}
