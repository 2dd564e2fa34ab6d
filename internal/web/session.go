package web

// session.go: server-side sessions, the cookie that names one, and the
// CSRF token each carries.

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// Cookie names. The session cookie holds a random id, never account data.
const (
	sessionCookie = "smtpkit_session"
	loginCookie   = "smtpkit_login" // the login form's CSRF token
)

// maxSessions bounds the sessions kept; the least recently used goes.
const maxSessions = 256

// session is one login.
type session struct {
	account  string
	csrf     string
	created  time.Time
	lastSeen time.Time
}

// sessions are keyed by the SHA-256 of the cookie's id, so that the map
// holds nothing a reader of memory could replay as a cookie.
type sessions struct {
	now func() time.Time
	ttl time.Duration

	mu sync.Mutex
	m  map[[sha256.Size]byte]*session
}

func newSessions(now func() time.Time, ttl time.Duration) *sessions {
	return &sessions{now: now, ttl: ttl, m: map[[sha256.Size]byte]*session{}}
}

// token returns 32 random bytes, base64url.
func token() string {
	b := make([]byte, 32)
	rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// start makes a session for account and returns its cookie id.
func (s *sessions) start(account string) (id string, sess *session) {
	id = token()
	now := s.now()
	sess = &session{account: account, csrf: token(), created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if len(s.m) >= maxSessions {
		var oldest [sha256.Size]byte
		first := true
		for k, v := range s.m {
			if first || v.lastSeen.Before(s.m[oldest].lastSeen) {
				oldest, first = k, false
			}
		}
		delete(s.m, oldest)
	}
	s.m[sha256.Sum256([]byte(id))] = sess
	return id, sess
}

// get returns the live session of id and marks it used; nil when there
// is none or it expired (then it is dropped).
func (s *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	k := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.m[k]
	if sess == nil {
		return nil
	}
	if s.dead(sess, now) {
		delete(s.m, k)
		return nil
	}
	sess.lastSeen = now
	c := *sess
	return &c
}

// end drops the session of id.
func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sha256.Sum256([]byte(id)))
}

func (s *sessions) dead(sess *session, now time.Time) bool {
	return now.Sub(sess.lastSeen) > s.ttl || now.Sub(sess.created) > MaxSession
}

// expire drops dead sessions; the caller holds s.mu.
func (s *sessions) expire(now time.Time) {
	for k, v := range s.m {
		if s.dead(v, now) {
			delete(s.m, k)
		}
	}
}

// cookieName is the name of cookie base: with Secure it carries the
// __Host- prefix, which a browser accepts only from a secure origin, with
// Path=/ and without Domain, so that no other host (a sibling subdomain
// behind the same proxy) can set or shadow it.
func cookieName(base string, secure bool) string {
	if secure {
		return "__Host-" + base
	}
	return base
}

// setCookie sets a cookie of the page: HttpOnly (no script reads it),
// SameSite=Strict (no other site's page sends it), Secure (and __Host-)
// when secure, path /. maxAge < 0 deletes it.
func setCookie(w http.ResponseWriter, name, value string, secure bool, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(name, secure), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode,
	})
}

// cookie returns the value of r's cookie name (__Host-name when secure),
// "" when absent.
func cookie(r *http.Request, name string, secure bool) string {
	c, err := r.Cookie(cookieName(name, secure))
	if err != nil {
		return ""
	}
	return c.Value
}

// sameToken compares a submitted token with the expected one in constant
// time; an empty expected token matches nothing.
func sameToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
