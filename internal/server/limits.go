package server

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// isResourceExhausted reports accept errors that a burst of connections
// causes (EMFILE, ENFILE, ENOBUFS, ENOMEM); the accept loop backs off and
// retries instead of giving up.
func isResourceExhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// admit reserves a connection slot for the client IP. It returns false when
// the total or per-IP limit is reached; the caller answers 421 4.7.0 and
// closes (RFC 5321 §3.8 allows 421 at connection time).
//
// A client in the listener's trusted networks (SessionInfo.Trusted) is
// exempt from the per-IP count and the per-IP rate, as Postfix exempts
// its mynetworks from anvil's limits: the web application or cron box
// that hands its mail to the local MTA opens as many connections as it
// needs. It is not counted under its IP either, so that a listener that
// does not trust the same address still sees only its own clients. The
// total limit (Connections) holds for everyone.
func (s *Server) admit(sess *session) (ok bool, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if why := s.checkTotalLocked(); why != "" {
		return false, why
	}
	if why := s.admitClientLocked(sess); why != "" {
		return false, why
	}
	s.registerLocked(sess)
	return true, ""
}

// admitConn is the first half of admit for a connection whose client is
// not known yet (a PROXY header is to come, proxy.go): the total limit
// only, so that a flood of silent connections from the balancer is
// bounded. admitClient does the rest once the header has named the
// client.
func (s *Server) admitConn(sess *session) (ok bool, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if why := s.checkTotalLocked(); why != "" {
		return false, why
	}
	s.registerLocked(sess)
	return true, ""
}

// admitClient is the second half of admit, for a session admitConn
// registered: the per-IP limits, on the client's address.
func (s *Server) admitClient(sess *session) (ok bool, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false, whyShuttingDown
	}
	if why := s.admitClientLocked(sess); why != "" {
		return false, why
	}
	return true, ""
}

func (s *Server) checkTotalLocked() string {
	if s.closing.Load() {
		return whyShuttingDown
	}
	if len(s.sessions) >= s.limits.Load().Connections {
		return whyTooMany
	}
	return ""
}

// admitClientLocked checks and counts the session under its client IP;
// a trusted client is neither checked nor counted (see admit).
func (s *Server) admitClientLocked(sess *session) string {
	if sess.info.Trusted {
		return ""
	}
	ip := sess.clientIP()
	if s.perIP[ip] >= s.limits.Load().ConnectionsPerIP {
		return whyTooManyFromIP
	}
	if !s.rate.allow(ip, s.limits.Load().ConnectionRate, s.now()) {
		return whyRateFromIP
	}
	s.perIP[ip]++
	sess.admittedIP = ip
	return ""
}

// registerLocked counts the session in the total and in Server.active.
func (s *Server) registerLocked(sess *session) {
	s.sessions[sess] = struct{}{}
	s.active.Add(1) // under mu, so it never races with Shutdown's Wait
	s.updateStress()
	if s.stressed.Load() {
		sess.conn.stressed.Store(true) // before serve starts (stress.go)
	}
}

// release gives back the slot taken by admit.
func (s *Server) release(sess *session) {
	ip := sess.admittedIP
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess]; !ok {
		return
	}
	delete(s.sessions, sess)
	switch {
	case ip == "": // not counted per IP: trusted, or admitConn without admitClient
	case s.perIP[ip] <= 1:
		delete(s.perIP, ip)
	default:
		s.perIP[ip]--
	}
	s.updateStress()
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// rateLimiter is a token bucket per client IP: each IP may open rate
// connections per minute, in bursts of up to rate. Guarded by Server.mu.
type rateLimiter struct {
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxRateEntries bounds the table; when full, buckets that have refilled
// completely (and so carry no information) are dropped.
const maxRateEntries = 100000

func (r *rateLimiter) allow(ip string, rate int, now time.Time) bool {
	if r.buckets == nil {
		r.buckets = make(map[string]*bucket)
	}
	b := r.buckets[ip]
	if b == nil {
		if len(r.buckets) >= maxRateEntries {
			r.prune(rate, now)
		}
		b = &bucket{tokens: float64(rate), last: now}
		r.buckets[ip] = b
	}
	b.tokens = min(float64(rate), b.tokens+now.Sub(b.last).Minutes()*float64(rate))
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (r *rateLimiter) prune(rate int, now time.Time) {
	for ip, b := range r.buckets {
		if b.tokens+now.Sub(b.last).Minutes()*float64(rate) >= float64(rate) {
			delete(r.buckets, ip)
		}
	}
	if len(r.buckets) >= maxRateEntries {
		clear(r.buckets)
	}
}
