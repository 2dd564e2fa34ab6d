package web

// login.go: the login form, the admin check in front of every page, and
// the limits on failed logins.

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"smtpkit/internal/userdb"
)

// Failed-login limits: per account name, and for all names together
// (behind a tunnel or proxy every browser comes from the same loopback
// address, so the client address says nothing).
const (
	nameFailures   = 5                // failures of one name …
	nameWindow     = 15 * time.Minute // … in this window block the name for its rest
	globalFailures = 30               // failures of any names …
	globalWindow   = time.Minute      // … in this window block every login for its rest
	maxNames       = 1024             // names tracked
	maxForm        = 64 << 10         // bytes of a POST body
)

// limiter counts failed logins.
type limiter struct {
	now func() time.Time

	mu     sync.Mutex
	names  map[string]*window
	global window
}

type window struct {
	start time.Time
	n     int
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, names: map[string]*window{}}
}

// blocked reports whether name may not try now, and until when.
func (l *limiter) blocked(name string) (time.Time, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if end := l.global.start.Add(globalWindow); l.global.n >= globalFailures && now.Before(end) {
		return end, true
	}
	if w := l.names[name]; w != nil {
		if end := w.start.Add(nameWindow); w.n >= nameFailures && now.Before(end) {
			return end, true
		}
	}
	return time.Time{}, false
}

// failed counts a failed login of name.
func (l *limiter) failed(name string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	count := func(w *window, span time.Duration) {
		if now.Sub(w.start) >= span {
			*w = window{start: now}
		}
		w.n++
	}
	count(&l.global, globalWindow)
	w := l.names[name]
	if w == nil {
		if len(l.names) >= maxNames {
			for k, v := range l.names {
				if now.Sub(v.start) >= nameWindow {
					delete(l.names, k)
				}
			}
		}
		if len(l.names) >= maxNames {
			return // the global window still counts it
		}
		w = &window{start: now}
		l.names[name] = w
		w.n = 1
		return
	}
	count(w, nameWindow)
}

// succeeded forgets name's failures.
func (l *limiter) succeeded(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.names, name)
}

// loginForm shows the form with a fresh token in a cookie and the form
// (double submit: another site can neither read nor set the cookie).
func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	tok := token()
	setCookie(w, loginCookie, tok, h.secure(r), 0)
	h.render(w, http.StatusOK, "login", page{Title: "Log in", CSRF: tok, Data: h.opts.Hostname})
}

// login checks the form. Every refusal — unknown name, wrong password,
// an account that is not admin — gets the same answer after the same
// work (the store costs an unknown name a full hash).
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if !sameToken(r.PostForm.Get("csrf"), cookie(r, loginCookie, h.secure(r))) {
		http.Error(w, "missing or wrong form token: reload the login page", http.StatusForbidden)
		return
	}
	name := strings.ToLower(strings.TrimSpace(r.PostForm.Get("address")))
	again := func(code int, msg string) {
		tok := token()
		setCookie(w, loginCookie, tok, h.secure(r), 0)
		h.render(w, code, "login", page{Title: "Log in", CSRF: tok, Error: msg, Data: h.opts.Hostname})
	}
	if until, blocked := h.limiter.blocked(name); blocked {
		h.log.Warn("status page: login refused, too many failures", "account", name, "until", until.UTC())
		again(http.StatusTooManyRequests, "Too many failed logins: try again after "+until.UTC().Format("15:04:05")+" UTC.")
		return
	}
	acct, err := h.opts.Accounts.Authenticate(r.Context(), name, r.PostForm.Get("password"))
	if errors.Is(err, userdb.ErrBusy) {
		again(http.StatusServiceUnavailable, "The server is busy checking passwords: try again.")
		return
	}
	if err != nil || !acct.Admin {
		h.limiter.failed(name)
		h.log.Warn("status page: login failed", "account", name, "remote", r.RemoteAddr, "admin", err == nil && !acct.Admin)
		again(http.StatusUnauthorized, "Login failed: wrong address or password, or not an admin account.")
		return
	}
	h.limiter.succeeded(name)
	id, _ := h.sessions.start(acct.Address)
	setCookie(w, loginCookie, "", h.secure(r), -1)
	setCookie(w, sessionCookie, id, h.secure(r), 0)
	h.log.Info("status page: login", "account", acct.Address, "remote", r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s *session) {
	h.sessions.end(cookie(r, sessionCookie, h.secure(r)))
	setCookie(w, sessionCookie, "", h.secure(r), -1)
	h.log.Info("status page: logout", "account", s.account)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// admin wraps a page: without a live session of an account that is still
// admin it redirects to /login; a POST must carry the session's CSRF token
// (403 otherwise).
func (h *Handler) admin(next func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := cookie(r, sessionCookie, h.secure(r))
		s := h.sessions.get(id)
		if s != nil {
			if a, ok := h.opts.Accounts.Lookup(s.account); !ok || !a.Admin {
				h.sessions.end(id)
				s = nil
			}
		}
		if s == nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form", http.StatusBadRequest)
				return
			}
			if !sameToken(r.PostForm.Get("csrf"), s.csrf) {
				h.log.Warn("status page: POST without the session's CSRF token refused", "account", s.account, "path", r.URL.Path)
				http.Error(w, "missing or wrong form token: reload the page", http.StatusForbidden)
				return
			}
		}
		next(w, r, s)
	}
}
