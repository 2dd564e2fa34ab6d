package server

import (
	"errors"
	"net"
	"syscall"
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
func (s *Server) admit(sess *session) (ok bool, why string) {
	ip := remoteIP(sess.raw.RemoteAddr())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false, whyShuttingDown
	}
	if len(s.sessions) >= s.limits.Load().Connections {
		return false, whyTooMany
	}
	if s.perIP[ip] >= s.limits.Load().ConnectionsPerIP {
		return false, whyTooManyFromIP
	}
	s.perIP[ip]++
	s.sessions[sess] = struct{}{}
	s.active.Add(1) // under mu, so it never races with Shutdown's Wait
	return true, ""
}

// release gives back the slot taken by admit.
func (s *Server) release(sess *session) {
	ip := remoteIP(sess.raw.RemoteAddr())
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess]; !ok {
		return
	}
	delete(s.sessions, sess)
	if s.perIP[ip] <= 1 {
		delete(s.perIP, ip)
	} else {
		s.perIP[ip]--
	}
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
