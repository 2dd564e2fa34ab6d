package cli

// reportmail.go: report mails (TLS-RPT, DMARC aggregate) into the queue.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// mailReport is the MailFunc of the daemon's reporters (tlsrpt.MailFunc,
// dmarcrpt.MailFunc): the report mail goes into the queue as a new
// message from the reverse-path from, signed with our DKIM key; recipients
// in a local domain get it in their mailboxes instead.
func (d *daemon) mailReport(ctx context.Context, from string, to []string, msg []byte) error {
	sender, err := smtp.ParseAddress(from)
	if err != nil {
		return fmt.Errorf("report from %q: %w", from, err)
	}
	var local, remote []smtp.Address
	var bad []error
	for _, s := range to {
		a, err := smtp.ParseAddress(s)
		if err != nil {
			bad = append(bad, fmt.Errorf("rua address %q: %w", s, err)) // the others still get the report
			continue
		}
		if d.local.IsLocal(a.Domain) {
			local = append(local, a)
		} else {
			remote = append(remote, a)
		}
	}
	if len(local) > 0 {
		dest, err := d.local.Resolve(local)
		if err != nil {
			return err
		}
		remote = append(remote, dest.Remote...)
		if len(dest.Mailboxes) > 0 {
			if err := d.local.Deliver(ctx, "report", sender, dest.Mailboxes, bytes.NewReader(msg)); err != nil {
				return err
			}
		}
	}
	if len(local)+len(remote) == 0 {
		return errors.Join(bad...)
	}
	if len(remote) == 0 {
		return nil
	}
	w, err := d.out.queue.Begin(queue.Envelope{From: sender, To: remote})
	if err != nil {
		return err
	}
	defer w.Abort()
	// Signed once, as it is queued, when its From domain has a key.
	fields, err := d.out.signer.Sign(msg)
	if err == nil {
		err = w.Prepend(fields)
	}
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	_, err = w.Commit()
	return err
}

// printOutcome writes what became of one report, after head, as
// `smtpkit tlsrpt -send` and `smtpkit dmarc -send` print it: where it
// went or why not, the destinations that failed, and whether its counts
// were kept for the next send.
func printOutcome(w io.Writer, head, skipped string, to, errs []string, kept bool) {
	switch {
	case skipped != "":
		fmt.Fprintf(w, "%s not sent: %s\n", head, skipped)
	case len(to) > 0:
		fmt.Fprintf(w, "%s sent to %s\n", head, strings.Join(to, ", "))
	default:
		fmt.Fprintf(w, "%s not sent\n", head)
	}
	for _, e := range errs {
		fmt.Fprintf(w, "    error: %s\n", e)
	}
	if kept {
		fmt.Fprintln(w, "    kept for the next send")
	}
}
