package dmarcrpt

// reporter.go: turning the Store's rows into reports and mailing them to
// the rua addresses of each domain (RFC 7489 §7.1, §7.2).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"smtpkit/internal/dns"
)

// MailFunc hands a report mail to the queue: a new message from the
// reverse-path from to the recipients to. The cli wires it to the queue
// (which signs it with our DKIM key, as TLS-RPT report mails are).
type MailFunc func(ctx context.Context, from string, to []string, msg []byte) error

// ReporterOptions configure a Reporter.
type ReporterOptions struct {
	Store    *Store
	Resolver TXTResolver // the §7.1 check
	Mail     MailFunc
	// From is the reverse-path and From of report mails and the report's
	// email; Org the org_name (and file names); Contact its
	// extra_contact_info ("" = none).
	From, Org, Contact string
	Now                func() time.Time
	Logger             *slog.Logger
}

// Reporter sends the reports.
type Reporter struct {
	opts ReporterOptions
	log  *slog.Logger
	mu   sync.Mutex // one Send at a time
}

// NewReporter returns a Reporter for opts.
func NewReporter(opts ReporterOptions) *Reporter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Reporter{opts: opts, log: opts.Logger}
}

// Sent is what became of one domain-day's rows in a Send.
type Sent struct {
	Domain   string    `json:"domain"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ReportID string    `json:"report_id,omitempty"`
	Messages int64     `json:"messages"`
	Rows     int       `json:"rows"`
	Size     int       `json:"size,omitempty"` // bytes of the report mail
	// To is where the report went (mailto: addresses).
	To []string `json:"to,omitempty"`
	// Errors are the destinations refused (not authorized, too small a
	// size limit, a bad URI) or why the mail could not be queued.
	Errors []string `json:"errors,omitempty"`
	// Skipped says why no report was sent and the rows dropped (the
	// record has no usable rua=mailto:, no destination is authorized).
	Skipped string `json:"skipped,omitempty"`
	// Kept is true when the rows were put back for the next Send (a DNS
	// failure that may go away, the queue refused the mail).
	Kept bool `json:"kept,omitempty"`
}

// Send reports what the Store holds: every finished day, and with
// current also today until now.
func (r *Reporter) Send(ctx context.Context, current bool) []Sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []Sent{}
	for _, p := range r.opts.Store.Take(current) {
		out = append(out, r.send(ctx, p))
	}
	return out
}

func (r *Reporter) send(ctx context.Context, p Pending) Sent {
	s := Sent{Domain: p.Domain, Start: p.Start, End: p.End, Messages: p.Messages(), Rows: len(p.Rows)}
	to, temporary := r.destinations(ctx, p, &s)
	if len(to) == 0 {
		if temporary {
			s.Kept = true
			r.opts.Store.Restore(p)
		} else {
			s.Skipped = "no authorized rua=mailto: destination"
		}
		r.logSent(s)
		return s
	}
	org := Org{Name: r.opts.Org, Email: r.opts.From, Contact: r.opts.Contact}
	s.ReportID = fmt.Sprintf("%d.%s@%s", p.Start.Unix(), randomHex(8), r.opts.Org)
	f := p.Report(org, s.ReportID)
	gz, err := f.Gzip()
	var msg []byte
	if err == nil {
		msg, err = reportMail(r.opts.From, to, r.opts.Now(), org, f, gz)
	}
	if err != nil { // cannot happen: the report is our own values
		s.Errors = append(s.Errors, err.Error())
		r.logSent(s)
		return s
	}
	s.Size = len(msg)
	// §6.2: a destination's "!" limit is the largest report it takes;
	// one too large is not sent there (a short report instead is a MAY).
	to = slices.DeleteFunc(to, func(d Destination) bool {
		if d.MaxSize > 0 && int64(len(msg)) > d.MaxSize {
			s.Errors = append(s.Errors, fmt.Sprintf("mailto:%s: the report's %d bytes exceed its limit of %d", d.Address, len(msg), d.MaxSize))
			return true
		}
		return false
	})
	if len(to) == 0 {
		s.Skipped = "the report is larger than every destination's size limit"
		r.logSent(s)
		return s
	}
	addrs := make([]string, len(to))
	for i, d := range to {
		addrs[i] = d.Address
	}
	if err := r.opts.Mail(ctx, r.opts.From, addrs, msg); err != nil {
		s.Errors = append(s.Errors, fmt.Sprintf("mailto:%s: %v", strings.Join(addrs, ","), err))
		s.Kept = true
		r.opts.Store.Restore(p)
	} else {
		for _, a := range addrs {
			s.To = append(s.To, "mailto:"+a)
		}
	}
	r.logSent(s)
	return s
}

// destinations is the rua=mailto: destinations of p's record that pass
// the §7.1 check, without duplicates; temporary is true when a check
// failed in a way that may go away.
func (r *Reporter) destinations(ctx context.Context, p Pending, s *Sent) (to []Destination, temporary bool) {
	ds, errs := Destinations(p.Record)
	for _, err := range errs {
		s.Errors = append(s.Errors, err.Error())
	}
	seen := map[string]bool{}
	for _, d := range ds {
		ok, err := Authorize(ctx, r.opts.Resolver, p.Domain, d)
		if err != nil {
			s.Errors = append(s.Errors, fmt.Sprintf("mailto:%s: %v", d.Address, err))
			temporary = temporary || errors.Is(err, dns.ErrTemporary)
			continue
		}
		for _, o := range ok {
			if k := strings.ToLower(o.Address); !seen[k] {
				seen[k] = true
				to = append(to, o)
			}
		}
	}
	return to, temporary
}

func (r *Reporter) logSent(s Sent) {
	r.log.Info("dmarc report", "domain", s.Domain, "report_id", s.ReportID, "messages", s.Messages, "rows", s.Rows,
		"to", strings.Join(s.To, " "), "errors", len(s.Errors), "skipped", s.Skipped, "kept", s.Kept)
}

// Run sends reports once per interval until ctx is done, at multiples of
// interval since midnight UTC (with 24h: just after midnight, each
// finished day; §7.2: "at least once every 24 hours"). With an interval
// shorter than a day each run also reports today until then. At start it
// sends what finished days are left from before (a stop across midnight).
func (r *Reporter) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = day
	}
	r.Send(ctx, false)
	for {
		now := r.opts.Now()
		t := time.NewTimer(now.UTC().Truncate(interval).Add(interval).Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		r.Send(ctx, interval < day)
	}
}
