package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"smtpkit/internal/config"
	"smtpkit/internal/inbound"
	"smtpkit/internal/milter"
)

// wireMilters turns [[milter]] and each listener's milters into
// in.Milters (by listener address, the server's listener name). Nothing
// connects here: each SMTP session opens its own milter connections.
// Messages larger than 64 KiB are held in <data_dir>/tmp while the
// milters see them.
func wireMilters(cfg config.Config, in *inbound.Options, log *slog.Logger) error {
	if len(cfg.Milters) == 0 {
		return nil
	}
	filters := map[string]*milter.Filter{}
	for i, m := range cfg.Milters {
		network, address, err := config.MilterAddress(m.Address)
		if err != nil {
			return fmt.Errorf("milter[%d].address: %w", i, err)
		}
		filters[m.Name] = milter.New(milter.Options{
			Name: m.Name, Network: network, Address: address, Timeout: m.Timeout.D(),
			Accept: m.DefaultAction == config.MilterAccept, Hostname: cfg.Hostname,
		})
		log.Info("milter", "milter", m.Name, "address", m.Address, "timeout", m.Timeout.String(), "default_action", m.DefaultAction)
	}
	in.Milters = map[string][]*milter.Filter{}
	for _, l := range cfg.Listeners {
		for _, name := range cfg.ListenerMilters(l) {
			in.Milters[l.Address] = append(in.Milters[l.Address], filters[name])
		}
	}
	tmp := filepath.Join(cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return fmt.Errorf("milter: %w", err)
	}
	in.HoldDir = tmp
	return nil
}

// printMilters is the [[milter]] part of `smtpkit config check`: each
// milter with its address, timeout, default action and the listeners it
// applies to.
func printMilters(w io.Writer, cfg config.Config) {
	for _, m := range cfg.Milters {
		var on []string
		for _, l := range cfg.Listeners {
			if slices.Contains(cfg.ListenerMilters(l), m.Name) {
				on = append(on, l.Address)
			}
		}
		where := "no listener"
		if len(on) > 0 {
			where = strings.Join(on, ", ")
		}
		fmt.Fprintf(w, "milter\t%s at %s (timeout %s, %s when down) on %s\n", m.Name, m.Address, m.Timeout, m.DefaultAction, where)
	}
}
