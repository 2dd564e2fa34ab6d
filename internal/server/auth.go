package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"smtpkit/internal/sasl"
	"smtpkit/internal/smtp"
)

// authOffered reports whether AUTH is advertised and accepted now: the
// listener allows it, there are credentials to check, and the session is
// inside TLS (no passwords over plaintext, on any listener).
func (s *session) authOffered() bool {
	return s.listener.Auth && s.srv.opts.Credentials != nil && s.info.TLS != nil
}

// mechanisms are the SASL mechanisms offered now: SCRAM-SHA-256-PLUS only
// inside TLS that gives a channel binding (RFC 5802 §6, RFC 9266).
func (s *session) mechanisms() []string {
	m := sasl.Mechanisms()
	if len(s.bindings) > 0 {
		m = append(m, sasl.MechScramSHA256Plus)
	}
	return m
}

// authGate is AUTH's predicate, checked before its sequence (the command
// table): AUTH exists only where offered (502), inside TLS (RFC 4954 §4
// and §6: 538 when the mechanism needs encryption), after EHLO, and once.
func (s *session) authGate() (smtp.Reply, bool) {
	switch {
	case !s.listener.Auth || s.srv.opts.Credentials == nil:
		return replyAuthNotOffered, false
	case s.info.TLS == nil:
		return replyAuthNeedTLS, false
	case !s.esmtp:
		return replyNeedEHLO, false
	case s.info.AuthUser != "":
		return replyAuthAgain, false
	}
	return smtp.Reply{}, true
}

// cmdAuth runs the AUTH exchange of RFC 4954 §4 with a sasl.Server. Every
// exchange that starts and does not succeed counts as a failed login for
// the client's IP and for the account it named (if it named one): a wrong
// password, a cancel ("*"), a malformed or undecodable response, and a
// connection lost mid-exchange alike.
func (s *session) cmdAuth(arg string) {
	mech, initial, hasInitial := strings.Cut(strings.TrimSpace(arg), " ")
	if mech == "" {
		s.reply(replyAuthSyntax)
		return
	}
	ip := s.clientIP()
	a := &attempt{creds: s.srv.opts.Credentials, auth: s.srv.auth, ip: ip}
	// The connection's channel bindings: -PLUS binds to them, and plain
	// SCRAM's "y" flag is checked against them (RFC 5802 §6).
	srv, err := sasl.NewServerOptions(mech, a, sasl.Options{ChannelBindings: s.bindings})
	if err != nil {
		s.reply(replyAuthUnknownMech)
		return
	}
	if s.srv.auth.blocked(ipKey(ip)) {
		s.reply(replyAddressBlocked(s.srv.opts.Hostname))
		s.quit = true
		return
	}
	ex := authExchange{srv: srv, a: a, mech: strings.ToUpper(mech), ip: ip}
	ctx, cancel := s.authContext()
	defer cancel()
	var resp []byte
	if hasInitial {
		// RFC 4954 §4: "=" is an empty initial response.
		if resp, err = decodeAuthLine(initial); err != nil {
			s.authAborted(ex, "invalid base64", replyBadBase64())
			return
		}
	}
	for {
		challenge, done, err := srv.Next(ctx, resp)
		if done {
			s.authDone(ex, err)
			return
		}
		s.reply(replyAuthChallenge(base64.StdEncoding.EncodeToString(challenge)))
		line, rerr := s.conn.readCommand(true) // AUTH runs between transactions
		if rerr != nil {
			s.authAborted(ex, "connection lost", smtp.Reply{})
			s.endOnError(rerr)
			s.quit = true
			return
		}
		if string(line) == "*" {
			// RFC 4954 §4: the client cancelled.
			s.authAborted(ex, "cancelled", replyAuthCancelled)
			return
		}
		if resp, err = decodeAuthLine(string(line)); err != nil {
			s.authAborted(ex, "invalid base64", replyBadBase64())
			return
		}
	}
}

// authContext bounds what an exchange waits for (a password check's turn
// and hash slot) by the session's deadline, early enough that the 454 can
// still be sent.
func (s *session) authContext() (context.Context, context.CancelFunc) {
	return context.WithDeadline(s.backendContext(), s.backendCtx.deadline.Add(-finalWriteGrace))
}

// authExchange is one AUTH command's exchange, for the functions that
// answer its end.
type authExchange struct {
	srv  sasl.Server
	a    *attempt
	mech string // upper case
	ip   string
}

// keys are the throttle keys a failure of the exchange counts against:
// the client IP, and the account named so far.
func (ex authExchange) keys() []string {
	keys := []string{ipKey(ex.ip)}
	if user := ex.srv.Identity(); user != "" {
		keys = append(keys, userKey(user))
	}
	return keys
}

func decodeAuthLine(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// authDone answers the end of an exchange and feeds the throttle. Failures
// are logged with the client IP and the mechanism, never the password.
func (s *session) authDone(ex authExchange, err error) {
	switch {
	case errors.Is(err, errAccountLocked),
		err == nil && s.srv.auth.blocked(userKey(ex.srv.Username())): // locked during the check
		s.authLocked(ex)
	case err == nil:
		s.info.AuthUser = ex.srv.Username()
		s.srv.auth.success(ipKey(ex.ip))
		s.srv.obs.AuthResult(s.info.Listener, ex.mech, true)
		s.log.Info("auth ok", "user", s.info.AuthUser, "mech", ex.mech)
		s.reply(replyAuthOK)
	case errors.Is(err, sasl.ErrInvalidCredentials):
		s.authFailures++
		delay, counted := ex.a.counted()
		if !counted {
			delay = s.srv.auth.failure(ex.keys()...)
		}
		s.srv.obs.AuthResult(s.info.Listener, ex.mech, false)
		s.log.Warn("auth failed", "mech", ex.mech, "ip", ex.ip, "failures", s.authFailures, "delay", delay)
		s.pause(delay)
		s.reply(replyAuthFailed)
		s.closeIfTooManyFailures(ex.ip)
	case errors.Is(err, errAddressBlocked):
		s.srv.obs.AuthResult(s.info.Listener, ex.mech, false)
		s.reply(replyAddressBlocked(s.srv.opts.Hostname))
		s.quit = true
	case errors.Is(err, sasl.ErrMalformed) || errors.Is(err, sasl.ErrTooManySteps):
		s.authAborted(ex, "malformed", replyAuthMalformed)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		// No hash slot came free within the session's time: not the
		// client's fault, and not counted.
		s.log.Warn("auth not checked: the password checks stayed busy", "mech", ex.mech, "ip", ex.ip)
		s.reply(replyAuthTempRetry)
	default:
		s.log.Error("auth backend failure", "mech", ex.mech, "err", err)
		s.reply(replyAuthTemp)
	}
}

// authLocked answers an attempt on a locked account. The password was not
// checked (see attempt), so the reply and its delay are the same whether
// it was right or wrong: the lock's delay, then 454. The attempt counts
// against the client IP, not against the account, so that the lock ends
// when its window after the last real failure passes.
func (s *session) authLocked(ex authExchange) {
	s.authFailures++
	delay := s.srv.auth.lockedFailure(ipKey(ex.ip))
	s.srv.obs.AuthResult(s.info.Listener, ex.mech, false)
	s.log.Warn("auth refused, account locked", "mech", ex.mech, "ip", ex.ip, "failures", s.authFailures, "delay", delay)
	s.pause(delay)
	s.reply(replyAccountLocked())
	s.closeIfTooManyFailures(ex.ip)
}

// authAborted answers (with r, unless the connection is gone) an exchange
// that ended without a verdict and counts it as a failed login, so that
// cancelling after the server-first message (SCRAM) or before the
// password (LOGIN) probes nothing for free. No delay: nothing was guessed.
func (s *session) authAborted(ex authExchange, why string, r smtp.Reply) {
	s.authFailures++
	s.srv.auth.failure(ex.keys()...)
	s.srv.obs.AuthResult(s.info.Listener, ex.mech, false)
	s.log.Warn("auth aborted", "mech", ex.mech, "ip", ex.ip, "why", why, "failures", s.authFailures)
	if r.Code == 0 {
		return
	}
	s.reply(r)
	s.closeIfTooManyFailures(ex.ip)
}

// closeIfTooManyFailures ends the session after the third failure in it,
// or once the client IP is blocked.
func (s *session) closeIfTooManyFailures(ip string) {
	if s.authFailures >= maxAuthFailuresPerSession || s.srv.auth.blocked(ipKey(ip)) {
		s.reply(replyTooManyLogins(s.srv.opts.Hostname))
		s.quit = true
	}
}

// pause sends what is queued and waits d before the next reply.
func (s *session) pause(d time.Duration) {
	if d > 0 {
		s.conn.flush()
		time.Sleep(d) // the growing delay of a failed login (bounded by maxAuthDelay)
	}
}

const (
	maxAuthFailuresPerSession = 3
	authWindow                = 15 * time.Minute
	maxAuthFailures           = 10 // per IP or account within authWindow, then blocked until the window passes
	maxAuthDelay              = 8 * time.Second
	maxThrottleEntries        = 100000
)

// Errors of an attempt that the session answers without a verdict on the
// password.
var (
	errAccountLocked  = errors.New("account locked after too many failed logins")
	errAddressBlocked = errors.New("client address blocked after too many failed logins")
)

// attempt stands between one exchange and the store. It refuses to check
// anything for a locked account (errAccountLocked), so that a right
// password cannot be told from a wrong one while the lock lasts; it lets
// one password check per client IP run at a time (the others from that IP
// wait, within the session's deadline, outside the store's hash slots, so
// that one address cannot fill the queue ahead of everyone else); and it
// counts a wrong password while the IP's turn lasts, so that the next
// check from that IP already sees it.
type attempt struct {
	creds sasl.Credentials
	auth  *authThrottle
	ip    string

	delay time.Duration // of the failure counted in CheckPassword
	done  bool          // CheckPassword counted a failure
}

func (a *attempt) CheckPassword(ctx context.Context, username, password string) error {
	if a.auth.blocked(userKey(username)) {
		return errAccountLocked
	}
	leave, err := a.auth.gate.enter(ctx, ipKey(a.ip))
	if err != nil {
		return fmt.Errorf("waiting for the previous login from %s: %w", a.ip, err)
	}
	defer leave()
	// Again: what finished while this one waited may have blocked the
	// address or locked the account.
	if a.auth.blocked(ipKey(a.ip)) {
		return errAddressBlocked
	}
	if a.auth.blocked(userKey(username)) {
		return errAccountLocked
	}
	err = a.creds.CheckPassword(ctx, username, password)
	if errors.Is(err, sasl.ErrInvalidCredentials) {
		a.delay, a.done = a.auth.failure(ipKey(a.ip), userKey(username)), true
	}
	return err
}

func (a *attempt) ScramKeys(ctx context.Context, username string) (sasl.ScramKeys, error) {
	if a.auth.blocked(userKey(username)) {
		return sasl.ScramKeys{}, errAccountLocked
	}
	return a.creds.ScramKeys(ctx, username)
}

// ScramDecoy passes the store's decoys on (sasl.Decoys).
func (a *attempt) ScramDecoy(username string) ([]byte, int) {
	if d, ok := a.creds.(sasl.Decoys); ok {
		return d.ScramDecoy(username)
	}
	return nil, 0
}

// counted returns the delay of the failure CheckPassword already counted,
// and whether it did.
func (a *attempt) counted() (time.Duration, bool) { return a.delay, a.done }

func ipKey(ip string) string { return "ip " + ip }

// userKey is the throttle key of a login name, normalised as the account
// store normalises it (trimmed, lower case), so that " Alice@X" cannot
// escape the lock on "alice@x".
func userKey(user string) string { return "user " + strings.ToLower(strings.TrimSpace(user)) }

// authThrottle slows down and then blocks password guessing per client IP
// and per account: each failure within the window doubles the delay before
// the 535 (from base up to maxAuthDelay), and after maxAuthFailures the IP
// gets 421 and the account is locked (454, no password checked) until the
// window after its last failure passes.
type authThrottle struct {
	mu    sync.Mutex
	now   func() time.Time
	base  time.Duration
	byKey map[string]*authFailures
	gate  checkGate // one password check per client IP at a time
}

type authFailures struct {
	n    int
	last time.Time
}

func newAuthThrottle(now func() time.Time, base time.Duration) *authThrottle {
	return &authThrottle{now: now, base: base, byKey: make(map[string]*authFailures), gate: checkGate{byKey: map[string]*gateTurn{}}}
}

func (t *authThrottle) current(key string) *authFailures {
	f := t.byKey[key]
	if f != nil && t.now().Sub(f.last) > authWindow {
		delete(t.byKey, key)
		return nil
	}
	return f
}

func (t *authThrottle) blocked(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.current(key)
	return f != nil && f.n >= maxAuthFailures
}

// failure records a failed login against each key and returns the delay to
// apply: the one of the most-failed key.
func (t *authThrottle) failure(keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.byKey) >= maxThrottleEntries {
		t.prune()
	}
	n := 0
	for _, k := range keys {
		f := t.current(k)
		if f == nil {
			f = &authFailures{}
			t.byKey[k] = f
		}
		f.n++
		f.last = t.now()
		n = max(n, f.n)
	}
	return t.delay(n)
}

// delay is the wait before the answer to the n-th failure.
func (t *authThrottle) delay(n int) time.Duration { return min(t.base<<min(n-1, 10), maxAuthDelay) }

// lockedFailure records an attempt on a locked account against the IP key
// only and returns the delay every such attempt gets: that of the failure
// that locks an account, the same whatever the IP's count.
func (t *authThrottle) lockedFailure(ipKey string) time.Duration {
	t.failure(ipKey)
	return t.delay(maxAuthFailures)
}

func (t *authThrottle) success(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byKey, key)
}

// prune drops expired entries; called when the table is full.
func (t *authThrottle) prune() {
	for k := range t.byKey {
		t.current(k) // deletes the entry when its window has passed
	}
	if len(t.byKey) >= maxThrottleEntries {
		clear(t.byKey) // under attack from many sources: start over rather than grow
	}
}
