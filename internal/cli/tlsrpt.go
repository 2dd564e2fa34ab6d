package cli

// tlsrpt.go: `smtpkit tlsrpt [--send]` — the pending TLS-RPT counters of
// the running server, and sending the reports now, through its control
// socket; and the daemon's side: the Store that delivery counts into, the
// Reporter's timer, the control operations, and the report mails handed
// to the queue (or, for a rua in a local domain, to the mailboxes).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"smtpkit/internal/config"
	"smtpkit/internal/control"
	"smtpkit/internal/tlsrpt"
)

const tlsrptUsage = `usage:
  smtpkit tlsrpt [-config FILE] [-json]          the TLS-RPT counters not reported yet, per domain and day
  smtpkit tlsrpt [-config FILE] [-json] -send    send the reports now: finished days and today until now

The server must be running: the command talks to <data_dir>/control.sock.
Exit status: 0 done, 1 error (or a report that reached none of its destinations), 2 bad usage.
`

// Control operations of `smtpkit tlsrpt`.
const (
	opTLSRPT     = "tlsrpt"      // the pending counters ([]tlsrpt.Pending)
	opTLSRPTSend = "tlsrpt-send" // send the reports now ([]tlsrpt.Sent)
)

func runTLSRPT(args []string, stdio Stdio) int {
	data, send, jsonOut, code := callReports(args, stdio, "tlsrpt", tlsrptUsage, opTLSRPT, opTLSRPTSend)
	if code >= 0 {
		return code
	}
	if send {
		var sent []tlsrpt.Sent
		if err := json.Unmarshal(data, &sent); err != nil {
			fmt.Fprintf(stdio.Err, "smtpkit tlsrpt: bad response: %v\n", err)
			return 1
		}
		if !jsonOut {
			printSent(stdio.Out, sent)
		}
		for _, s := range sent {
			if s.Kept {
				return 1
			}
		}
		return 0
	}
	var pending []tlsrpt.Pending
	if err := json.Unmarshal(data, &pending); err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit tlsrpt: bad response: %v\n", err)
		return 1
	}
	if !jsonOut {
		printPending(stdio.Out, pending)
	}
	return 0
}

// callReports is the common part of `smtpkit tlsrpt` and `smtpkit dmarc`:
// the flags (-config, -json, -send), and the control call (op, or sendOp
// with -send) to the running server. With -json it prints the answer.
// code is the exit status when the command is done (an error, -h), else
// -1 and data is the answer to print.
func callReports(args []string, stdio Stdio, name, usage, op, sendOp string) (data []byte, send, jsonOut bool, code int) {
	fs := flag.NewFlagSet("smtpkit "+name, flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	fs.Usage = func() { fmt.Fprint(stdio.Err, usage) }
	configPath := fs.String("config", "", "config file (default "+DefaultConfigPath+", or the built-in development default)")
	fs.BoolVar(&jsonOut, "json", false, "print JSON")
	fs.BoolVar(&send, "send", false, "send the reports now")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, false, false, 0
		}
		return nil, false, false, 2
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return nil, false, false, 2
	}
	cfg, _, err := resolveConfig(*configPath, stdio.Err)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit %s: %v\n", name, err)
		return nil, false, false, 1
	}
	req := control.Request{Op: op}
	if send {
		req.Op = sendOp
	}
	resp, err := control.Call(controlSocket(cfg.DataDir), req)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit %s: %v\n", name, err)
		return nil, false, false, 1
	}
	if !resp.OK {
		fmt.Fprintf(stdio.Err, "smtpkit %s: %s\n", name, resp.Error)
		return nil, false, false, 1
	}
	if jsonOut {
		fmt.Fprintf(stdio.Out, "%s\n", resp.Data)
	}
	return resp.Data, send, jsonOut, -1
}

// printPending prints one line per domain-day and one per failure detail.
func printPending(w io.Writer, pending []tlsrpt.Pending) {
	if len(pending) == 0 {
		fmt.Fprintln(w, "no sessions counted since the last report")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tFROM\tTO\tPOLICY\tOK\tFAILED")
	for _, p := range pending {
		for _, pr := range p.Policies {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", p.Domain, p.Start.UTC().Format(time.RFC3339),
				p.End.UTC().Format(time.RFC3339), pr.Policy.Type, pr.Summary.Successful, pr.Summary.Failed)
			for _, d := range pr.FailureDetails {
				where := strings.TrimSpace(d.ReceivingMXHostname + " " + d.ReceivingIP)
				fmt.Fprintf(tw, "  %s\t%s\t\t\t\t%d\n", d.ResultType, where, d.FailedSessionCount)
			}
		}
	}
	tw.Flush()
}

// printSent prints what became of each domain-day's report.
func printSent(w io.Writer, sent []tlsrpt.Sent) {
	if len(sent) == 0 {
		fmt.Fprintln(w, "nothing to report")
		return
	}
	for _, s := range sent {
		head := fmt.Sprintf("%s %s..%s (%d ok, %d failed):", s.Domain, s.Start.UTC().Format(time.RFC3339),
			s.End.UTC().Format(time.RFC3339), s.Successful, s.Failed)
		printOutcome(w, head, s.Skipped, s.To, s.Errors, s.Kept)
	}
}

// reports is the daemon's TLS-RPT side ([tlsrpt] enabled): the counters
// delivery records into and the reporter that sends them.
type reports struct {
	store    *tlsrpt.Store
	reporter *tlsrpt.Reporter
	interval time.Duration
}

// openReports opens the counters in <data_dir>/tlsrpt; nil when [tlsrpt]
// is disabled. The reporter is added by wire once outbound is built.
func openReports(cfg config.Config, log *slog.Logger) (*reports, error) {
	if !cfg.TLSRPT.Enabled {
		return nil, nil
	}
	store, err := tlsrpt.NewStore(tlsrpt.StoreOptions{Dir: filepath.Join(cfg.DataDir, "tlsrpt"), Logger: log})
	if err != nil {
		return nil, err
	}
	return &reports{store: store, interval: cfg.TLSRPT.Interval.D()}, nil
}

// wire adds the reporter: it looks up rua records and https hosts through
// outbound's resolver, trusts outbound's roots, and hands report mails
// to mail (daemon.mailReport).
func (r *reports) wire(cfg config.Config, rt routing, mail tlsrpt.MailFunc, log *slog.Logger) {
	if r == nil {
		return
	}
	r.reporter = tlsrpt.NewReporter(tlsrpt.ReporterOptions{
		Store: r.store, Resolver: rt.resolver, Mail: mail,
		From: cfg.TLSRPTFrom(), Submitter: cfg.TLSRPTSubmitter(), Contact: cfg.TLSRPT.Contact,
		Roots: rt.roots, AllowLoopback: cfg.Outbound.AllowLoopback, Logger: log,
	})
}

// recorder is what delivery counts into (nil when disabled).
func (r *reports) recorder() tlsrpt.Recorder {
	if r == nil {
		return nil
	}
	return r.store
}

// run sends the reports every interval until ctx is done.
func (r *reports) run(ctx context.Context) {
	if r != nil {
		r.reporter.Run(ctx, r.interval)
	}
}

// close writes the counters a last time.
func (r *reports) close(log *slog.Logger) {
	if r == nil {
		return
	}
	if err := r.store.Close(); err != nil {
		log.Error("tlsrpt: writing the counters at shutdown", "err", err)
	}
}

// controlHandler answers the tlsrpt operations and hands the rest to next
// (the queue's).
type tlsrptControl struct {
	next    control.Handler
	reports *reports
	log     *slog.Logger
}

func (h tlsrptControl) Handle(ctx context.Context, req control.Request) (any, error) {
	if req.Op != opTLSRPT && req.Op != opTLSRPTSend {
		return h.next.Handle(ctx, req)
	}
	if h.reports == nil {
		return nil, errors.New("TLS reporting is off ([tlsrpt] enabled = false)")
	}
	if req.Op == opTLSRPT {
		return h.reports.store.Snapshot(), nil
	}
	h.log.Info("tlsrpt control", "op", req.Op)
	sent := h.reports.reporter.Send(ctx, true)
	if sent == nil {
		sent = []tlsrpt.Sent{}
	}
	return sent, nil
}
