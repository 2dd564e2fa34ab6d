// Package delivery holds the couriers the queue hands messages to: Remote
// carries mail to other servers (route → tlspolicy → client), Local writes
// bounces for local senders into Maildir.
package delivery

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"smtpkit/internal/client"
	"smtpkit/internal/dkim"
	"smtpkit/internal/queue"
	"smtpkit/internal/route"
	"smtpkit/internal/sasl"
	"smtpkit/internal/smtp"
	"smtpkit/internal/tlspolicy"
	"smtpkit/internal/tlsrpt"
)

// Router finds the next hops for a domain (internal/route).
type Router interface {
	Hops(ctx context.Context, domain string) ([]route.Hop, error)
}

// RemoteOptions configure a Remote courier.
type RemoteOptions struct {
	Router Router
	// Policy is the default outbound TLS policy; a static route's own
	// tls setting overrides it.
	Policy tlspolicy.Policy
	// LocalName is the EHLO name.
	LocalName string
	// Roots verifies certificates under the verify policy; nil = system roots.
	Roots    *x509.CertPool
	Timeouts client.Timeouts
	Dialer   *net.Dialer
	// IdleTimeout is how long a connection is kept for reuse by the next
	// message to the same host. Default 30s; negative disables reuse.
	IdleTimeout time.Duration
	// Reports counts every outbound session for TLS-RPT (RFC 8460); nil
	// counts nothing.
	Reports tlsrpt.Recorder
	// Signer holds our DKIM keys ([[dkim]]): a message converted to 7 bit
	// is signed again with the keys of its own signatures (downgrade.go);
	// nil leaves the broken signatures as they are.
	Signer *dkim.Signer
	Logger *slog.Logger
	Now    func() time.Time
}

// Remote delivers to other servers. It implements queue.Courier.
type Remote struct {
	opts RemoteOptions
	log  *slog.Logger
	pool *connPool
}

// NewRemote returns a Remote courier.
func NewRemote(opts RemoteOptions) *Remote {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 30 * time.Second
	}
	return &Remote{opts: opts, log: opts.Logger, pool: newConnPool(opts.IdleTimeout, opts.Now)}
}

// Close ends the idle connections kept for reuse.
func (r *Remote) Close() { r.pool.closeAll() }

// Deliver tries the next hops of d.Domain in order (RFC 5321 §5.1: every
// MX, every address, before giving up for this attempt). The first server
// that takes the transaction past MAIL decides the recipients' outcome; a
// hop that fails before that (no connection, 4xx greeting, TLS the plan
// requires missing, 4xx to MAIL) passes the message on to the next hop.
func (r *Remote) Deliver(ctx context.Context, d *queue.Attempt) []queue.Result {
	hops, err := r.opts.Router.Hops(ctx, d.Domain)
	if err != nil {
		// The route's own decision (null MX, no such domain, a DNS
		// failure): no server was asked.
		return allFailed(d.Recipients, queue.Result{Err: err})
	}
	// A bounce of a REQUIRETLS message (null reverse-path) is not held to
	// it: RFC 8689 §5 would rather have it delivered than lost.
	msg := messageTLS{require: d.RequireTLS && d.From != ""}
	msg.optional = !msg.require && d.TLSRequiredNo()
	var last error
	var lastAt queue.Remote
	var lastTLS queue.TLS // the plan of the hop that failed last, for the metrics
	for _, hop := range hops {
		plan := r.plan(hop, msg)
		if plan.Refuse != nil {
			// DANE, MTA-STS or REQUIRETLS rule this hop out: no
			// connection, the next hop is tried (RFC 8461 §5, RFC 7672
			// §2.2, RFC 8689 §5).
			r.log.Info("next hop refused by TLS policy", "msgid", d.ID, "host", hop.Host,
				"tls_mechanism", string(plan.Mechanism), "err", plan.Refuse)
			r.countRefused(d.Domain, hop, plan)
			if last == nil || informative(plan.Refuse) >= informative(last) {
				last, lastAt, lastTLS = plan.Refuse, queue.Remote{Host: hop.Host}, factsOf(plan)
			}
			continue
		}
		for _, ip := range hop.Addrs {
			res, decided, err := r.tryHost(ctx, d, hop, ip, plan)
			if decided {
				return res
			}
			r.log.Info("next hop failed", "msgid", d.ID, "host", hop.Host, "ip", ip.String(),
				"tls_policy", plan.Policy.String(), "tls_mechanism", string(plan.Mechanism), "err", err)
			at := queue.Remote{Host: hop.Host, Addr: ip}
			if ctx.Err() != nil {
				return allFailed(d.Recipients, queue.Result{Err: temporary(ctx.Err()), Remote: at})
			}
			if last == nil || informative(err) >= informative(last) {
				last, lastAt, lastTLS = err, at, factsOf(plan)
			}
		}
	}
	if last == nil {
		last = smtp.E(smtp.CodeLocalError, smtp.EnhNoAnswer.Temp(), "No answer from any next hop")
	}
	return allFailed(d.Recipients, queue.Result{Err: temporary(last), Remote: lastAt, Reply: replyOf(last), TLS: lastTLS})
}

// informative ranks a hop's failure for the report when every hop failed:
// a server's reply or a TLS policy decision (an *smtp.Error) says more than
// a connection that could not be made, so a backup MX that is down does not
// hide why the primary deferred.
func informative(err error) int {
	var se *smtp.Error
	if errors.As(err, &se) {
		return 2
	}
	return 1
}

// tryHost delivers through one address of one hop. decided is false when
// the hop failed before the transaction and the next one should be tried.
func (r *Remote) tryHost(ctx context.Context, d *queue.Attempt, hop route.Hop, ip netip.Addr, plan tlspolicy.Plan) ([]queue.Result, bool, error) {
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(hop.Port))
	key := addr + "|" + plan.String()
	c, reused := r.pool.get(key), true
	var err error
	if c == nil {
		reused = false
		if c, plan, err = r.connect(ctx, addr, d.Domain, hop, plan); err != nil {
			return nil, false, err
		}
	}
	// The connection is kept under the key of the plan asked for, also when
	// connect fell back to plaintext, so the next message reuses it rather
	// than failing the handshake again.
	res, decided, err := r.transact(ctx, c, d, hop, ip, plan, key)
	if !decided && reused {
		// A kept connection may have been closed by the peer meanwhile:
		// one fresh try before moving on.
		c.Close()
		if c, plan, err = r.connect(ctx, addr, d.Domain, hop, plan); err != nil {
			return nil, false, err
		}
		res, decided, err = r.transact(ctx, c, d, hop, ip, plan, key)
	}
	return res, decided, err
}

// messageTLS is what the message itself asks of TLS (RFC 8689):
// REQUIRETLS, or "TLS-Required: No" (only without REQUIRETLS).
type messageTLS struct{ require, optional bool }

// plan decides TLS for a hop: tlspolicy.Decide gets the hop's input
// (route.Hop.TLSInput: the default policy, the static route, DANE and
// MTA-STS) and what the message asks, and its plan is obeyed as it is.
// The probe builds the same Input for a domain (probe.HopPlan).
func (r *Remote) plan(hop route.Hop, msg messageTLS) tlspolicy.Plan {
	in := hop.TLSInput(r.opts.Policy, "outbound default")
	in.RequireTLS, in.TLSOptional = msg.require, msg.optional
	return tlspolicy.Decide(in)
}

// connect dials, says EHLO, does what the TLS plan asks and authenticates
// to a static route that has credentials. It returns the plan actually used
// (a failed opportunistic handshake is retried once in plaintext).
func (r *Remote) connect(ctx context.Context, addr, domain string, hop route.Hop, plan tlspolicy.Plan) (*client.Conn, tlspolicy.Plan, error) {
	copts := client.Options{LocalName: r.opts.LocalName, Timeouts: r.opts.Timeouts, Dialer: r.opts.Dialer}
	var c *client.Conn
	var err error
	if plan.Implicit {
		c, err = client.DialTLS(ctx, addr, plan.ClientConfig(r.opts.Roots), copts)
		if err != nil {
			var te *client.TLSError
			if errors.As(err, &te) {
				r.count(domain, hop, addr, nil, plan, tlspolicy.FailureResult(failureOf(err), err), err.Error())
			}
			return nil, plan, tlsFailure(plan, err)
		}
	} else if c, err = client.Dial(ctx, addr, copts); err != nil {
		return nil, plan, fromServer(err)
	}
	if err := c.Hello(); err != nil {
		c.Close()
		return nil, plan, fromServer(err)
	}
	if plan.StartTLS {
		if err := c.StartTLS(plan.ClientConfig(r.opts.Roots)); err != nil {
			f := failureOf(err)
			r.count(domain, hop, addr, c, plan, tlspolicy.FailureResult(f, err), err.Error())
			switch plan.OnFailure(f) {
			case tlspolicy.Defer:
				c.Close()
				return nil, plan, plan.FailureError(f, err)
			case tlspolicy.RetryPlain:
				c.Close()
				r.log.Info("TLS handshake failed, retrying without TLS", "addr", addr, "err", err)
				return r.connect(ctx, addr, domain, hop, plan.WithoutTLS())
			}
		}
	}
	if st, ok := c.TLSState(); ok {
		r.countTLS(domain, hop, addr, c, plan, st)
	}
	if hop.Route != nil && hop.Route.AuthUser != "" {
		if err := r.auth(c, hop.Route); err != nil {
			c.Quit() // the session is still sound: end it politely (RFC 5321 §4.1.1.10)
			return nil, plan, err
		}
	}
	return c, plan, nil
}

// auth logs in to a relay host with the route's credentials, preferring
// SCRAM-SHA-256 (its -PLUS form bound to the TLS channel where offered:
// client.Conn.SCRAM), then PLAIN, then LOGIN.
func (r *Remote) auth(c *client.Conn, st *route.Static) error {
	pw, err := os.ReadFile(st.AuthPasswordFile)
	if err != nil {
		return smtp.Wrap(smtp.R(smtp.CodeLocalError, smtp.EnhMisconfigured.Temp(), "cannot read relay password file"), err)
	}
	password := strings.TrimRight(string(pw), "\r\n")
	mechs, _ := c.Ext("AUTH")
	var a sasl.Client
	switch {
	case hasWord(mechs, sasl.MechScramSHA256) || hasWord(mechs, sasl.MechScramSHA256Plus):
		a = c.SCRAM(st.AuthUser, password)
	case hasWord(mechs, "PLAIN"):
		a = sasl.NewPlainClient("", st.AuthUser, password)
	default:
		a = sasl.NewLoginClient(st.AuthUser, password)
	}
	if err := c.Auth(a); err != nil {
		var se *smtp.Error
		if errors.As(err, &se) && se.Permanent() {
			// Wrong relay credentials are the operator's to fix: keep the
			// mail queued rather than bounce it.
			return smtp.Wrap(smtp.R(smtp.CodeLocalError, smtp.EnhBadCredentials.Temp(), "relay host refused our credentials: "+se.Reply.Text()), fromServer(err))
		}
		return fromServer(err)
	}
	return nil
}

func hasWord(list, w string) bool {
	for _, f := range strings.Fields(list) {
		if strings.EqualFold(f, w) {
			return true
		}
	}
	return false
}

// transactOne runs one transaction on c for rcpts (all or a LIMITS share
// of d.Recipients) and returns their results. keep reports whether the
// connection ended the transaction cleanly and may carry another one; when
// it is false, c has been closed.
func (r *Remote) transactOne(ctx context.Context, c *client.Conn, d *queue.Attempt, rcpts []string, hop route.Hop, ip netip.Addr, plan tlspolicy.Plan) (out []queue.Result, decided, keep bool, err error) {
	at := queue.Remote{Host: hop.Host, Addr: ip}
	facts := factsOf(plan)
	if st, ok := c.TLSState(); ok {
		facts.Version = st.Version
	}
	body, err := d.Open()
	if err != nil {
		c.Close()
		return allFailed(rcpts, queue.Result{Err: temporary(err), Remote: at, TLS: facts}), true, false, nil
	}
	defer body.Close()
	// RFC 8689 §4.2.1 binds a REQUIRETLS message with a non-empty return path; §5: a bounce is not discarded for want of REQUIRETLS.
	env := client.Envelope{From: d.From, To: rcpts, Size: d.Size, EightBit: d.EightBit, Binary: d.Binary, SMTPUTF8: d.SMTPUTF8, RequireTLS: d.RequireTLS && d.From != ""}
	env.Ret, env.EnvID, env.DSN = d.Ret, d.EnvID, dsnOf(d, rcpts) // RFC 3461 §5.2: passed on where offered
	if ext := needsDowngrade(c, env); ext != "" {
		conv, resigned, err := downgrade(d, ext, &env, r.opts.Signer)
		if err != nil {
			r.log.Info("message not converted to 7 bit", "msgid", d.ID, "host", hop.Host, "ip", ip.String(), "body", ext, "err", err)
			// No transaction was started: the connection stays usable.
			return allFailed(rcpts, queue.Result{Err: err, Remote: at, TLS: facts}), true, true, nil
		}
		defer conv.Close()
		r.log.Info("message converted to 7 bit", "msgid", d.ID, "host", hop.Host, "ip", ip.String(), "body", ext, "size", d.Size, "converted_size", env.Size, "dkim_resigned", resigned)
		body = conv
	}
	res, err := c.Send(ctx, env, body)
	if err != nil {
		c.Close()
		if errors.Is(err, client.ErrNoRequireTLS) {
			// RFC 8689 §5: this MX does not offer REQUIRETLS; another one
			// may. When none does, the 5.7.30 is the bounce.
			return nil, false, false, err
		}
		if errors.Is(err, client.ErrNoFinalReply) {
			return r.possibleDuplicate(d, at, facts, err), true, false, nil
		}
		var se *smtp.Error
		if errors.As(err, &se) && se.Permanent() {
			// MAIL refused for good, or the message cannot be carried
			// (SIZE, SMTPUTF8: refused by the client itself,
			// which ended the session): the whole message fails.
			fail := queue.Result{Err: se, Remote: at, TLS: facts, Reply: replyOf(fromServer(err))}
			if !fail.Said() {
				r.log.Info("message refused before MAIL", "msgid", d.ID, "host", hop.Host, "ip", ip.String(),
					"rcpts", len(rcpts), "err", err)
			}
			return allFailed(rcpts, fail), true, false, nil
		}
		return nil, false, false, fromServer(err)
	}
	out = make([]queue.Result, len(rcpts))
	for i, rcpt := range rcpts {
		out[i] = queue.Result{Rcpt: rcpt, Remote: at, TLS: facts}
		switch {
		case res.Rcpt[i] != nil:
			out[i].Err = res.Rcpt[i] // the server's refusal, or the client's of an invalid address
			out[i].Reply = replyOf(fromServer(res.Rcpt[i]))
		case res.Data != nil:
			out[i].Err = temporary(res.Data)
			out[i].Reply = replyOf(fromServer(res.Data))
		default:
			out[i].Reply = res.Reply
			out[i].Relayed = res.NoDSN // RFC 3461 §6.2.1.2: NOTIFY could not be passed on
		}
	}
	r.log.Info("delivery attempt", "msgid", d.ID, "host", hop.Host, "ip", ip.String(), "tls", facts.String(),
		"tls_policy", facts.Policy, "tls_mechanism", facts.Mechanism, "rcpts", len(rcpts), "code", res.Reply.Code)
	if res.Data == nil || errors.Is(res.Data, client.ErrNoRecipients) {
		return out, true, true, nil
	}
	c.Close()
	return out, true, false, nil
}

// possibleDuplicate is the outcome of a transaction whose connection was
// lost after the final "." and before the reply to it (RFC 1047): the
// server may have taken the message. It is decided here — a temporary
// failure retried later with backoff, not at once on the next hop — and
// marked, so that the queue logs the retry as a possible duplicate.
func (r *Remote) possibleDuplicate(d *queue.Attempt, at queue.Remote, facts queue.TLS, err error) []queue.Result {
	r.log.Warn("delivery attempt", "msgid", d.ID, "host", at.Host, "ip", at.Addr.String(),
		"tls_policy", facts.Policy, "rcpts", len(d.Recipients), "err", err, "possible_duplicate", true)
	return allFailed(d.Recipients, queue.Result{Err: temporary(err), Remote: at, TLS: facts, PossibleDuplicate: true})
}

// factsOf is what a result records of the plan it ran under.
func factsOf(plan tlspolicy.Plan) queue.TLS {
	return queue.TLS{Policy: plan.Policy.String(), Mechanism: string(plan.Mechanism)}
}

// failureOf classifies a StartTLS error for the plan. A DANE mismatch
// (a tlsrpt.Failure from the handshake's VerifyConnection) is a
// certificate failure like an x509 one.
func failureOf(err error) tlspolicy.Failure {
	var te *client.TLSError
	var tf tlsrpt.Failure
	switch {
	case errors.Is(err, client.ErrNoStartTLS):
		return tlspolicy.NotOffered
	case errors.As(err, &te) && te.Refused:
		return tlspolicy.Refused
	case errors.As(err, &te) && (te.Certificate() || errors.As(err, &tf)):
		return tlspolicy.Certificate
	}
	return tlspolicy.Handshake
}

// tlsFailure is the error of a failed implicit-TLS connection.
func tlsFailure(plan tlspolicy.Plan, err error) error {
	var te *client.TLSError
	if errors.As(err, &te) {
		return plan.FailureError(failureOf(err), err)
	}
	return fromServer(err)
}

// serverError marks an *smtp.Error that is a server's reply, read by the
// client (to the greeting, EHLO, AUTH, MAIL, RCPT or DATA), so that the
// result reports the server as the one that said it. smtpkit's own
// *smtp.Errors (a TLS policy's, a refusal the client made itself, the
// ones below) are never marked.
type serverError struct{ err *smtp.Error }

func (e serverError) Error() string { return e.err.Error() }
func (e serverError) Unwrap() error { return e.err }

// fromServer marks err as a server's reply when it is one: an *smtp.Error
// from the client that the client did not make itself (client.ErrRefused).
func fromServer(err error) error {
	var se *smtp.Error
	var marked serverError
	if err == nil || !errors.As(err, &se) || errors.Is(err, client.ErrRefused) || errors.As(err, &marked) {
		return err
	}
	return serverError{se}
}

// replyOf is the server's reply err carries (marked by fromServer), or
// the zero Reply when no server said it.
func replyOf(err error) smtp.Reply {
	var se serverError
	if errors.As(err, &se) {
		return se.err.Reply
	}
	return smtp.Reply{}
}

// temporary keeps *smtp.Errors as they are and makes anything else a 4.4.1
// temporary failure (unknown errors are temporary).
func temporary(err error) error {
	var se *smtp.Error
	if errors.As(err, &se) {
		return se
	}
	return smtp.Wrap(smtp.R(smtp.CodeLocalError, smtp.EnhNoAnswer.Temp(), "connection failed: "+err.Error()), err)
}

// allFailed gives every recipient the same outcome.
func allFailed(rcpts []string, res queue.Result) []queue.Result {
	out := make([]queue.Result, len(rcpts))
	for i, r := range rcpts {
		out[i] = res
		out[i].Rcpt = r
	}
	return out
}

// connPool keeps connections that finished a transaction cleanly, for the
// next message to the same host (address and TLS plan). A timer closes
// connections that stayed idle for the idle duration, so that hosts we do
// not write to again do not hold a socket each until shutdown.
type connPool struct {
	mu    sync.Mutex
	idle  time.Duration
	now   func() time.Time
	m     map[string][]pooled
	timer *time.Timer // pending sweep; nil when the pool is empty
}

type pooled struct {
	c     *client.Conn
	since time.Time
}

// maxPerHost bounds the idle connections kept for one key.
const maxPerHost = 4

func newConnPool(idle time.Duration, now func() time.Time) *connPool {
	return &connPool{idle: idle, now: now, m: make(map[string][]pooled)}
}

func (p *connPool) get(key string) *client.Conn {
	if p.idle < 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.m[key]
	for len(list) > 0 {
		e := list[len(list)-1]
		list = list[:len(list)-1]
		if p.now().Sub(e.since) < p.idle {
			p.m[key] = list
			return e.c
		}
		go e.c.Quit()
	}
	delete(p.m, key)
	return nil
}

func (p *connPool) put(key string, c *client.Conn) {
	if p.idle < 0 {
		go c.Quit()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.m[key]) >= maxPerHost {
		go c.Quit()
		return
	}
	p.m[key] = append(p.m[key], pooled{c: c, since: p.now()})
	if p.timer == nil {
		p.timer = time.AfterFunc(p.idle, p.sweep)
	}
}

// sweep closes the connections idle for too long and re-arms the timer
// for the oldest one left.
func (p *connPool) sweep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.timer == nil {
		return // closeAll ran meanwhile
	}
	now := p.now()
	next := time.Duration(-1)
	for k, list := range p.m {
		kept := list[:0]
		for _, e := range list {
			if left := p.idle - now.Sub(e.since); left > 0 {
				kept = append(kept, e)
				if next < 0 || left < next {
					next = left
				}
				continue
			}
			go e.c.Quit()
		}
		if len(kept) == 0 {
			delete(p.m, k)
		} else {
			p.m[k] = kept
		}
	}
	if next < 0 {
		p.timer = nil
		return
	}
	p.timer.Reset(next)
}

func (p *connPool) closeAll() {
	p.mu.Lock()
	var conns []*client.Conn
	for k, list := range p.m {
		for _, e := range list {
			conns = append(conns, e.c)
		}
		delete(p.m, k)
	}
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Quit()
	}
}

var _ queue.Courier = (*Remote)(nil)

// dsnOf is the NOTIFY and ORCPT of each of rcpts (a subset of
// d.Recipients, in order), for the client.
func dsnOf(d *queue.Attempt, rcpts []string) []smtp.RcptDSN {
	if len(d.DSN) == 0 {
		return nil
	}
	out := make([]smtp.RcptDSN, len(rcpts))
	j := 0
	for i, a := range rcpts {
		for j < len(d.Recipients) && d.Recipients[j] != a {
			j++
		}
		if j < len(d.DSN) {
			out[i] = d.DSN[j]
		}
	}
	return out
}
