package tlsrpt

// reporter.go: turning the Store's counts into reports and sending them
// to the addresses each policy domain publishes (RFC 8460 §3, §5).

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// MailFunc hands a report mail to the queue: a new message from the
// reverse-path from to the recipients to. The cli wires it to the queue.
type MailFunc func(ctx context.Context, from string, to []string, msg []byte) error

// Resolver is what the Reporter looks up: the _smtp._tls TXT records and
// the addresses of https rua hosts (dns.Resolver has both).
type Resolver interface {
	TXTResolver
	IPResolver
}

// ReporterOptions configure a Reporter.
type ReporterOptions struct {
	Store    *Store
	Resolver Resolver
	Mail     MailFunc // nil: mailto: rua are not served
	// From is the reverse-path and From of report mails; Submitter the
	// reporting domain (TLS-Report-Submitter, organization-name, file
	// names); Contact the report's contact-info ("" = From).
	From, Submitter, Contact string
	Roots                    *x509.CertPool // https rua: nil = system roots
	Timeout                  time.Duration  // one https POST; 0 = 30s
	AllowLoopback            bool           // https rua hosts on loopback (tests)
	Now                      func() time.Time
	Logger                   *slog.Logger
}

// Reporter sends the reports.
type Reporter struct {
	opts ReporterOptions
	post *poster
	log  *slog.Logger
	mu   sync.Mutex // one Send at a time
}

// NewReporter returns a Reporter for opts.
func NewReporter(opts ReporterOptions) *Reporter {
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Contact == "" {
		opts.Contact = opts.From
	}
	return &Reporter{opts: opts, log: opts.Logger,
		post: newPoster(opts.Resolver, opts.Roots, opts.Timeout, opts.AllowLoopback)}
}

// Sent is what became of one domain-day's counts in a Send.
type Sent struct {
	Domain     string    `json:"domain"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	ReportID   string    `json:"report_id,omitempty"`
	Successful int64     `json:"successful"`
	Failed     int64     `json:"failed"`
	// To is where the report went (mailto: addresses, https URIs).
	To []string `json:"to,omitempty"`
	// Errors are the destinations that failed, or why the record could
	// not be looked up.
	Errors []string `json:"errors,omitempty"`
	// Skipped says why no report was sent and the counts dropped (the
	// domain publishes no TLS-RPT record).
	Skipped string `json:"skipped,omitempty"`
	// Kept is true when nothing could be delivered and the counts were
	// put back for the next Send.
	Kept bool `json:"kept,omitempty"`
}

// Send reports what the Store holds: every finished day, and with
// current also today until now. Reports go to each rua of the domain's
// _smtp._tls record: mailto: ones as one mail through Mail (durable in
// the queue, which retries), https: ones by POST. When no destination
// took the report, or the record lookup failed temporarily, the counts
// go back to the Store for the next Send (RFC 8460 §5.5); a domain
// without a record has its counts dropped.
func (r *Reporter) Send(ctx context.Context, current bool) []Sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Sent
	for _, p := range r.opts.Store.Take(current) {
		out = append(out, r.send(ctx, p))
	}
	return out
}

func (r *Reporter) send(ctx context.Context, p Pending) Sent {
	s := Sent{Domain: p.Domain, Start: p.Start, End: p.End}
	s.Successful, s.Failed = p.Totals()
	rec, err := Lookup(ctx, r.opts.Resolver, p.Domain)
	if errors.Is(err, ErrNoRecord) {
		s.Skipped = err.Error()
		r.log.Debug("tlsrpt: no report for a domain without a TLS-RPT record", "domain", p.Domain, "reason", err)
		return s
	}
	if err != nil {
		s.Errors, s.Kept = []string{err.Error()}, true
		r.opts.Store.Restore(p)
		r.log.Warn("tlsrpt: looking up the TLS-RPT record failed; the report is kept for the next send", "domain", p.Domain, "err", err)
		return s
	}
	rep := p.Report(r.opts.Submitter, r.opts.Contact, fmt.Sprintf("%d.%s@%s", p.Start.Unix(), randomHex(8), r.opts.Submitter))
	s.ReportID = rep.ReportID
	gz, err := gzipReport(rep)
	if err != nil { // cannot happen: the report is our own values
		s.Errors = []string{err.Error()}
		return s
	}
	attempted := 0
	if to := rec.Mailto(); len(to) > 0 && r.opts.Mail != nil {
		attempted++
		if err := r.opts.Mail(ctx, r.opts.From, to, r.mail(rep, gz, to)); err != nil {
			s.Errors = append(s.Errors, fmt.Sprintf("mailto:%s: %v", strings.Join(to, ","), err))
		} else {
			for _, a := range to {
				s.To = append(s.To, "mailto:"+a)
			}
		}
	}
	for _, u := range rec.HTTPS() {
		attempted++
		if err := r.post.post(ctx, u, gz); err != nil {
			s.Errors = append(s.Errors, err.Error())
		} else {
			s.To = append(s.To, u.Redacted())
		}
	}
	if len(s.To) == 0 && attempted > 0 {
		s.Kept = true
		r.opts.Store.Restore(p)
	}
	r.log.Info("tlsrpt report", "domain", p.Domain, "report_id", s.ReportID, "successful", s.Successful,
		"failed", s.Failed, "to", strings.Join(s.To, " "), "errors", len(s.Errors), "kept", s.Kept)
	return s
}

// mail is rep as the report mail to the addresses to.
func (r *Reporter) mail(rep Report, gz []byte, to []string) []byte {
	start, end := rep.DateRange.Start.Format(time.RFC3339), rep.DateRange.End.Format(time.RFC3339)
	var domain string
	if len(rep.Policies) > 0 {
		domain = rep.Policies[0].Policy.Domain
	}
	var ok, failed int64
	for _, p := range rep.Policies {
		ok += p.Summary.Successful
		failed += p.Summary.Failed
	}
	return message(mailParts{
		from: r.opts.From, to: to, date: r.opts.Now(), domain: domain, submitter: r.opts.Submitter,
		reportID: rep.ReportID, boundary: "tlsrpt-" + randomHex(12),
		filename: Filename(r.opts.Submitter, domain, rep.DateRange, randomHex(4)),
		text: []string{
			"This is an aggregate TLS report (RFC 8460) from " + r.opts.Submitter + ".",
			"",
			"Policy domain: " + domain,
			"Period:        " + start + " to " + end,
			fmt.Sprintf("Sessions:      %d successful, %d failed", ok, failed),
			"",
			"The report is attached as gzip'd JSON.",
		},
		gz: gz,
	})
}

func gzipReport(rep Report) ([]byte, error) {
	data, err := rep.Marshal()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Run sends reports once per interval until ctx is done, at multiples of
// interval since midnight UTC (with 24h: just after midnight, each
// finished day). With an interval shorter than a day each run also
// reports today until then. At start it sends what finished days are
// left from before (a stop across midnight).
func (r *Reporter) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = day
	}
	r.Send(ctx, false)
	for {
		now := r.opts.Now()
		t := time.NewTimer(nextRun(now, interval).Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		r.Send(ctx, interval < day)
	}
}

// nextRun is the first multiple of interval since midnight UTC after now
// (Go's zero time is a UTC midnight and a day has no leap seconds, so
// Truncate counts from midnight for any interval dividing a day).
func nextRun(now time.Time, interval time.Duration) time.Time {
	return now.UTC().Truncate(interval).Add(interval)
}
