package delivery

// lmtp.go: final delivery of local mailboxes by LMTP (RFC 2033), to a
// mail store such as Dovecot's (its Sieve and quotas then apply). The
// mailboxes a [[domain]]'s lmtp or lmtp_accounts name are always
// delivered from the queue: the message is durable before the 250, and
// each recipient's own reply after the data decides its state.

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"

	"smtpkit/internal/client"
	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// LMTPRoutes says which local mailboxes are handed to which LMTP server:
// per domain, with per-mailbox exceptions. A config reload replaces it
// (Set). Its methods are safe for concurrent use.
type LMTPRoutes struct {
	t atomic.Pointer[lmtpTable]
}

type lmtpTable struct {
	domains   map[string]string // lower-case domain → server
	mailboxes map[string]string // lower-case address → server, or "" for the Maildir
}

// NewLMTPRoutes returns an empty table: every mailbox in its Maildir.
func NewLMTPRoutes() *LMTPRoutes {
	r := &LMTPRoutes{}
	r.Set(nil, nil)
	return r
}

// Set replaces the table. domains maps a domain to its LMTP server;
// mailboxes maps an address to its server, or to "" to keep it in its
// Maildir although its domain's mail goes to LMTP. Names match
// case-insensitively.
func (r *LMTPRoutes) Set(domains, mailboxes map[string]string) {
	t := &lmtpTable{domains: map[string]string{}, mailboxes: map[string]string{}}
	for k, v := range domains {
		t.domains[strings.ToLower(k)] = v
	}
	for k, v := range mailboxes {
		t.mailboxes[strings.ToLower(k)] = v
	}
	r.t.Store(t)
}

// Route returns the LMTP server of the mailbox box (local@domain), and
// false when it is stored in its Maildir.
func (r *LMTPRoutes) Route(box string) (string, bool) {
	t := r.t.Load()
	box = strings.ToLower(box)
	if dest, ok := t.mailboxes[box]; ok {
		return dest, dest != ""
	}
	at := strings.LastIndexByte(box, '@')
	if at < 0 {
		return "", false
	}
	dest, ok := t.domains[box[at+1:]]
	return dest, ok && dest != ""
}

// Handed reports whether box goes to an LMTP server (Route's ok): the
// inbound fan-out queues such mailboxes instead of writing Maildirs.
func (r *LMTPRoutes) Handed(box string) bool {
	_, ok := r.Route(box)
	return ok
}

// LMTPOptions configure an LMTP courier.
type LMTPOptions struct {
	Routes *LMTPRoutes
	// LocalName is said in LHLO: the host's name.
	LocalName string
	// Timeouts of each step; zero fields take client's defaults.
	Timeouts client.Timeouts
	Dialer   *net.Dialer
	Logger   *slog.Logger
}

// LMTP delivers local mailboxes to their LMTP servers, one session per
// server and attempt. The queue reaches it through Local (the courier of
// the local recipients), which hands it the mailboxes Routes names.
type LMTP struct {
	opts LMTPOptions
	log  *slog.Logger
}

// NewLMTP returns an LMTP courier.
func NewLMTP(o LMTPOptions) *LMTP {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Routes == nil {
		o.Routes = NewLMTPRoutes()
	}
	return &LMTP{opts: o, log: log}
}

// Routes is the courier's table.
func (l *LMTP) Routes() *LMTPRoutes { return l.opts.Routes }

// Deliver implements queue.Courier: d's recipients are grouped by server,
// each group in one LMTP transaction. Each recipient's result is its own
// reply: to RCPT when refused there, else the one after the data (RFC
// 2033 §4.2) — 2xx delivered, 4xx deferred, 5xx bounced. A recipient
// whose mailbox has no LMTP server (the table changed since) fails
// temporarily, to be routed again on the next attempt.
func (l *LMTP) Deliver(ctx context.Context, d *queue.Attempt) []queue.Result {
	out := make([]queue.Result, len(d.Recipients))
	groups := map[string][]int{}
	var order []string
	for i, box := range d.Recipients {
		dest, ok := l.opts.Routes.Route(box)
		if !ok {
			out[i] = queue.Result{Rcpt: box, Err: smtp.Wrap(smtp.R(smtp.CodeLocalError, smtp.EnhSystem.Temp(),
				"mailbox no longer delivered by LMTP"), nil)}
			continue
		}
		if groups[dest] == nil {
			order = append(order, dest)
		}
		groups[dest] = append(groups[dest], i)
	}
	for _, dest := range order {
		idx := groups[dest]
		rcpts := make([]string, len(idx))
		for k, i := range idx {
			rcpts[k] = d.Recipients[i]
		}
		for k, res := range l.session(ctx, d, dest, rcpts) {
			out[idx[k]] = res
		}
	}
	return out
}

// session is one LMTP connection to dest for rcpts.
func (l *LMTP) session(ctx context.Context, d *queue.Attempt, dest string, rcpts []string) []queue.Result {
	at := lmtpRemote(dest)
	network, addr := "tcp", dest
	if path, ok := strings.CutPrefix(dest, "unix:"); ok {
		network, addr = "unix", path
	}
	c, err := client.Dial(ctx, addr, client.Options{LocalName: l.opts.LocalName, Timeouts: l.opts.Timeouts,
		Dialer: l.opts.Dialer, LMTP: true, Network: network})
	if err != nil {
		l.log.Info("lmtp delivery attempt", "msgid", d.ID, "lmtp", dest, "rcpts", len(rcpts), "err", err)
		return allFailed(rcpts, queue.Result{Err: temporary(err), Remote: at, Reply: replyOf(fromServer(err))})
	}
	defer c.Close()
	if err := c.Hello(); err != nil {
		l.log.Info("lmtp delivery attempt", "msgid", d.ID, "lmtp", dest, "rcpts", len(rcpts), "err", err)
		return allFailed(rcpts, queue.Result{Err: temporary(err), Remote: at, Reply: replyOf(fromServer(err))})
	}
	body, err := d.Open()
	if err != nil {
		c.Quit()
		return allFailed(rcpts, queue.Result{Err: temporary(err), Remote: at})
	}
	defer body.Close()
	from := d.From
	// No DSN parameters: this is the final delivery, and the queue sends
	// the "delivered" notices itself (RFC 3461 §6.2.1); an LMTP server
	// told NOTIFY would send them a second time.
	env := client.Envelope{From: from, To: rcpts, Size: d.Size, EightBit: d.EightBit, Binary: d.Binary, SMTPUTF8: d.SMTPUTF8}
	res, err := c.Send(ctx, env, body)
	if err != nil && !errors.Is(err, client.ErrNoFinalReply) {
		var se *smtp.Error
		fail := queue.Result{Err: temporary(err), Remote: at, Reply: replyOf(fromServer(err))}
		if errors.As(err, &se) && se.Permanent() {
			fail.Err = se // MAIL refused for good, or a message the server cannot take
		}
		l.log.Info("lmtp delivery attempt", "msgid", d.ID, "lmtp", dest, "rcpts", len(rcpts), "err", err)
		return allFailed(rcpts, fail)
	}
	out := make([]queue.Result, len(rcpts))
	delivered := 0
	for i, rcpt := range rcpts {
		out[i] = queue.Result{Rcpt: rcpt, Remote: at}
		switch {
		case res.Rcpt[i] != nil:
			out[i].Err = res.Rcpt[i]
			out[i].Reply = replyOf(fromServer(res.Rcpt[i]))
		case res.Final != nil && res.Final[i].Code != 0:
			rep := res.Final[i]
			out[i].Reply = rep
			if rep.Code/100 != 2 {
				out[i].Err = smtp.Wrap(rep, nil)
			} else {
				delivered++
			}
		case errors.Is(res.Data, client.ErrNoFinalReply):
			// RFC 1047: the data went out, this recipient's reply did not
			// come back; the server may have delivered it.
			out[i].Err, out[i].PossibleDuplicate = temporary(res.Data), true
		case res.Data != nil:
			out[i].Err = temporary(res.Data) // DATA refused: every accepted recipient
			out[i].Reply = replyOf(fromServer(res.Data))
		default:
			out[i].Err = temporary(errors.New("lmtp: no reply for the recipient"))
		}
	}
	l.log.Info("lmtp delivery attempt", "msgid", d.ID, "lmtp", dest, "rcpts", len(rcpts), "delivered", delivered,
		"possible_duplicate", errors.Is(res.Data, client.ErrNoFinalReply))
	if err == nil {
		c.Quit()
	}
	return out
}

// lmtpRemote is the Remote an LMTP result names: the socket or host:port,
// with the address when it is one.
func lmtpRemote(dest string) queue.Remote {
	r := queue.Remote{Host: dest}
	if host, _, err := net.SplitHostPort(dest); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			r.Addr = a
		}
	}
	return r
}

var _ queue.Courier = (*LMTP)(nil)
