package cli

// dmarc.go: `smtpkit dmarc [-send]` — the DMARC aggregate report rows of
// the running server, and sending the reports now, through its control
// socket; and the daemon's side: the Store that inbound verification
// records into, the Reporter's timer and the control operations. Report
// mails go through daemon.mailReport (reportmail.go), as TLS-RPT's do.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"text/tabwriter"
	"time"

	"smtpkit/internal/config"
	"smtpkit/internal/control"
	"smtpkit/internal/dmarcrpt"
	"smtpkit/internal/inbound"
)

const dmarcUsage = `usage:
  smtpkit dmarc [-config FILE] [-json]          the DMARC report rows not reported yet, per domain and day
  smtpkit dmarc [-config FILE] [-json] -send    send the aggregate reports now: finished days and today until now

The server must be running: the command talks to <data_dir>/control.sock.
Exit status: 0 done, 1 error (or a report kept for the next send), 2 bad usage.
`

// Control operations of `smtpkit dmarc`.
const (
	opDMARC     = "dmarc"      // the pending rows ([]dmarcrpt.Pending)
	opDMARCSend = "dmarc-send" // send the reports now ([]dmarcrpt.Sent)
)

func runDMARC(args []string, stdio Stdio) int {
	data, send, jsonOut, code := callReports(args, stdio, "dmarc", dmarcUsage, opDMARC, opDMARCSend)
	if code >= 0 {
		return code
	}
	if send {
		var sent []dmarcrpt.Sent
		if err := json.Unmarshal(data, &sent); err != nil {
			fmt.Fprintf(stdio.Err, "smtpkit dmarc: bad response: %v\n", err)
			return 1
		}
		if !jsonOut {
			printDMARCSent(stdio.Out, sent)
		}
		for _, s := range sent {
			if s.Kept {
				return 1
			}
		}
		return 0
	}
	var pending []dmarcrpt.Pending
	if err := json.Unmarshal(data, &pending); err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit dmarc: bad response: %v\n", err)
		return 1
	}
	if !jsonOut {
		printDMARCPending(stdio.Out, pending)
	}
	return 0
}

// printDMARCPending prints one line per domain-day and one per row.
func printDMARCPending(w io.Writer, pending []dmarcrpt.Pending) {
	if len(pending) == 0 {
		fmt.Fprintln(w, "no messages recorded since the last report")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tFROM\tTO\tMESSAGES\tROWS")
	for _, p := range pending {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", p.Domain, p.Start.UTC().Format(time.RFC3339),
			p.End.UTC().Format(time.RFC3339), p.Messages(), len(p.Rows))
		for _, r := range p.Rows {
			fmt.Fprintf(tw, "  %s\t%s\tdkim=%s spf=%s\t%d\t%s\n", r.SourceIP, r.HeaderFrom, r.DKIM, r.SPF, r.Count, r.Disposition)
		}
	}
	tw.Flush()
}

// printDMARCSent prints what became of each domain-day's report.
func printDMARCSent(w io.Writer, sent []dmarcrpt.Sent) {
	if len(sent) == 0 {
		fmt.Fprintln(w, "nothing to report")
		return
	}
	for _, s := range sent {
		head := fmt.Sprintf("%s %s..%s (%d messages):", s.Domain, s.Start.UTC().Format(time.RFC3339),
			s.End.UTC().Format(time.RFC3339), s.Messages)
		printOutcome(w, head, s.Skipped, s.To, s.Errors, s.Kept)
	}
}

// dmarcReports is the daemon's DMARC report side ([dmarc_reports]
// enabled): the rows inbound verification records into and the reporter
// that sends them.
type dmarcReports struct {
	store    *dmarcrpt.Store
	reporter *dmarcrpt.Reporter
	interval time.Duration
}

// openDMARCReports opens the rows in <data_dir>/dmarc; nil when
// [dmarc_reports] is disabled. wire adds the reporter.
func openDMARCReports(cfg config.Config, log *slog.Logger) (*dmarcReports, error) {
	if !cfg.DMARCReports.Enabled {
		return nil, nil
	}
	store, err := dmarcrpt.NewStore(dmarcrpt.StoreOptions{Dir: filepath.Join(cfg.DataDir, "dmarc"), Logger: log})
	if err != nil {
		return nil, err
	}
	return &dmarcReports{store: store, interval: cfg.DMARCReports.Interval.D()}, nil
}

// wire adds the reporter: the §7.1 check through resolver, report mails
// to mail (daemon.mailReport).
func (r *dmarcReports) wire(cfg config.Config, resolver dmarcrpt.TXTResolver, mail dmarcrpt.MailFunc, log *slog.Logger) {
	if r == nil {
		return
	}
	r.reporter = dmarcrpt.NewReporter(dmarcrpt.ReporterOptions{
		Store: r.store, Resolver: resolver, Mail: mail,
		From: cfg.DMARCReportsFrom(), Org: cfg.DMARCReportsSubmitter(), Contact: cfg.DMARCReports.Contact, Logger: log,
	})
}

// record has inbound tell the Store every DMARC evaluation on mx (no
// hook when disabled: a nil *Store in the interface would not be nil).
func (r *dmarcReports) record(in *inbound.Options) {
	if r != nil {
		in.DMARCReports = r.store
	}
}

// run sends the reports every interval until ctx is done.
func (r *dmarcReports) run(ctx context.Context) {
	if r != nil {
		r.reporter.Run(ctx, r.interval)
	}
}

// close writes the rows a last time.
func (r *dmarcReports) close(log *slog.Logger) {
	if r == nil {
		return
	}
	if err := r.store.Close(); err != nil {
		log.Error("dmarcrpt: writing the rows at shutdown", "err", err)
	}
}

// dmarcControl answers the dmarc operations and hands the rest to next.
type dmarcControl struct {
	next    control.Handler
	reports *dmarcReports
	log     *slog.Logger
}

func (h dmarcControl) Handle(ctx context.Context, req control.Request) (any, error) {
	if req.Op != opDMARC && req.Op != opDMARCSend {
		return h.next.Handle(ctx, req)
	}
	if h.reports == nil {
		return nil, errors.New("DMARC reports are off ([dmarc_reports] enabled = false)")
	}
	if req.Op == opDMARC {
		return h.reports.store.Snapshot(), nil
	}
	h.log.Info("dmarc control", "op", req.Op)
	return h.reports.reporter.Send(ctx, true), nil
}
