package cli

// queue.go: `smtpkit queue list|show|flush|retry|hold|release|delete` —
// inspect and control the outbound queue of the running server through
// its control socket (<data_dir>/control.sock, internal/control), and
// serveControl, which `smtpkit serve` runs to answer it.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"smtpkit/internal/control"
	"smtpkit/internal/queue"
)

const queueUsage = `usage:
  smtpkit queue list    [-config FILE] [-json]      list queued messages and their recipients
  smtpkit queue show    [-config FILE] [-json] ID   one message in detail, with its headers (no ID: list)
  smtpkit queue flush   [-config FILE]              retry every deferred recipient now
  smtpkit queue retry   [-config FILE] ID           retry one message now
  smtpkit queue hold    [-config FILE] ID           stop delivering (and bouncing) a message
  smtpkit queue release [-config FILE] ID           undo hold; the message is retried now
  smtpkit queue delete  [-config FILE] ID           remove a message without a bounce

The server must be running: the command talks to <data_dir>/control.sock.
Exit status: 0 done, 1 error, 2 bad usage.
`

// queueOps maps each subcommand to whether it takes a message id.
var queueOps = map[string]bool{
	control.OpList: false, control.OpShow: true, control.OpFlush: false,
	control.OpRetry: true, control.OpHold: true, control.OpRelease: true, control.OpDelete: true,
}

// controlSocket is the control socket of a data directory.
func controlSocket(dataDir string) string { return filepath.Join(dataDir, "control.sock") }

func runQueue(args []string, stdio Stdio) int {
	if len(args) == 0 {
		fmt.Fprint(stdio.Err, queueUsage)
		return 2
	}
	op := args[0]
	if op == "help" || op == "-h" || op == "--help" {
		fmt.Fprint(stdio.Out, queueUsage)
		return 0
	}
	needID, ok := queueOps[op]
	if !ok {
		fmt.Fprintf(stdio.Err, "smtpkit queue: unknown subcommand %q\n\n%s", op, queueUsage)
		return 2
	}
	fs := flag.NewFlagSet("smtpkit queue "+op, flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	fs.Usage = func() { fmt.Fprint(stdio.Err, queueUsage) }
	configPath := fs.String("config", "", "config file (default "+DefaultConfigPath+", or the built-in development default)")
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if op == control.OpShow && len(pos) == 0 {
		// `queue show` without an id lists the queue, with the ids to
		// show, rather than printing only the usage.
		fmt.Fprintln(stdio.Err, "smtpkit queue show: no message ID given; listing the queue (show one with: smtpkit queue show ID)")
		op, needID = control.OpList, false
	}
	if (needID && len(pos) != 1) || (!needID && len(pos) != 0) {
		fs.Usage()
		return 2
	}
	req := control.Request{Op: op}
	if needID {
		req.ID = pos[0]
	}
	cfg, _, err := resolveConfig(*configPath, stdio.Err)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit queue: %v\n", err)
		return 1
	}
	resp, err := control.Call(controlSocket(cfg.DataDir), req)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit queue: %v\n", err)
		return 1
	}
	if !resp.OK {
		fmt.Fprintf(stdio.Err, "smtpkit queue %s: %s\n", op, resp.Error)
		return 1
	}
	if err := printQueueResponse(stdio.Out, req, resp.Data, *jsonOut, time.Now()); err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit queue: %v\n", err)
		return 1
	}
	return 0
}

// printQueueResponse prints what the server answered: JSON as is, or a
// readable table.
func printQueueResponse(w io.Writer, req control.Request, data json.RawMessage, jsonOut bool, now time.Time) error {
	if jsonOut && len(data) > 0 {
		_, err := fmt.Fprintf(w, "%s\n", data)
		return err
	}
	switch req.Op {
	case control.OpList:
		var list []queue.Summary
		if err := json.Unmarshal(data, &list); err != nil {
			return fmt.Errorf("bad response: %w", err)
		}
		printQueueList(w, list, now)
	case control.OpShow:
		var d queue.Detail
		if err := json.Unmarshal(data, &d); err != nil {
			return fmt.Errorf("bad response: %w", err)
		}
		printQueueDetail(w, d, now)
	case control.OpFlush:
		fmt.Fprintln(w, "flushed: every deferred recipient is due now")
	default:
		done := map[string]string{control.OpRetry: "due now", control.OpHold: "held",
			control.OpRelease: "released, due now", control.OpDelete: "deleted"}
		fmt.Fprintf(w, "%s: %s\n", req.ID, done[req.Op])
	}
	return nil
}

// printQueueList prints one line per message and one indented line per
// recipient that is not delivered yet.
func printQueueList(w io.Writer, list []queue.Summary, now time.Time) {
	if len(list) == 0 {
		fmt.Fprintln(w, "queue is empty")
		return
	}
	fmt.Fprintf(w, "%-24s  %6s  %6s  %s\n", "ID", "AGE", "SIZE", "FROM")
	pending := 0
	for _, s := range list {
		from := s.From
		if from == "" {
			from = "<>"
		}
		held := ""
		if s.Held {
			held = "  (held)"
		}
		fmt.Fprintf(w, "%-24s  %6s  %6s  %s%s\n", s.ID, shortDuration(now.Sub(s.Arrival)), byteSize(s.Size), from, held)
		for _, r := range s.Recipients {
			if r.State == queue.Delivered {
				continue
			}
			pending++
			fmt.Fprintf(w, "    %s  %s\n", r.Addr, rcptLine(r, now))
		}
	}
	fmt.Fprintf(w, "%d message(s), %d recipient(s) not delivered\n", len(list), pending)
}

// rcptLine describes a recipient's state: when it is tried next and what
// the last attempt got.
func rcptLine(r queue.RcptStatus, now time.Time) string {
	parts := []string{string(r.State)}
	switch {
	case r.InFlight:
		parts = append(parts, "delivering now")
	case r.State == queue.Queued || r.State == queue.Deferred:
		if d := r.NextAttempt.Sub(now); d > 0 {
			parts = append(parts, "next in "+shortDuration(d))
		} else {
			parts = append(parts, "due now")
		}
	}
	if r.Attempts > 0 {
		parts = append(parts, fmt.Sprintf("%d attempt(s)", r.Attempts))
	}
	if r.LastReply != "" {
		parts = append(parts, "last: "+r.LastReply)
	}
	return strings.Join(parts, ", ")
}

func printQueueDetail(w io.Writer, d queue.Detail, now time.Time) {
	from := d.From
	if from == "" {
		from = "<> (a bounce)"
	}
	fmt.Fprintf(w, "ID:        %s\n", d.ID)
	fmt.Fprintf(w, "From:      %s\n", from)
	fmt.Fprintf(w, "Arrived:   %s (%s ago)\n", d.Arrival.Format(time.RFC3339), shortDuration(now.Sub(d.Arrival)))
	fmt.Fprintf(w, "Expires:   %s\n", d.Expires.Format(time.RFC3339))
	fmt.Fprintf(w, "Size:      %s (%d bytes)\n", byteSize(d.Size), d.Size)
	if d.Meta.AuthUser != "" || d.Meta.ReceivedFrom != "" {
		fmt.Fprintf(w, "Submitted: by %q from %s\n", d.Meta.AuthUser, d.Meta.ReceivedFrom)
	}
	if d.Meta.Relay != "" {
		fmt.Fprintf(w, "Relay:     %s\n", d.Meta.Relay)
	}
	var flags []string
	for name, on := range map[string]bool{"held": d.Held, "SMTPUTF8": d.Meta.SMTPUTF8, "8BITMIME": d.Meta.EightBit, "BINARYMIME": d.Meta.Binary, "REQUIRETLS": d.Meta.RequireTLS, "delay warning sent": d.Warned} {
		if on {
			flags = append(flags, name)
		}
	}
	if len(flags) > 0 {
		slices.Sort(flags)
		fmt.Fprintf(w, "Flags:     %s\n", strings.Join(flags, ", "))
	}
	fmt.Fprintln(w, "Recipients:")
	for _, r := range d.Recipients {
		fmt.Fprintf(w, "    %s  %s\n", r.Addr, rcptLine(r, now))
	}
	fmt.Fprintln(w, "Headers:")
	for _, line := range strings.Split(strings.TrimRight(d.Headers, "\r\n"), "\n") {
		fmt.Fprintf(w, "    %s\n", strings.TrimRight(line, "\r"))
	}
}

// shortDuration formats d coarsely: 45s, 12m, 3h5m, 2d4h.
func shortDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// byteSize formats n as 512B, 1.2K, 3.4M.
func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%dB", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
}

// queueHandler adapts the queue to control.Handler.
type queueHandler struct {
	q   queue.Backend
	log *slog.Logger
}

func (h queueHandler) Handle(ctx context.Context, req control.Request) (any, error) {
	if needID, ok := queueOps[req.Op]; !ok {
		return nil, fmt.Errorf("unknown operation %q", req.Op)
	} else if needID && req.ID == "" {
		return nil, fmt.Errorf("%s needs a message id", req.Op)
	}
	if req.Op != control.OpList && req.Op != control.OpShow {
		h.log.Info("queue control", "op", req.Op, "msgid", req.ID)
	}
	switch req.Op {
	case control.OpList:
		return h.q.List(ctx)
	case control.OpShow:
		return h.q.Show(ctx, req.ID)
	case control.OpFlush:
		return nil, h.q.Flush(ctx)
	case control.OpRetry:
		return nil, h.q.Retry(ctx, req.ID)
	case control.OpHold:
		return nil, h.q.Hold(ctx, req.ID)
	case control.OpRelease:
		return nil, h.q.Release(ctx, req.ID)
	}
	return nil, h.q.Delete(ctx, req.ID)
}
