// Package server is the SMTP server: listeners by role, the session state
// machine of RFC 5321, STARTTLS (RFC 3207) and implicit TLS (RFC 8314),
// PIPELINING (RFC 2920), CHUNKING (RFC 3030), and the limits and deadlines
// that bound everything a peer controls. Policy and storage are behind the
// Backend interface; this package never imports the queue or the Maildir.
package server

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"smtpkit/internal/sasl"
	"smtpkit/internal/smtp"
)

// Limits bound what one peer can make the server do. Zero values are
// replaced by the defaults of DefaultLimits.
type Limits struct {
	MessageSize      int64         // octets after dot-unstuffing (RFC 1870 SIZE)
	Recipients       int           // per transaction; RFC 5321 §4.5.3.1.8 requires ≥ 100
	Errors           int           // protocol errors before 421 and disconnect
	CommandLine      int           // octets incl. CRLF; RFC 5321 §4.5.3.1.4 requires ≥ 512
	TextLine         int           // octets incl. CRLF; RFC 5321 §4.5.3.1.6 requires ≥ 1000
	Connections      int           // concurrent, all listeners
	ConnectionsPerIP int           // concurrent, per client IP
	CommandTimeout   time.Duration // RFC 5321 §4.5.3.2.7: ≥ 5 minutes
	DataTimeout      time.Duration // per block of message data, RFC 5321 §4.5.3.2.5/6
	SessionTimeout   time.Duration // whole session
	ConnectionRate   int           // new connections per minute per client IP
	SessionRcpts     int           // recipients per session, all transactions together
	// SessionTxns is the number of mail transactions (accepted MAIL
	// commands) one session may open; the next MAIL gets 421 and the
	// session ends. EHLO advertises it as LIMITS MAILMAX (RFC 9422 §4.1).
	SessionTxns int
	HeaderSize  int64 // octets of one message's header block
	// MinDataRate is the slowest message data is taken at, in octets per
	// second: all of a DATA, or of a BDAT transfer, must have arrived by
	// DataTimeout after its start plus one second per MinDataRate octets
	// (pace.go). It ends the trickle that DataTimeout, a bound on each
	// wait, cannot see.
	MinDataRate int64
	// StressThreshold is the percentage of Connections in use at which
	// the server goes into stress mode (stress.go): then the command and
	// data timeouts are the Stress ones, and sessions already waiting are
	// told.
	StressThreshold      int
	StressCommandTimeout time.Duration
	StressDataTimeout    time.Duration
}

// DefaultLimits are the limits used for zero fields.
func DefaultLimits() Limits {
	return Limits{
		MessageSize:      50 << 20,
		Recipients:       100,
		Errors:           10,
		CommandLine:      4096, // room for AUTH initial responses
		TextLine:         1000,
		Connections:      1000,
		ConnectionsPerIP: 20,
		CommandTimeout:   5 * time.Minute,
		DataTimeout:      10 * time.Minute,
		SessionTimeout:   30 * time.Minute,
		ConnectionRate:   120,
		SessionRcpts:     1000,
		SessionTxns:      1000,
		HeaderSize:       1 << 20,
		// Postfix's smtpd_min_data_rate and its stress-mode timeouts.
		MinDataRate:          500,
		StressThreshold:      80,
		StressCommandTimeout: 10 * time.Second,
		StressDataTimeout:    10 * time.Second,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MessageSize <= 0 {
		l.MessageSize = d.MessageSize
	}
	if l.Recipients <= 0 {
		l.Recipients = d.Recipients
	}
	if l.Errors <= 0 {
		l.Errors = d.Errors
	}
	if l.CommandLine < 512 {
		l.CommandLine = d.CommandLine
	}
	if l.TextLine < 1000 {
		l.TextLine = d.TextLine
	}
	if l.Connections <= 0 {
		l.Connections = d.Connections
	}
	if l.ConnectionsPerIP <= 0 {
		l.ConnectionsPerIP = d.ConnectionsPerIP
	}
	if l.CommandTimeout <= 0 {
		l.CommandTimeout = d.CommandTimeout
	}
	if l.DataTimeout <= 0 {
		l.DataTimeout = d.DataTimeout
	}
	if l.SessionTimeout <= 0 {
		l.SessionTimeout = d.SessionTimeout
	}
	if l.ConnectionRate <= 0 {
		l.ConnectionRate = d.ConnectionRate
	}
	if l.SessionRcpts < l.Recipients {
		l.SessionRcpts = max(d.SessionRcpts, l.Recipients)
	}
	if l.SessionTxns <= 0 {
		l.SessionTxns = d.SessionTxns
	}
	if l.HeaderSize < 1000 {
		l.HeaderSize = d.HeaderSize
	}
	if l.MinDataRate <= 0 {
		l.MinDataRate = d.MinDataRate
	}
	if l.StressThreshold <= 0 || l.StressThreshold > 100 {
		l.StressThreshold = d.StressThreshold
	}
	if l.StressCommandTimeout <= 0 {
		l.StressCommandTimeout = d.StressCommandTimeout
	}
	if l.StressDataTimeout <= 0 {
		l.StressDataTimeout = d.StressDataTimeout
	}
	return l
}

// Options configure a Server.
type Options struct {
	// Hostname is the name in the greeting, EHLO reply and Received header.
	Hostname string
	// PostmasterDomain completes "RCPT TO:<Postmaster>" (RFC 5321 §4.5.1).
	PostmasterDomain string
	Listeners        []Listener
	Backend          Backend
	// Credentials checks AUTH; nil disables AUTH everywhere.
	Credentials sasl.Credentials
	// AuthFailureDelay is the delay after the first failed login; it
	// doubles with each further failure from the same IP. Zero means 1s.
	AuthFailureDelay time.Duration
	Limits           Limits
	// DSN offers the DSN extension (RFC 3461): EHLO advertises it and MAIL
	// takes RET and ENVID, RCPT NOTIFY and ORCPT, handed to the Backend in
	// the Envelope. Set it only for a Backend that honours them; without
	// it those parameters are refused 555 like any other not offered.
	DSN    bool
	Logger *slog.Logger
	// Observer is told about session events (metrics); nil means none.
	Observer Observer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server serves SMTP on its listeners until Shutdown.
type Server struct {
	opts   Options
	limits atomic.Pointer[Limits] // replaced by SetLimits; each session keeps the one it started with
	log    *slog.Logger
	obs    Observer
	now    func() time.Time

	// postmaster is the domain completing <Postmaster>, replaced by
	// SetPostmasterDomain (a reload that changes the local domains).
	postmaster atomic.Pointer[string]

	mu        sync.Mutex
	listeners []net.Listener
	sessions  map[*session]struct{}
	perIP     map[string]int
	rate      rateLimiter   // new connections per IP per minute
	closing   atomic.Bool   // set once by Shutdown; read without mu to keep lock order simple
	stressed  atomic.Bool   // stress mode (stress.go); written under mu, read without
	sweepStop chan struct{} // closed by the first Shutdown; ends sweepIdle
	sweeping  bool          // guarded by mu: sweepIdle was started

	active sync.WaitGroup
	auth   *authThrottle
	help   smtp.Reply // HELP's answer, from the command table
	verbs  []string   // the verbs of the command table (smtp.ParseCommand)
	// onReply, when set (tests, before any session starts), sees every
	// reply of every session with the command it answers and the state
	// that command arrived in. It is here, not in the session, to keep
	// idle sessions small.
	onReply func(arrivedIn state, c *command, r smtp.Reply)
}

// New returns a server for opts. It does not listen yet.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if opts.AuthFailureDelay == 0 {
		opts.AuthFailureDelay = time.Second
	}
	srv := &Server{
		opts:     opts,
		log:      log,
		obs:      observerOrNop(opts.Observer),
		now:      now,
		sessions: make(map[*session]struct{}),
		perIP:    make(map[string]int),
		auth:     newAuthThrottle(now, opts.AuthFailureDelay),
		help:     helpReply(),
		verbs:    verbNames(),

		sweepStop: make(chan struct{}),
	}
	srv.SetLimits(opts.Limits)
	srv.SetPostmasterDomain(opts.PostmasterDomain)
	return srv
}

// SetPostmasterDomain replaces the domain that completes a bare
// "RCPT TO:<Postmaster>" (RFC 5321 §4.1.1.3) for the commands that follow.
func (s *Server) SetPostmasterDomain(domain string) { s.postmaster.Store(&domain) }

// SetLimits replaces the limits (a config reload). Sessions already
// running keep the limits they started with; new ones get these.
func (s *Server) SetLimits(l Limits) {
	l = l.withDefaults()
	s.limits.Store(&l)
}

// Listen binds every listener. It returns the first error after closing
// what was already bound.
func (s *Server) Listen() error {
	for _, l := range s.opts.Listeners {
		if l.TLS != TLSNone && l.TLSConfig == nil {
			s.closeListeners()
			return fmt.Errorf("listener %s: tls %s needs a certificate", l.Address, l.TLS)
		}
		ln, err := net.Listen("tcp", l.Address)
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("listener %s (%s): %w", l.Address, l.Role, err)
		}
		s.mu.Lock()
		s.listeners = append(s.listeners, ln)
		s.mu.Unlock()
	}
	return nil
}

// Addrs returns the bound addresses, in listener order (useful with port 0).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.listeners))
	for i, ln := range s.listeners {
		out[i] = ln.Addr()
	}
	return out
}

// Serve accepts connections on every bound listener until Shutdown. It
// returns nil after a Shutdown. It also starts the idle sweeper (idle.go),
// which Shutdown stops.
func (s *Server) Serve() error {
	s.mu.Lock()
	lns := append([]net.Listener(nil), s.listeners...)
	if !s.sweeping && !s.isClosing() {
		s.sweeping = true
		s.active.Add(1) // under mu, as admit does: Shutdown waits for the sweeper too
		go s.sweepIdle(s.sweepStop)
	}
	s.mu.Unlock()
	errc := make(chan error, len(lns))
	for i, ln := range lns {
		go func(ln net.Listener, l Listener) { errc <- s.acceptLoop(ln, l) }(ln, s.opts.Listeners[i])
	}
	var first error
	for range lns {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Server) acceptLoop(ln net.Listener, l Listener) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isResourceExhausted(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "listener", l.Address, "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept on %s: %w", l.Address, err)
		}
		backoff = 0
		s.startSession(c, &l) // the sessions of this listener share l
	}
}

func (s *Server) isClosing() bool { return s.closing.Load() }

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range s.listeners {
		ln.Close()
	}
}

// Shutdown stops accepting, lets sessions in progress finish until ctx is
// done, then ends the rest with 421 (RFC 5321 §3.8).
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.closing.Swap(true) {
		close(s.sweepStop)
	}
	s.mu.Lock()
	for _, ln := range s.listeners {
		ln.Close()
	}
	for sess := range s.sessions {
		sess.conn.interruptIfIdle()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for sess := range s.sessions {
		sess.conn.interrupt()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// newID returns a short random identifier for sessions and messages.
func newID() string {
	var b [10]byte
	rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}
