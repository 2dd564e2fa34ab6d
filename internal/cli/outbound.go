package cli

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"

	"smtpkit/internal/config"
	"smtpkit/internal/delivery"
	"smtpkit/internal/inbound"
	"smtpkit/internal/metrics"
	"smtpkit/internal/queue"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// outbound is the wired outbound side: the queue and its remote courier.
type outbound struct {
	queue  *queue.Queue
	remote *delivery.Remote
}

// wireOutbound opens the queue in <data_dir>/queue with the remote courier
// (DNS → route → TLS policy → client). Bounces for local senders go
// straight into their Maildir through local; others are queued.
func wireOutbound(cfg config.Config, local *inbound.Backend, m *metrics.Metrics, log *slog.Logger) (*outbound, error) {
	rt, err := newRouting(cfg)
	if err != nil {
		return nil, err
	}
	remote := delivery.NewRemote(delivery.RemoteOptions{
		Router: rt.router, Policy: rt.policy, LocalName: cfg.Hostname, Roots: rt.roots, Logger: log,
	})
	o := &outbound{remote: remote}
	q, err := queue.Open(queue.Options{
		Dir:     filepath.Join(cfg.DataDir, "queue"),
		Courier: m.Courier(remote), // counted for the metrics
		// Local recipients whose Maildir delivery failed on receipt
		// (queue.Writer.AddLocal).
		Local:        delivery.NewLocal(local),
		Bounce:       o.bounce(local),
		RetryMin:     cfg.Outbound.RetryMin.D(),
		RetryMax:     cfg.Outbound.RetryMax.D(),
		MaxAge:       cfg.Outbound.MaxAge.D(),
		DelayWarning: cfg.Outbound.DelayWarning.D(),
		PerDomain:    cfg.Outbound.Concurrency,
		Hostname:     cfg.Hostname,
		Logger:       log,
	})
	if err != nil {
		return nil, err
	}
	o.queue = q
	return o, nil
}

// bounce delivers a DSN: into the sender's Maildir when the sender is
// local, otherwise back into the queue for remote delivery.
func (o *outbound) bounce(local *inbound.Backend) func(context.Context, queue.Bounce) error {
	return func(ctx context.Context, b queue.Bounce) error {
		at := strings.LastIndexByte(b.To, '@')
		if at > 0 && local.IsLocal(b.To[at+1:]) {
			rcpt := smtp.Address{Local: b.To[:at], Domain: b.To[at+1:]}
			return local.DeliverMessage(ctx, "bounce-"+b.ID, smtp.Address{}, rcpt, b.Message)
		}
		return o.queue.EnqueueBounce(ctx, b)
	}
}

// relay adapts the queue to inbound.Relay: remote recipients of an accepted
// message become one queue entry.
type relay struct{ q *queue.Queue }

func (r *relay) Begin(_ context.Context, env *server.Envelope, rcpts []smtp.Address) (inbound.RelayWriter, error) {
	meta := queue.Meta{SMTPUTF8: env.SMTPUTF8, EightBit: env.Body == "8BITMIME", AuthUser: env.Session.AuthUser}
	if env.Session.Remote != nil {
		meta.ReceivedFrom = env.Session.Remote.String()
	}
	w, err := r.q.Begin(queue.Envelope{From: env.From, To: rcpts, Meta: meta})
	if err != nil {
		return nil, smtp.Wrap(smtp.R(smtp.CodeInsufficientSpace, smtp.EnhSystemFull.Temp(), "Queue unavailable, try again later"), err)
	}
	return w, nil
}
