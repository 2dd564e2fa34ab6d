package cli

// greylist.go: greylisting on mx ([greylist]).

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"smtpkit/internal/config"
	"smtpkit/internal/greylist"
	"smtpkit/internal/inbound"
	"smtpkit/internal/metrics"
)

// openGreylist opens the greylist of cfg in <data_dir>/greylist, or
// returns nil when [greylist] is off.
func openGreylist(cfg config.Config, log *slog.Logger) (*greylist.List, error) {
	g := cfg.Greylist
	if !g.Enabled {
		return nil, nil
	}
	l, err := greylist.Open(greylist.Options{
		Dir:         filepath.Join(cfg.DataDir, "greylist"),
		Delay:       g.Delay.D(),
		RetryWindow: g.RetryWindow.D(),
		Expire:      g.Expire.D(),
		MaxEntries:  g.MaxEntries,
		Logger:      log,
	})
	if err != nil {
		return nil, err
	}
	log.Info("greylisting mail on mx", "delay", g.Delay.String(), "retry_window", g.RetryWindow.String(),
		"expire", g.Expire.String(), "triplets", l.Len(), "max_entries", g.MaxEntries)
	return l, nil
}

// wireGreylist hands l to the inbound backend and its size to the
// metrics (a nil l leaves both without a greylist: a nil pointer must not
// become a non-nil interface).
func wireGreylist(l *greylist.List, in *inbound.Options, m *metrics.Metrics) {
	if l != nil {
		in.Greylist = l
		m.WatchGreylist(l.Len)
	}
}

// closeGreylist writes the greylist a last time.
func closeGreylist(l *greylist.List, log *slog.Logger) {
	if l == nil {
		return
	}
	if err := l.Close(); err != nil {
		log.Error("greylist: writing the state at shutdown failed", "err", err)
	}
}

// printGreylist adds [greylist] to `smtpkit config check`'s summary when
// it is on.
func printGreylist(w io.Writer, cfg config.Config) {
	g := cfg.Greylist
	if !g.Enabled {
		return
	}
	fmt.Fprintf(w, "greylist\tdelay %s, retry window %s, expire %s, at most %d triplets in %s\n",
		g.Delay, g.RetryWindow, g.Expire, g.MaxEntries, filepath.Join(cfg.DataDir, "greylist"))
}
