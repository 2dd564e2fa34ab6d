// Package loadgen drives an SMTP server with many concurrent client sessions
// and measures it: messages and sessions per second, failures by reply code,
// and latency percentiles per message and per session. It speaks through
// internal/client, so every exchange follows RFC 5321 (with PIPELINING, RFC
// 2920, when offered), STARTTLS (RFC 3207) or implicit TLS (RFC 8314 §3.3),
// and AUTH PLAIN (RFC 4954, RFC 4616).
//
// `smtpkit bench` is the command line; bench/run.sh uses it for the STARTTLS
// and idle-connection scenarios (docs/performance.md).
package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"smtpkit/internal/client"
	"smtpkit/internal/sasl"
	"smtpkit/internal/smtp"
	"smtpkit/internal/tlspolicy"
)

// Options describe one load run.
type Options struct {
	Addr string // host:port
	// TLS is how each session uses TLS, in tlspolicy's vocabulary:
	// ModeStartTLS or ModeImplicit; ModeNone, and the zero value ModeAuto
	// (a load run makes no policy decision), are plaintext.
	TLS       tlspolicy.Mode
	TLSConfig *tls.Config
	// AuthUser, when set, authenticates every session with AUTH PLAIN.
	// Credentials go out only inside TLS, or on a loopback address.
	AuthUser, Password string
	From               string
	To                 []string
	// Concurrency is the number of sessions open at once (default 1).
	Concurrency int
	// Messages is the total to send; 0 means until Duration has passed.
	// One of them must be set.
	Messages int
	Duration time.Duration
	// Size is the size of each message in octets, headers included.
	Size int
	// PerConnection is the number of messages per session before QUIT;
	// 0 means no limit (each worker keeps one session).
	PerConnection int
	LocalName     string // said in EHLO; "" means "localhost"
	Timeouts      client.Timeouts
	// Progress, when set, is called about four times a second and once at
	// the end, from a goroutine of Run's own.
	Progress func(Progress)
}

// Progress is a running count, for a progress display.
type Progress struct {
	Sent, Failed, Sessions int
	Elapsed                time.Duration
	Messages               int           // the target, 0 for a timed run
	Duration               time.Duration // the target of a timed run
}

// Report is the outcome of a run.
type Report struct {
	Server        string        `json:"server"`
	TLS           string        `json:"tls"`
	Concurrency   int           `json:"concurrency"`
	Size          int           `json:"size"`
	PerConnection int           `json:"per_connection"`
	Elapsed       time.Duration `json:"elapsed_ns"`
	// Sent is the number of messages the server accepted (250 after ".");
	// Failed is the number it did not.
	Sent           int     `json:"sent"`
	Failed         int     `json:"failed"`
	Sessions       int     `json:"sessions"` // sessions that ended with 221 after QUIT
	MessagesPerSec float64 `json:"messages_per_sec"`
	SessionsPerSec float64 `json:"sessions_per_sec"`
	// Errors counts failures by reply code ("451", "550", ...), or "tls"
	// and "network" for failures without a reply; ErrorSamples keeps the
	// first error of each kind.
	Errors       map[string]int    `json:"errors"`
	ErrorSamples map[string]string `json:"error_samples"`
	Message      Summary           `json:"message_latency"`
	Session      Summary           `json:"session_latency"`
}

// usesTLS reports whether sessions in mode m use TLS.
func usesTLS(m tlspolicy.Mode) bool {
	return m == tlspolicy.ModeStartTLS || m == tlspolicy.ModeImplicit
}

// reportMode is the mode as the report names it: "none", "starttls" or
// "implicit".
func reportMode(m tlspolicy.Mode) string {
	if !usesTLS(m) {
		return tlspolicy.ModeNone.String()
	}
	return m.String()
}

func (o *Options) check() error {
	switch {
	case o.Addr == "":
		return errors.New("loadgen: no server address")
	case o.Messages <= 0 && o.Duration <= 0:
		return errors.New("loadgen: set a message count or a duration")
	case len(o.To) == 0:
		return errors.New("loadgen: no recipient")
	case usesTLS(o.TLS) && o.TLSConfig == nil:
		return errors.New("loadgen: TLS needs a tls.Config")
	}
	o.Concurrency = max(o.Concurrency, 1)
	return nil
}

// worker is one goroutine's state: its own histograms and error counts,
// merged at the end so that the hot path takes no lock.
type worker struct {
	run      *runState
	msgLat   Histogram
	sessLat  Histogram
	sent     int
	failed   int
	sessions int
	errs     map[string]int
	samples  map[string]string
}

// runState is shared by the workers.
type runState struct {
	opts     *Options
	body     []byte
	deadline time.Time
	claimed  atomic.Int64
	sent     atomic.Int64
	failed   atomic.Int64
	sessions atomic.Int64
}

// claim takes the next message, or reports that the run is over.
func (r *runState) claim() bool {
	if r.opts.Messages > 0 {
		return r.claimed.Add(1) <= int64(r.opts.Messages)
	}
	return time.Now().Before(r.deadline)
}

// Run sends the load described by opts and reports. It returns an error
// only for bad options; failures of the server are counted in the Report.
// ctx stops the run early (the report covers what was done).
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	start := time.Now()
	rs := &runState{opts: &opts, body: Body(opts.From, opts.To[0], opts.Size), deadline: start.Add(opts.Duration)}
	workers := make([]*worker, opts.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{run: rs, errs: map[string]int{}, samples: map[string]string{}}
		workers[i] = w
		wg.Go(func() { w.loop(ctx) })
	}
	stopProgress := progressLoop(rs, start)
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()

	rep := &Report{Server: opts.Addr, TLS: reportMode(opts.TLS), Concurrency: opts.Concurrency,
		Size: len(rs.body), PerConnection: opts.PerConnection, Elapsed: elapsed,
		Errors: map[string]int{}, ErrorSamples: map[string]string{}}
	var msgLat, sessLat Histogram
	for _, w := range workers {
		rep.Sent += w.sent
		rep.Failed += w.failed
		rep.Sessions += w.sessions
		msgLat.Merge(&w.msgLat)
		sessLat.Merge(&w.sessLat)
		for k, n := range w.errs {
			rep.Errors[k] += n
			if _, ok := rep.ErrorSamples[k]; !ok {
				rep.ErrorSamples[k] = w.samples[k]
			}
		}
	}
	if secs := elapsed.Seconds(); secs > 0 {
		rep.MessagesPerSec = float64(rep.Sent) / secs
		rep.SessionsPerSec = float64(rep.Sessions) / secs
	}
	rep.Message, rep.Session = msgLat.Summary(), sessLat.Summary()
	return rep, nil
}

// progressLoop calls Options.Progress until the returned stop is called,
// which also makes the final call.
func progressLoop(rs *runState, start time.Time) (stop func()) {
	p := rs.opts.Progress
	if p == nil {
		return func() {}
	}
	snap := func() Progress {
		return Progress{Sent: int(rs.sent.Load()), Failed: int(rs.failed.Load()), Sessions: int(rs.sessions.Load()),
			Elapsed: time.Since(start), Messages: rs.opts.Messages, Duration: rs.opts.Duration}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				p(snap())
				return
			case <-t.C:
				p(snap())
			}
		}
	}()
	return func() { close(done); <-finished }
}

// loop runs sessions until the run is over. Every iteration claims at
// least one message, so a server that refuses every connection still ends
// a counted run.
func (w *worker) loop(ctx context.Context) {
	for ctx.Err() == nil && w.run.claim() {
		w.session(ctx)
	}
}

// session opens one session, sends the already claimed message and up to
// PerConnection-1 more, and quits.
func (w *worker) session(ctx context.Context) {
	o := w.run.opts
	start := time.Now()
	c, err := w.open(ctx)
	if err != nil {
		w.fail(err)
		return
	}
	defer c.Close()
	for n := 1; ; n++ {
		t := time.Now()
		res, err := c.Send(ctx, client.Envelope{From: o.From, To: o.To, Size: int64(len(w.run.body))}, bytes.NewReader(w.run.body))
		if err == nil {
			err = outcome(res)
		}
		if err != nil {
			w.fail(err)
			if !isReply(err) {
				return // the connection is unusable
			}
		} else {
			w.msgLat.Add(time.Since(t))
			w.sent++
			w.run.sent.Add(1)
		}
		if (o.PerConnection > 0 && n >= o.PerConnection) || ctx.Err() != nil || !w.run.claim() {
			break
		}
	}
	if err := c.Quit(); err != nil {
		w.note(err)
		return
	}
	w.sessLat.Add(time.Since(start))
	w.sessions++
	w.run.sessions.Add(1)
}

// open connects, says EHLO, does TLS and AUTH as asked.
func (w *worker) open(ctx context.Context) (*client.Conn, error) {
	o := w.run.opts
	copts := client.Options{LocalName: o.LocalName, Timeouts: o.Timeouts, AllowPlaintextAuth: isLoopback(o.Addr)}
	var c *client.Conn
	var err error
	if o.TLS == tlspolicy.ModeImplicit {
		c, err = client.DialTLS(ctx, o.Addr, o.TLSConfig, copts)
	} else {
		c, err = client.Dial(ctx, o.Addr, copts)
	}
	if err != nil {
		return nil, err
	}
	if err = c.Hello(); err == nil && o.TLS == tlspolicy.ModeStartTLS {
		err = c.StartTLS(o.TLSConfig)
	}
	if err == nil && o.AuthUser != "" {
		err = c.Auth(sasl.NewPlainClient("", o.AuthUser, o.Password))
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// outcome is the error that decides a message's fate: the refusal of its
// (first) recipient, or of its data. A message some recipients accepted
// counts as sent.
func outcome(res client.Result) error {
	if errors.Is(res.Data, client.ErrNoRecipients) {
		for _, re := range res.Rcpt {
			if re != nil {
				return re
			}
		}
	}
	return res.Data
}

// fail counts a message that was not accepted.
func (w *worker) fail(err error) {
	w.failed++
	w.run.failed.Add(1)
	w.note(err)
}

// note counts an error by its kind.
func (w *worker) note(err error) {
	k := ErrorKind(err)
	w.errs[k]++
	if _, ok := w.samples[k]; !ok {
		w.samples[k] = err.Error()
	}
}

// ErrorKind classifies an error for the report: the reply code of an
// *smtp.Error, "tls" for a failed handshake, "network" for anything else.
func ErrorKind(err error) string {
	var se *smtp.Error
	if errors.As(err, &se) {
		return fmt.Sprint(se.Reply.Code)
	}
	var te *client.TLSError
	if errors.As(err, &te) {
		if te.Refused {
			return fmt.Sprint(te.Reply.Code)
		}
		return "tls"
	}
	return "network"
}

// isReply reports whether err is a server reply, after which the session
// can go on (the client has sent RSET).
func isReply(err error) bool {
	var se *smtp.Error
	return errors.As(err, &se) || errors.Is(err, client.ErrNoRecipients)
}

// isLoopback reports whether addr's host is a loopback IP or "localhost".
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Body builds a message of size octets (at least its headers): a few
// headers and lines of 76 letters, CRLF throughout.
func Body(from, to string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: smtpkit bench\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n", from, to)
	line := strings.Repeat("abcdefghijklmnopqrstuvwxyz", 3)[:76] + "\r\n"
	for b.Len()+len(line) <= size {
		b.WriteString(line)
	}
	if rest := size - b.Len(); rest >= 3 {
		b.WriteString(strings.Repeat("x", rest-2) + "\r\n")
	}
	return b.Bytes()
}
