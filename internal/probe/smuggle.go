package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"smtpkit/internal/smtp"
	"smtpkit/internal/tlspolicy"
)

// Endings are the end-of-data sequences of SMTP smuggling (the
// SEC Consult findings of 2023, CVE-2023-51764/51765/51766 and relatives):
// each is sent inside DATA where only CRLF "." CRLF ends the data
// (RFC 5321 §4.1.1.4, §2.3.8: a bare CR or LF is not a line ending).
func Endings() []string {
	return []string{
		"\n.\n",
		"\n.\r\n",
		"\r\n.\n",
		"\n.\r",
		"\r.\r",
		"\r.\r\n",
		"\r\n.\r",
		"\r\n\x00.\r\n",
		"\r\n.\x00\r\n",
	}
}

// Outcomes of one smuggling attempt.
const (
	// SmuggleVulnerable: the server ended the data at the ending and read
	// the bytes after it as commands.
	SmuggleVulnerable = "vulnerable"
	// SmuggleRejected: the server refused the message at the real end of
	// data (as smtpkit does for a bare CR or LF): safe.
	SmuggleRejected = "rejected"
	// SmuggleContent: the server took the ending as content and accepted
	// one message with it inside: safe as a receiver; a relay must not
	// pass such a message on unchanged.
	SmuggleContent = "content"
	// SmuggleError: the attempt could not be made (connection, TLS,
	// MAIL or RCPT refused).
	SmuggleError = "error"
)

// SmuggleReport is the outcome of the --smuggling self-test against one
// port. The JSON field names are stable (docs/probe.md).
type SmuggleReport struct {
	Address string `json:"address"`
	Mode    string `json:"mode"` // "starttls", "implicit" or "none", as the plan says
	Rcpt    string `json:"rcpt"`
	// Endings has one result per sequence of Endings, in that order.
	Endings []EndingResult `json:"endings"`
	// Injection is the STARTTLS command injection test; nil when the
	// plan does not use STARTTLS or the server does not offer it.
	Injection *InjectionResult `json:"starttls_injection"`
	// Vulnerable: an ending or the injection showed the server vulnerable.
	Vulnerable bool     `json:"vulnerable"`
	Transcript []string `json:"transcript,omitempty"`
}

// EndingResult is one smuggling attempt.
type EndingResult struct {
	Ending  string `json:"ending"`  // Go-quoted, "\n.\n"
	Outcome string `json:"outcome"` // one of the Smuggle... outcomes
	// Reply is the server's reply to the data (at the ending when
	// vulnerable, else at the real end); Detail says what else happened.
	Reply  string `json:"reply"`
	Detail string `json:"detail"`
}

// InjectionResult is the STARTTLS command injection test
// (CVE-2011-0411): "STARTTLS" and "NOOP" sent in one write; a server that
// answers the NOOP inside TLS executed plaintext as if it came over TLS.
type InjectionResult struct {
	Outcome string `json:"outcome"` // "vulnerable", "safe" or "error"
	Detail  string `json:"detail"`
}

// smuggledCommand follows each ending: harmless, so that even a
// vulnerable server accepts no second message, and answered with a reply
// of its own, which is how a vulnerable server shows itself.
const smuggledCommand = "NOOP\r\n"

// maxTrailingReplies bounds the replies read after the data.
const maxTrailingReplies = 8

// Smuggle runs the self-test against host:port with the plan PlanFor
// gives (implicit TLS on 465, STARTTLS when offered elsewhere, none with
// --no-tls): for each ending, a new connection sends MAIL FROM:<>, RCPT
// TO:<rcpt>, DATA, a short message with the ending and a NOOP inside it,
// then the real end; then QUIT. A safe server answers the data once; a
// vulnerable one also answers the NOOP. Each connection ends with QUIT, so
// that no server, safe or vulnerable, accepts more than one message per
// ending. Then the STARTTLS injection test, on STARTTLS ports.
func Smuggle(ctx context.Context, host string, port int, rcpt string, opts Options) SmuggleReport {
	opts = opts.withDefaults()
	plan := PlanFor(host, port, opts)
	s := &smuggler{ctx: ctx, opts: opts, plan: plan, addr: net.JoinHostPort(host, strconv.Itoa(port)), rcpt: rcpt,
		tr: &strings.Builder{}}
	rep := SmuggleReport{Address: s.addr, Mode: plan.Mode().String(), Rcpt: rcpt, Endings: []EndingResult{}}
	for i, e := range Endings() {
		res := s.ending(i+1, e)
		rep.Endings = append(rep.Endings, res)
		rep.Vulnerable = rep.Vulnerable || res.Outcome == SmuggleVulnerable
	}
	if plan.StartTLS {
		rep.Injection = s.injection()
		rep.Vulnerable = rep.Vulnerable || rep.Injection != nil && rep.Injection.Outcome == SmuggleVulnerable
	}
	if opts.Transcript {
		rep.Transcript = strings.Split(strings.TrimSuffix(s.tr.String(), "\n"), "\n")
	}
	return rep
}

type smuggler struct {
	ctx        context.Context
	opts       Options
	plan       tlspolicy.Plan
	addr, rcpt string
	tr         *strings.Builder
}

// tlsConfig is the plan's config, not verifying: the test is about
// framing, not certificates (the probe without --smuggling checks those).
func (s *smuggler) tlsConfig() *tls.Config {
	cfg := s.plan.ClientConfig(s.opts.Roots)
	cfg.InsecureSkipVerify, cfg.ServerName = true, s.plan.ServerName
	return cfg
}

// open connects, reads the greeting, says EHLO and starts TLS as the plan
// says (and as the server offers, unless the plan requires it).
func (s *smuggler) open(ctx context.Context) (*wire, func(), error) {
	var implicit *tls.Config
	if s.plan.Implicit {
		implicit = s.tlsConfig()
	}
	w, done, err := dialWire(ctx, s.opts.Dialer, s.addr, implicit, s.tr)
	if err != nil {
		return nil, nil, err
	}
	if err := w.greet(s.opts.EHLOName); err != nil {
		done()
		return nil, nil, err
	}
	if s.plan.StartTLS && w.exts["STARTTLS"] {
		if _, err := w.cmd("STARTTLS", smtp.CodeReady); err != nil {
			done()
			return nil, nil, err
		}
		if err := w.upgrade(ctx, s.tlsConfig(), s.opts.EHLOName); err != nil {
			done()
			return nil, nil, err
		}
	} else if s.plan.Require && !s.plan.Implicit {
		done()
		return nil, nil, errors.New("STARTTLS not offered and the plan requires TLS")
	}
	return w, done, nil
}

// why words a failure, the deadline first.
func (s *smuggler) why(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return fmt.Sprintf("timeout (no answer within %v)", s.opts.Timeout)
	}
	return describe(err)
}

// message is the test message for ending n: a few header fields, a line
// of text, the ending, the smuggled command and the real end of data.
func (s *smuggler) message(n int, ending string) string {
	return "From: <smtpkit-probe@" + s.opts.EHLOName + ">\r\n" +
		"To: <" + s.rcpt + ">\r\n" +
		fmt.Sprintf("Subject: smtpkit probe --smuggling self-test, ending %d\r\n", n) +
		"\r\n" +
		"A test of SMTP smuggling by smtpkit probe --smuggling; delete it." +
		ending + smuggledCommand + "\r\n.\r\n"
}

// ending makes the attempt with one ending on a connection of its own.
func (s *smuggler) ending(n int, ending string) EndingResult {
	res := EndingResult{Ending: strconv.Quote(ending), Outcome: SmuggleError}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	defer cancel()
	fmt.Fprintf(s.tr, "* ending %d: %s\n", n, res.Ending)
	w, done, err := s.open(ctx)
	if err != nil {
		res.Detail = s.why(ctx, err)
		return res
	}
	defer done()
	for _, c := range []struct {
		line string
		want int
	}{{"MAIL FROM:<>", smtp.CodeOK}, {"RCPT TO:<" + s.rcpt + ">", smtp.CodeOK}, {"DATA", smtp.CodeStartData}} {
		if _, err := w.cmd(c.line, c.want); err != nil {
			res.Detail = s.why(ctx, err)
			w.send("QUIT\r\n")
			return res
		}
	}
	sendErr := w.send(s.message(n, ending))
	first, err := w.reply()
	if err != nil {
		res.Detail = "no reply to the data: " + s.why(ctx, cmpErr(sendErr, err))
		return res
	}
	res.Reply = first.OneLine()
	extra := s.trailing(w)
	switch {
	case len(extra) > 0:
		res.Outcome = SmuggleVulnerable
		res.Detail = "the server ended the data at the ending and answered the smuggled NOOP: " + strings.Join(extra, " / ")
	case first.Positive():
		res.Outcome = SmuggleContent
		res.Detail = "taken as content: one message accepted with the sequence inside"
	default:
		res.Outcome = SmuggleRejected
		res.Detail = "the message was refused at the end of data"
	}
	fmt.Fprintf(s.tr, "* ending %d: %s\n", n, res.Outcome)
	return res
}

// trailing sends QUIT and returns the replies that came before its 221
// (or before the connection closed): each one answered something the
// server read as a command.
func (s *smuggler) trailing(w *wire) []string {
	var extra []string
	if w.send("QUIT\r\n") != nil {
		return nil
	}
	for range maxTrailingReplies {
		rep, err := w.reply()
		if err != nil || rep.Code == smtp.CodeClosing || rep.Code == smtp.CodeUnavailable {
			break // a 421 closes the session: it answers no smuggled command
		}
		extra = append(extra, rep.OneLine())
	}
	return extra
}

func cmpErr(first, second error) error {
	if first != nil {
		return first
	}
	return second
}

// injection is the STARTTLS command injection test: STARTTLS and a NOOP
// in one write, then, over TLS, only QUIT. A server that answers anything
// before QUIT's 221 executed the plaintext NOOP inside TLS. Nil when the
// server does not offer STARTTLS.
func (s *smuggler) injection() *InjectionResult {
	res := &InjectionResult{Outcome: SmuggleError}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	defer cancel()
	fmt.Fprintf(s.tr, "* STARTTLS injection\n")
	w, done, err := dialWire(ctx, s.opts.Dialer, s.addr, nil, s.tr)
	if err != nil {
		res.Detail = s.why(ctx, err)
		return res
	}
	defer done()
	if err := w.greet(s.opts.EHLOName); err != nil {
		res.Detail = s.why(ctx, err)
		return res
	}
	if !w.exts["STARTTLS"] {
		fmt.Fprintf(s.tr, "* STARTTLS not offered: nothing to inject into\n")
		w.send("QUIT\r\n")
		return nil
	}
	if err := w.send("STARTTLS\r\n" + smuggledCommand); err != nil {
		res.Detail = s.why(ctx, err)
		return res
	}
	rep, err := w.reply()
	switch {
	case err != nil:
		res.Detail = "no reply to STARTTLS: " + s.why(ctx, err)
		return res
	case rep.Code != smtp.CodeReady:
		res.Outcome, res.Detail = "safe", "STARTTLS with pipelined data refused: "+rep.OneLine()
		return res
	}
	tc := tls.Client(w.nc, s.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		res.Outcome = "safe"
		res.Detail = "the handshake failed after the pipelined NOOP (the server fed it to TLS or hung up): " + s.why(ctx, err)
		return res
	}
	w.nc, w.r = tc, bufio.NewReader(tc)
	if extra := s.trailing(w); len(extra) > 0 {
		res.Outcome = SmuggleVulnerable
		res.Detail = "the NOOP sent in plaintext with STARTTLS was answered inside TLS: " + strings.Join(extra, " / ")
		return res
	}
	res.Outcome, res.Detail = "safe", "the NOOP pipelined after STARTTLS was discarded"
	return res
}
