// Package cli implements the smtpkit subcommands: one file per subcommand,
// each owning its flags, config loading, wiring and exit codes.
package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// Stdio is the standard streams a subcommand uses; tests pass buffers.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// command is one subcommand: its one-line summary and its entry point,
// which returns the process exit code.
type command struct {
	summary string
	run     func(args []string, io Stdio) int
}

// commands is the subcommand table. Each entry's run function lives in the
// file named after it (serve.go, user.go, ...).
func commands() map[string]command {
	return map[string]command{
		"version":    {"print the version", runVersion},
		"serve":      {"run the mail server", runServe},
		"user":       {"manage accounts and aliases", runUser},
		"config":     {"check or print configuration", runConfig},
		"queue":      {"inspect and control the outbound queue", runQueue},
		"tlsrpt":     {"TLS-RPT counters; send the reports now (-send)", runTLSRPT},
		"dmarc":      {"DMARC aggregate report rows; send the reports now (-send)", runDMARC},
		"probe":      {"test a server's ports, STARTTLS and certificate", runProbe},
		"bench":      {"load-test an SMTP server", runBench},
		"send":       {"compose and send a message over SMTP", runSend},
		"tlsa":       {"print the TLSA record (DANE) to publish for a certificate", runTLSA},
		"quickstart": {"set up a domain: config, DKIM keys, first account, DNS records", runQuickstart},
		"dkim":       {"make a DKIM signing key (keygen); check its DNS record (check)", runDKIM},
		"sendmail":   {"the /usr/sbin/sendmail interface", runSendmail},
	}
}

// DefaultConfigPath is where subcommands look for the config file when
// -config is not given. When it does not exist, the built-in development
// default is used.
const DefaultConfigPath = "/etc/smtpkit/smtpkit.toml"

// Main runs the subcommand named by args[0] and returns the exit code.
func Main(args []string, stdio Stdio) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdio.Err, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stdio.Err, "smtpkit: unknown command %q\n\n", args[0])
		usage(stdio.Err, cmds)
		return 2
	}
	return c.run(args[1:], stdio)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: smtpkit COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'smtpkit COMMAND -h' for the flags of one command.")
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
