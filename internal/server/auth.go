package server

import (
	"encoding/base64"
	"errors"
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
	return s.l.Auth && s.srv.opts.Credentials != nil && s.info.TLS != nil
}

func (s *session) mechanisms() []string { return sasl.Mechanisms() }

// cmdAuth runs the AUTH exchange of RFC 4954 §4 with a sasl.Server.
func (s *session) cmdAuth(arg string) {
	mech, initial, hasInitial := strings.Cut(strings.TrimSpace(arg), " ")
	switch {
	case !s.l.Auth || s.srv.opts.Credentials == nil:
		s.reply(smtp.R(smtp.CodeNotImplemented, "5.5.1", "AUTH not available on this port"))
		return
	case s.info.TLS == nil:
		// RFC 4954 §4 and §6: 538 when the mechanism needs encryption.
		s.reply(smtp.R(smtp.CodeEncryptRequired, smtp.EnhEncryptRequired, "Encryption required for requested authentication mechanism"))
		return
	case !s.esmtp:
		s.reply(smtp.R(smtp.CodeBadSequence, "5.5.1", "Send EHLO first"))
		return
	case s.info.AuthUser != "":
		s.reply(smtp.R(smtp.CodeBadSequence, "5.5.1", "Already authenticated"))
		return
	case s.txn.active:
		s.reply(smtp.R(smtp.CodeBadSequence, "5.5.1", "AUTH not allowed during a mail transaction"))
		return
	case mech == "":
		s.reply(smtp.R(smtp.CodeSyntaxParams, smtp.EnhBadParams, "Syntax: AUTH mechanism [initial-response]"))
		return
	}
	creds := &attempt{Credentials: s.srv.opts.Credentials}
	srv, err := sasl.NewServer(mech, creds)
	if err != nil {
		s.reply(smtp.R(smtp.CodeParamNotImpl, smtp.EnhBadParams, "Unrecognized authentication mechanism"))
		return
	}
	ip := remoteIP(s.raw.RemoteAddr())
	if s.srv.auth.blocked(ipKey(ip)) {
		s.reply(smtp.R(smtp.CodeUnavailable, "4.7.0", s.srv.opts.Hostname+" too many failed logins, try again later"))
		s.quit = true
		return
	}
	var resp []byte
	if hasInitial {
		// RFC 4954 §4: "=" is an empty initial response.
		if resp, err = decodeAuthLine(initial); err != nil {
			s.reply(smtp.R(smtp.CodeSyntaxParams, smtp.EnhSyntax, "Invalid base64 data"))
			return
		}
	}
	for {
		challenge, done, err := srv.Next(resp)
		if done {
			s.authDone(srv, mech, ip, creds.username, err)
			return
		}
		s.reply(smtp.Reply{Code: smtp.CodeAuthContinue, Lines: []string{base64.StdEncoding.EncodeToString(challenge)}})
		line, rerr := s.readCommand()
		if rerr != nil {
			s.endOnError(rerr)
			s.quit = true
			return
		}
		if string(line) == "*" {
			// RFC 4954 §4: the client cancelled.
			s.reply(smtp.R(smtp.CodeSyntaxParams, "5.0.0", "Authentication cancelled"))
			return
		}
		if resp, err = decodeAuthLine(string(line)); err != nil {
			s.reply(smtp.R(smtp.CodeSyntaxParams, smtp.EnhSyntax, "Invalid base64 data"))
			return
		}
	}
}

func decodeAuthLine(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// authDone answers the end of an exchange and feeds the throttle. Failures
// are logged with the client IP and the mechanism, never the password.
func (s *session) authDone(srv sasl.Server, mech, ip, user string, err error) {
	mech = strings.ToUpper(mech)
	keys := []string{ipKey(ip)}
	if user != "" {
		keys = append(keys, userKey(user))
	}
	switch {
	case err == nil && s.srv.auth.blocked(userKey(user)):
		// The right password for an account under attack still waits out
		// the window, so guessing cannot be confirmed by a success.
		s.log.Warn("auth refused, account throttled", "mech", mech, "ip", ip)
		s.srv.obs.AuthResult(s.info.Listener, mech, false)
		s.reply(smtp.R(smtp.CodeTempAuthFailure, "4.7.0", "Too many failed logins for this account, try again later"))
	case err == nil:
		s.info.AuthUser = srv.Username()
		s.srv.auth.success(ipKey(ip))
		s.srv.obs.AuthResult(s.info.Listener, mech, true)
		s.log.Info("auth ok", "user", s.info.AuthUser, "mech", mech)
		s.reply(smtp.R(smtp.CodeAuthOK, smtp.EnhAuthOK, "Authentication successful"))
	case errors.Is(err, sasl.ErrInvalidCredentials):
		s.authFail++
		delay := s.srv.auth.failure(keys...)
		s.srv.obs.AuthResult(s.info.Listener, mech, false)
		s.log.Warn("auth failed", "mech", mech, "ip", ip, "failures", s.authFail, "delay", delay)
		if delay > 0 {
			s.flush()
			time.Sleep(delay) // the growing delay of a failed login (bounded by maxAuthDelay)
		}
		s.reply(smtp.R(smtp.CodeAuthFailed, smtp.EnhBadCredentials, "Authentication credentials invalid"))
		if s.authFail >= maxAuthFailuresPerSession || s.srv.auth.blocked(ipKey(ip)) {
			s.reply(smtp.R(smtp.CodeUnavailable, "4.7.0", s.srv.opts.Hostname+" too many failed logins, closing connection"))
			s.quit = true
		}
	case errors.Is(err, sasl.ErrMalformed) || errors.Is(err, sasl.ErrTooManySteps):
		s.reply(smtp.R(smtp.CodeSyntaxParams, smtp.EnhSyntax, "Malformed authentication exchange"))
	default:
		s.log.Error("auth backend failure", "mech", mech, "err", err)
		s.reply(smtp.R(smtp.CodeTempAuthFailure, "4.7.0", "Temporary authentication failure"))
	}
}

const (
	maxAuthFailuresPerSession = 3
	authWindow                = 15 * time.Minute
	maxAuthFailures           = 10 // per IP or account within authWindow, then blocked until the window passes
	maxAuthDelay              = 8 * time.Second
	maxThrottleEntries        = 100000
)

// attempt records which account an exchange tried, so that failures can be
// throttled per account as well as per client IP.
type attempt struct {
	sasl.Credentials
	username string
}

func (a *attempt) CheckPassword(username, password string) error {
	a.username = username
	return a.Credentials.CheckPassword(username, password)
}

func (a *attempt) ScramKeys(username string) (sasl.ScramKeys, error) {
	a.username = username
	return a.Credentials.ScramKeys(username)
}

func ipKey(ip string) string     { return "ip " + ip }
func userKey(user string) string { return "user " + strings.ToLower(user) }

// authThrottle slows down and then blocks password guessing per client IP
// and per account: each failure within the window doubles the delay before
// the 535 (from base up to maxAuthDelay), and after maxAuthFailures the IP
// gets 421 and the account refuses logins until the window passes.
type authThrottle struct {
	mu    sync.Mutex
	now   func() time.Time
	base  time.Duration
	byKey map[string]*authFailures
}

type authFailures struct {
	n    int
	last time.Time
}

func newAuthThrottle(now func() time.Time, base time.Duration) *authThrottle {
	return &authThrottle{now: now, base: base, byKey: make(map[string]*authFailures)}
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
	return min(t.base<<min(n-1, 10), maxAuthDelay)
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
