package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"smtpkit/internal/client"
	"smtpkit/internal/dane"
	"smtpkit/internal/smtp"
	"smtpkit/internal/tlspolicy"
)

// hostJob is the job for one port of a host target.
func hostJob(host string, port int, opts Options) job {
	at := Result{Host: host, Port: port, Address: net.JoinHostPort(host, strconv.Itoa(port))}
	plan := PlanFor(host, port, opts)
	return job{at: at, plan: plan, guessTLS: opts.Mode == tlspolicy.ModeAuto && !plan.Implicit && plan.UsesTLS() && port != 25}
}

// probeJob probes one address with the job's plan; opts has its defaults.
func probeJob(ctx context.Context, j job, opts Options) Result {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	r := j.at
	r.Mode, r.Plan, r.Mechanism, r.Warnings = j.plan.Mode().String(), j.plan.String(), string(j.plan.Mechanism), []string{}
	p := &prober{ctx: ctx, opts: opts, plan: j.plan, r: &r, tr: &strings.Builder{}}
	if j.guessTLS {
		p.greetingWait = opts.GreetingWait
		if p.greetingWait <= 0 {
			p.greetingWait = DefaultGreetingWait
		}
	}
	p.run()
	if p.noGreeting {
		// Nothing said within the wait: try the port as implicit TLS,
		// with a budget of its own; keep that result when TLS came up.
		// Else it was a slow greeter: probe it again in plaintext with
		// the whole timeout for the greeting, as without the guess.
		if tr, ok := implicitGuess(ctx, j, opts, p.greetingWait); ok {
			return tr
		}
		j.guessTLS = false
		return probeJob(context.WithoutCancel(ctx), j, opts)
	}
	if r.OK() {
		p.noSNI()
	}
	p.warnings()
	if opts.Transcript {
		r.Transcript = strings.Split(strings.TrimSuffix(p.tr.String(), "\n"), "\n")
	}
	return r
}

// implicitGuess probes j's port again with implicit TLS, the plan decided
// with that mode and the reason; ok when the handshake succeeded.
func implicitGuess(parent context.Context, j job, opts Options, waited time.Duration) (Result, bool) {
	why := fmt.Sprintf("no plaintext greeting within %v, so tried as implicit TLS", waited)
	j.plan = tlspolicy.Decide(tlspolicy.Input{Policy: j.plan.Policy, Source: "smtpkit probe",
		Host: verifyName(j.at.Host, opts), Port: j.at.Port, Mode: tlspolicy.ModeImplicit, ModeSource: why})
	j.guessTLS = false
	r := probeJob(context.WithoutCancel(parent), j, opts)
	if r.TLS == nil {
		return r, false
	}
	r.Warnings = append(r.Warnings, "this port speaks implicit TLS ("+why+"): use --implicit-tls, and --tls implicit with smtpkit send")
	return r, true
}

// PlanFor is the tlspolicy plan the probe follows on host:port: the
// opportunistic policy (required with RequireTLS, verify with
// RequireValidCert, none with NoTLS), with the forced mode, if any, as an
// input to Decide like everything else.
func PlanFor(host string, port int, opts Options) tlspolicy.Plan {
	policy := tlspolicy.Opportunistic
	switch {
	case opts.Mode == tlspolicy.ModeNone:
		policy = tlspolicy.None
	case opts.RequireValidCert:
		policy = tlspolicy.Verify
	case opts.RequireTLS:
		policy = tlspolicy.Required
	}
	return tlspolicy.Decide(tlspolicy.Input{Policy: policy, Source: "smtpkit probe",
		Host: verifyName(host, opts), Port: port, Mode: opts.Mode, ModeSource: modeFlag[opts.Mode]})
}

// modeFlag is the command-line flag that forces each mode, for Reason.
var modeFlag = map[tlspolicy.Mode]string{
	tlspolicy.ModeStartTLS: "--starttls",
	tlspolicy.ModeImplicit: "--implicit-tls",
	tlspolicy.ModeNone:     "--no-tls",
}

// verifyName is the name the certificate must be valid for.
func verifyName(host string, opts Options) string {
	if opts.ServerName != "" {
		return strings.TrimSuffix(opts.ServerName, ".")
	}
	return strings.TrimSuffix(host, ".")
}

// prober holds one port's conversation.
type prober struct {
	ctx  context.Context // the port's deadline
	opts Options
	plan tlspolicy.Plan
	r    *Result
	tr   *strings.Builder // the transcript, written by client and by note
	// greetingWait, when set, bounds the wait for a plaintext greeting;
	// noGreeting says it ran out.
	greetingWait time.Duration
	noGreeting   bool
}

func (p *prober) note(format string, args ...any) {
	fmt.Fprintf(p.tr, "* "+format+"\n", args...)
}

// tlsConfig is the plan's client config, loosened to inspect rather than
// refuse: the certificate is checked after the handshake (inspectTLS) so
// that a bad one is shown, and TLS 1.0/1.1 are accepted so that they can be
// reported (delivery, following the same plan, refuses them: RFC 8996).
func (p *prober) tlsConfig() *tls.Config {
	cfg := p.plan.ClientConfig(p.opts.Roots)
	cfg.InsecureSkipVerify = true
	cfg.ServerName = p.plan.ServerName
	cfg.MinVersion = tls.VersionTLS10
	// Called at the end of the handshake, before any data goes through
	// TLS: the transcript notes it in its place.
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		p.note("TLS handshake done: %s, %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite))
		return nil
	}
	return cfg
}

func (p *prober) run() {
	ctx := p.ctx
	start := time.Now()
	nc, err := p.opts.Dialer.DialContext(ctx, "tcp", p.r.Address)
	p.r.ConnectMS = time.Since(start).Milliseconds()
	if err != nil {
		p.fail("connect", err)
		return
	}
	p.r.Connected = true
	p.note("connected to %s", p.r.Address)
	// The port's deadline covers every step: closing the socket makes any
	// blocked read or write return at once.
	stop := closeOnDone(ctx, nc)
	defer stop()
	defer nc.Close()

	copts := client.Options{
		LocalName:  p.opts.EHLOName,
		Transcript: p.tr,
		Timeouts:   stepTimeouts(p.opts.Timeout),
	}
	if p.greetingWait > 0 && !p.plan.Implicit {
		copts.Timeouts.Greeting = p.greetingWait
	}
	var c *client.Conn
	if p.plan.Implicit {
		tc := tls.Client(nc, p.tlsConfig())
		hs := time.Now()
		if err := tc.HandshakeContext(ctx); err != nil {
			p.fail("TLS handshake (implicit TLS)", err)
			return
		}
		p.tlsUp(tc.ConnectionState(), time.Since(hs))
		c, err = client.NewConn(tc, copts)
	} else {
		c, err = client.NewConn(nc, copts)
	}
	if err != nil {
		p.greetingFailed(err)
		return
	}
	defer c.Close()
	p.r.Banner = c.Greeting().OneLine()
	if err := c.Hello(); err != nil {
		p.fail("EHLO", err)
		return
	}
	p.recordEHLO(c, p.plan.Implicit)
	if p.plan.StartTLS {
		if !p.startTLS(c) {
			return
		}
	}
	if err := c.Quit(); err != nil {
		p.r.Warnings = append(p.r.Warnings, "QUIT: "+describe(err))
	}
}

// closeOnDone closes nc when ctx ends, so that any blocked read or write
// returns at once; stop cancels that.
func closeOnDone(ctx context.Context, nc net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { nc.Close() })
}

// stepTimeouts gives every client step the whole port budget; the port's
// context bounds the sum.
func stepTimeouts(d time.Duration) client.Timeouts {
	return client.Timeouts{Connect: d, Greeting: d, Mail: d, Rcpt: d, DataInit: d, DataBlock: d, DataEnd: d, Command: d}
}

func (p *prober) greetingFailed(err error) {
	var ne net.Error
	if p.greetingWait > 0 && errors.As(err, &ne) && ne.Timeout() && p.ctx.Err() == nil {
		p.noGreeting = true
	}
	var se *smtp.Error
	if errors.As(err, &se) {
		p.r.Banner = se.Reply.OneLine()
		p.r.Error = "greeting: the server refused the session: " + p.r.Banner
		return
	}
	p.fail("greeting", err)
}

// startTLS runs STARTTLS when offered. It reports whether the
// conversation can go on.
func (p *prober) startTLS(c *client.Conn) bool {
	if !p.r.StartTLSOffered {
		return true
	}
	hs := time.Now()
	err := c.StartTLS(p.tlsConfig())
	var te *client.TLSError
	switch {
	case errors.As(err, &te) && te.Refused:
		p.r.Warnings = append(p.r.Warnings, "STARTTLS offered but refused: "+te.Reply.OneLine())
		return true
	case errors.As(err, &te):
		p.fail("TLS handshake after STARTTLS", te.Err)
		return false
	}
	if st, ok := c.TLSState(); ok {
		p.tlsUp(st, time.Since(hs))
	}
	if err != nil {
		p.fail("EHLO after STARTTLS", err)
		return false
	}
	p.recordEHLO(c, true)
	return true
}

func (p *prober) tlsUp(st tls.ConnectionState, took time.Duration) {
	now := p.opts.Now()
	p.r.TLS = inspectTLS(st, verifyName(p.r.Host, p.opts), p.opts.Roots, now)
	p.r.TLS.HandshakeMS = took.Milliseconds()
	if len(p.plan.DANE) > 0 {
		// What delivery's handshake would check (tlspolicy's daneConfig).
		p.r.TLSA = &TLSACheck{Matches: true}
		if err := dane.Verify(p.plan.DANE, st.PeerCertificates, p.plan.DANENames, now); err != nil {
			p.r.TLSA = &TLSACheck{Result: string(tlspolicy.ResultOf(err)), Error: err.Error()}
		}
	}
	if err := p.plan.Audit(st, p.opts.Roots, now); err != nil {
		p.r.STSTesting = string(tlspolicy.ResultOf(err)) + ": " + err.Error()
	}
}

// recordEHLO stores the extensions of the last EHLO, before or after TLS.
func (p *prober) recordEHLO(c *client.Conn, afterTLS bool) {
	lines := c.EHLOReply().Lines
	exts := []string{}
	for i, l := range lines {
		if i > 0 && strings.TrimSpace(l) != "" {
			exts = append(exts, strings.TrimSpace(l))
		}
	}
	var auth []string
	if params, ok := c.Ext("AUTH"); ok {
		auth = strings.Fields(strings.ToUpper(params))
	}
	if auth == nil {
		auth = []string{}
	}
	if afterTLS {
		p.r.EHLOAfterTLS, p.r.AuthAfterTLS = exts, auth
		_, p.r.RequireTLSOffered = c.Ext("REQUIRETLS")
		return
	}
	_, p.r.StartTLSOffered = c.Ext("STARTTLS")
	p.r.EHLOBeforeTLS, p.r.AuthBeforeTLS = exts, auth
}

// warnings adds what a person should look at on a port that answered.
func (p *prober) warnings() {
	r := p.r
	if len(r.AuthBeforeTLS) > 0 && !p.plan.Implicit {
		r.Warnings = append(r.Warnings, fmt.Sprintf("AUTH (%s) offered before TLS: clients may send passwords in plaintext (RFC 8314 §3, RFC 4954 §4)",
			strings.Join(r.AuthBeforeTLS, " ")))
	}
	if p.plan.StartTLS && r.EHLOBeforeTLS != nil && !r.StartTLSOffered {
		r.Warnings = append(r.Warnings, "STARTTLS not offered: mail on this port travels in plaintext")
	}
	if r.Domain != "" {
		p.planWarnings()
	}
	if r.TLS == nil {
		return
	}
	if v := r.TLS; v.Version == tls.VersionName(tls.VersionTLS10) || v.Version == tls.VersionName(tls.VersionTLS11) {
		r.Warnings = append(r.Warnings, v.Version+" negotiated: TLS below 1.2 is deprecated (RFC 8996); smtpkit delivery refuses it")
	}
	if !r.TLS.ChainVerified {
		r.Warnings = append(r.Warnings, "certificate chain not verified: "+r.TLS.ChainError)
	}
	if !r.TLS.NameMatches {
		r.Warnings = append(r.Warnings, "certificate does not match "+r.TLS.VerifyName+": "+r.TLS.NameError)
	}
	if ci := r.TLS.Certificate; ci != nil && ci.DaysLeft >= 0 && ci.DaysLeft < expiryWarnDays {
		r.Warnings = append(r.Warnings, "certificate expires in "+days(ci.DaysLeft))
	}
	if len(r.AuthAfterTLS) == 0 && len(r.AuthBeforeTLS) > 0 {
		r.Warnings = append(r.Warnings, "AUTH offered only before TLS")
	}
	if slices.Contains(r.EHLOAfterTLS, "STARTTLS") {
		r.Warnings = append(r.Warnings, "STARTTLS offered again after TLS (RFC 3207 §4.2)")
	}
	if n := r.NoSNI; n != nil {
		switch {
		case n.Error != "":
			r.Warnings = append(r.Warnings, "TLS without SNI failed: "+n.Error+" (senders that send no SNI cannot reach this server over TLS)")
		case !n.Presented:
			r.Warnings = append(r.Warnings, "no certificate presented without SNI")
		}
	}
}

// planWarnings says, for a domain's next hop, where what the server
// showed would make delivery under the same plan defer (tlspolicy's
// OnFailure): no TLS where the plan requires it, or a certificate the plan
// verifies that is not valid. The probe itself goes on to show the rest.
func (p *prober) planWarnings() {
	r := p.r
	if !r.Connected || r.EHLOBeforeTLS == nil && !p.plan.Implicit {
		return // not far enough to tell
	}
	if why := tlsDeferReason(*r, p.plan); why != "" {
		r.Warnings = append(r.Warnings, "delivery would defer: "+why)
	}
}

// expiryWarnDays is how close to its end a certificate draws a warning.
const expiryWarnDays = 14

// fail records a failed step.
func (p *prober) fail(step string, err error) {
	why := describe(err)
	if p.ctx.Err() != nil {
		// The watchdog closed the socket: the real cause is the deadline.
		why = fmt.Sprintf("timeout (no answer within %v)", p.opts.Timeout)
	}
	p.r.Error = step + ": " + why
	p.note("%s", p.r.Error)
}

// describe words an error for people: a refused connection says so, a
// timeout says so, an SMTP error shows the reply.
func describe(err error) string {
	var se *smtp.Error
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &se):
		return se.Reply.OneLine()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return err.Error()
}
