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
	srv, err := sasl.NewServer(mech, s.srv.opts.Credentials)
	if err != nil {
		s.reply(smtp.R(smtp.CodeParamNotImpl, smtp.EnhBadParams, "Unrecognized authentication mechanism"))
		return
	}
	ip := remoteIP(s.raw.RemoteAddr())
	if s.srv.auth.blocked(ip) {
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
			s.authDone(srv, mech, ip, err)
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
func (s *session) authDone(srv sasl.Server, mech, ip string, err error) {
	mech = strings.ToUpper(mech)
	switch {
	case err == nil:
		s.info.AuthUser = srv.Username()
		s.srv.auth.success(ip)
		s.log.Info("auth ok", "user", s.info.AuthUser, "mech", mech)
		s.reply(smtp.R(smtp.CodeAuthOK, smtp.EnhAuthOK, "Authentication successful"))
	case errors.Is(err, sasl.ErrInvalidCredentials):
		s.authFail++
		delay := s.srv.auth.failure(ip)
		s.log.Warn("auth failed", "mech", mech, "ip", ip, "failures", s.authFail, "delay", delay)
		if delay > 0 {
			s.w.Flush()
			time.Sleep(delay) // the growing delay of a failed login (bounded by maxAuthDelay)
		}
		s.reply(smtp.R(smtp.CodeAuthFailed, smtp.EnhBadCredentials, "Authentication credentials invalid"))
		if s.authFail >= maxAuthFailuresPerSession || s.srv.auth.blocked(ip) {
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
	maxAuthFailuresPerIP      = 10 // within authWindow, then 421 until the window passes
	maxAuthDelay              = 8 * time.Second
	maxThrottleEntries        = 100000
)

// authThrottle slows down and then blocks password guessing per client IP:
// each failure within the window doubles the delay before the 535 (from
// base up to maxAuthDelay), and after maxAuthFailuresPerIP the IP gets 421.
type authThrottle struct {
	mu   sync.Mutex
	now  func() time.Time
	base time.Duration
	byIP map[string]*authFailures
}

type authFailures struct {
	n    int
	last time.Time
}

func newAuthThrottle(now func() time.Time, base time.Duration) *authThrottle {
	return &authThrottle{now: now, base: base, byIP: make(map[string]*authFailures)}
}

func (t *authThrottle) current(ip string) *authFailures {
	f := t.byIP[ip]
	if f != nil && t.now().Sub(f.last) > authWindow {
		delete(t.byIP, ip)
		return nil
	}
	return f
}

func (t *authThrottle) blocked(ip string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.current(ip)
	return f != nil && f.n >= maxAuthFailuresPerIP
}

// failure records a failed login and returns the delay to apply.
func (t *authThrottle) failure(ip string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.byIP) >= maxThrottleEntries {
		t.prune()
	}
	f := t.current(ip)
	if f == nil {
		f = &authFailures{}
		t.byIP[ip] = f
	}
	f.n++
	f.last = t.now()
	d := t.base << min(f.n-1, 10)
	return min(d, maxAuthDelay)
}

func (t *authThrottle) success(ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byIP, ip)
}

// prune drops expired entries; called when the table is full.
func (t *authThrottle) prune() {
	for ip := range t.byIP {
		t.current(ip) // deletes the entry when its window has passed
	}
	if len(t.byIP) >= maxThrottleEntries {
		clear(t.byIP) // under attack from many IPs: start over rather than grow
	}
}
