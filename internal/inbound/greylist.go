package inbound

import (
	"strings"
	"time"

	"smtpkit/internal/authres"
	"smtpkit/internal/greylist"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// greylist.go: greylisting of mail on mx (internal/greylist; RFC 6647
// describes the practice). A new triplet of client network, sender and
// recipient gets 451 4.7.1; a real MTA retries (RFC 5321 §4.5.4.1) and
// passes once the delay is over.
//
// Never greylisted: submission listeners, authenticated and trusted
// clients, clients a DNSWL lists (the DNSBL score is negative), and,
// when [verify] is on, messages with a DKIM signature aligned with their
// From domain. That last one is known only once the message has arrived,
// so with verification on the decision moves from RCPT to the end of
// DATA (greylistMessage): the recipients are accepted, the message is
// received and verified, and then either passes (DKIM-aligned, or every
// triplet passes) or is answered 451 4.7.1 as a whole and not stored.
// With verification off it is taken at each RCPT (greylistRecipient).

// Greylister decides on a triplet (*greylist.List).
type Greylister interface {
	Check(t greylist.Triplet) greylist.Decision
}

// Where the greylist decision was taken, for the log.
const (
	greyAtRcpt = "rcpt"
	greyAtData = "data"
)

// greylists reports whether mail of session s is subject to
// greylisting at all. The DNSWL verdict (screen.go) is waited for when
// the lookups still run; it is asked last, after the cheap tests.
func (b *Backend) greylists(s *server.SessionInfo) bool {
	if b.opts.Greylist == nil || s == nil || s.Role != server.RoleMX ||
		s.AuthUser != "" || s.Trusted || !remoteIP(s.Remote).IsValid() {
		return false
	}
	return !b.sessions.get(s).allowlisted()
}

// greylistRecipient is the RCPT step for a recipient that is otherwise
// accepted: the decision when verification is off, nothing when it is on
// (greylistMessage decides).
func (b *Backend) greylistRecipient(s *server.SessionInfo, from, rcpt smtp.Address) error {
	if !b.greylists(s) || b.opts.Verify != nil {
		return nil
	}
	return b.greylistCheck(s, from, []smtp.Address{rcpt}, greyAtRcpt)
}

// greylistAtData returns the end-of-DATA decision for env, nil when its
// message is not greylisted.
func (b *Backend) greylistAtData(env *server.Envelope) func(authres.Result) error {
	if !b.greylists(env.Session) {
		return nil
	}
	return func(r authres.Result) error { return b.greylistMessage(env, r) }
}

// greylistMessage decides on a verified message: a DKIM signature
// aligned with the From domain exempts it; otherwise each recipient's
// triplet is checked, and one that does not pass defers the message.
func (b *Backend) greylistMessage(env *server.Envelope, r authres.Result) error {
	if d, ok := dkimAligned(r); ok {
		b.opts.Logger.Debug("greylist: exempt, DKIM-aligned", "conn", env.Session.ID, "msgid", env.ID, "dkim_domain", d)
		b.events().GreylistPassed("dkim_aligned")
		return nil
	}
	return b.greylistCheck(env.Session, env.From, env.Recipients, greyAtData)
}

// greylistCheck checks the triplet of every recipient in rcpts (all of
// them, so that each is recorded) and defers when one does not pass.
func (b *Backend) greylistCheck(s *server.SessionInfo, from smtp.Address, rcpts []smtp.Address, stage string) error {
	ip := remoteIP(s.Remote)
	sender := ""
	if !from.IsNull() {
		sender = from.String()
	}
	var deferred []string
	var wait time.Duration
	var reason greylist.Reason
	for _, rcpt := range rcpts {
		d := b.opts.Greylist.Check(greylist.NewTriplet(ip, sender, rcpt.String()))
		if d.Pass {
			b.events().GreylistPassed(string(d.Reason))
			continue
		}
		deferred = append(deferred, rcpt.String())
		wait = max(wait, d.Wait)
		reason = d.Reason
	}
	if len(deferred) == 0 {
		return nil
	}
	b.events().GreylistDeferred(string(reason))
	b.opts.Logger.Info("greylisted", "conn", s.ID, "remote", ip.String(), "from", sender, "rcpt", strings.Join(deferred, ","),
		"reason", string(reason), "retry_after", (wait + time.Second - 1).Truncate(time.Second).String(), "stage", stage)
	return errGreylisted
}

// dkimAligned reports a DKIM signature that passed and is aligned with
// the From domain (RFC 7489 §3.1.1): as DMARC found it, or, for a From
// domain without a DMARC record, a passing d= that is the From domain
// or a parent of it (relaxed alignment as far as it can be told without
// the public suffix list: nobody but the domain's owner publishes keys
// under a parent of a registered domain).
func dkimAligned(r authres.Result) (string, bool) {
	for _, sig := range r.DKIM {
		if sig.Result != "pass" || sig.Domain == "" || r.FromDomain == "" {
			continue
		}
		if r.DMARC.DKIMAligned || sig.Domain == r.FromDomain || strings.HasSuffix(r.FromDomain, "."+sig.Domain) && strings.Contains(sig.Domain, ".") {
			return sig.Domain, true
		}
	}
	return "", false
}
