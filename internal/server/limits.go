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
	ip := sess.clientIP()
	trusted := sess.info.Trusted
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false, whyShuttingDown
	}
	if len(s.sessions) >= s.limits.Load().Connections {
		return false, whyTooMany
	}
	if !trusted {
		if s.perIP[ip] >= s.limits.Load().ConnectionsPerIP {
			return false, whyTooManyFromIP
		}
		if !s.rate.allow(ip, s.limits.Load().ConnectionRate, s.now()) {
			return false, whyRateFromIP
		}
		s.perIP[ip]++
		sess.admittedIP = ip
	}
	s.sessions[sess] = struct{}{}
	s.active.Add(1) // under mu, so it never races with Shutdown's Wait
	s.updateStress()
	if s.stressed.Load() {
		sess.conn.stressed.Store(true) // before serve starts (stress.go)
	}
	return true, ""
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
	case ip == "": // trusted: not counted per IP (admit)
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
