package cli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"smtpkit/internal/config"
	"smtpkit/internal/probe"
	"smtpkit/internal/smtp"
	"smtpkit/internal/tlspolicy"
)

const probeUsage = `usage: smtpkit probe [flags] DOMAIN|HOST:PORT|ADDRESS...

Test SMTP servers: connect, banner, EHLO, STARTTLS (or implicit TLS on 465),
the certificate, EHLO after TLS and the AUTH mechanisms before and after TLS.
Sends no mail and no credentials.

A DOMAIN (a name without a port) is probed where the queue would deliver its
mail: its static route, or else its MX hosts, every address of each, on the
port delivery uses, each with the TLS plan delivery would follow. Routes,
resolver, outbound.tls, outbound.port and outbound.ca_file come from the
configuration (-config). HOST:PORT probes that port; an IP ADDRESS (or
[IPv6]) without a port, or any name with --host, is probed on 25, 587, 465
and 2525 in parallel.

A DOMAIN also gets its DNS side (MX and address DNSSEC status, MTA-STS and
TLS-RPT records) and one verdict per next hop: the plan the queue would use
and whether delivery would go through.

--smuggling --rcpt postmaster@YOURDOMAIN HOST:PORT is an opt-in self-test
for your own server, instead of the probe: it sends the known SMTP smuggling
end-of-data sequences, each on its own connection inside one test message
to --rcpt (at most one message per sequence, none if the server refuses
bare CR and LF, as smtpkit does), and a STARTTLS command injection, and
says whether the server is vulnerable. Only run it against servers you run.

Exit status (the highest that applies):
  0  every port reachable, no failure, requirements met
  1  a port unreachable, or a protocol or TLS handshake failure
  2  usage error
  3  --require-tls: a reachable port did not do TLS
  4  --require-valid-cert: a reachable port had no valid certificate
  5  a DOMAIN's next hop where TLS the domain enforces (DANE, MTA-STS
     enforce) would fail: delivery there would defer
  6  --smuggling: a port is vulnerable

Flags:
`

// probeFlags are the parsed command line of `smtpkit probe`.
type probeFlags struct {
	starttls, implicit, noTLS    bool
	serverName, caFile, ehlo     string
	timeout                      time.Duration
	requireTLS, requireValidCert bool
	json, verbose, noColor       bool
	hostOnly                     bool      // --host: names are hosts, not mail domains
	configPath                   string    // -config, for domain targets
	notes                        io.Writer // stderr, for the note about the development default
	smuggling                    bool      // --smuggling: the self-test instead of the probe
	rcpt                         string    // --rcpt, the self-test's recipient
	targets                      []string
}

func newProbeFlagSet(f *probeFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&f.starttls, "starttls", false, "use STARTTLS on every port (even 465)")
	fs.BoolVar(&f.implicit, "implicit-tls", false, "speak TLS from the first byte on every port")
	fs.BoolVar(&f.noTLS, "no-tls", false, "do not try TLS")
	fs.StringVar(&f.serverName, "servername", "", "name the certificate must match, sent as SNI (default: HOST)")
	fs.StringVar(&f.caFile, "ca", "", "PEM file of trusted root certificates (default: the system roots)")
	fs.DurationVar(&f.timeout, "timeout", probe.DefaultTimeout, "time limit per port")
	fs.StringVar(&f.ehlo, "ehlo", "", "name to say in EHLO (default: this host's name, or smtpkit-probe)")
	fs.BoolVar(&f.requireTLS, "require-tls", false, "exit 3 unless every reachable port did TLS")
	fs.BoolVar(&f.requireValidCert, "require-valid-cert", false, "exit 4 unless every reachable port has a certificate valid for the name")
	fs.BoolVar(&f.json, "json", false, "print JSON (field names in docs/probe.md)")
	fs.BoolVar(&f.verbose, "v", false, "show the whole conversation (C: client, S: server)")
	fs.BoolVar(&f.noColor, "no-color", false, "no colors, even on a terminal")
	fs.BoolVar(&f.hostOnly, "host", false, "a name without a port is a host, probed on 25, 587, 465 and 2525, not a mail domain")
	fs.StringVar(&f.configPath, "config", "", "config file for a DOMAIN's routes (default "+config.DefaultPath+" if it exists, else the development default)")
	fs.BoolVar(&f.smuggling, "smuggling", false, "self-test your own server for SMTP smuggling and STARTTLS injection (needs --rcpt and HOST:PORT)")
	fs.StringVar(&f.rcpt, "rcpt", "", "--smuggling: the recipient of the test messages, e.g. postmaster@your.domain")
	fs.Usage = func() {
		fmt.Fprint(stderr, probeUsage)
		fs.PrintDefaults()
	}
	return fs
}

// parseProbeFlags parses flags and targets in any order ("HOST --json"
// works as well as "--json HOST").
func parseProbeFlags(args []string, stderr io.Writer) (probeFlags, error) {
	var f probeFlags
	fs := newProbeFlagSet(&f, stderr)
	for {
		if err := fs.Parse(args); err != nil {
			return f, err
		}
		if fs.NArg() == 0 {
			break
		}
		f.targets = append(f.targets, fs.Arg(0))
		args = fs.Args()[1:]
	}
	modes := 0
	for _, on := range []bool{f.starttls, f.implicit, f.noTLS} {
		if on {
			modes++
		}
	}
	switch {
	case modes > 1:
		return f, errors.New("--starttls, --implicit-tls and --no-tls exclude each other")
	case f.noTLS && (f.requireTLS || f.requireValidCert):
		return f, errors.New("--no-tls cannot meet --require-tls or --require-valid-cert")
	case f.timeout <= 0:
		return f, errors.New("--timeout must be positive")
	case len(f.targets) == 0:
		return f, errors.New("no HOST given (want a DOMAIN, HOST:PORT or ADDRESS)")
	case f.rcpt != "" && !f.smuggling:
		return f, errors.New("--rcpt is for --smuggling")
	case f.smuggling:
		return f, f.checkSmuggling()
	}
	return f, nil
}

// checkSmuggling checks the self-test's command line: a recipient, one
// port per target, no requirements (the test has its own verdict).
func (f probeFlags) checkSmuggling() error {
	if f.rcpt == "" {
		return errors.New("--smuggling needs --rcpt (e.g. postmaster@your.domain): the test messages go there")
	}
	if a, err := smtp.ParseAddress(f.rcpt); err != nil || a.IsNull() {
		return fmt.Errorf("--rcpt %q: not a mailbox", f.rcpt)
	}
	if f.requireTLS || f.requireValidCert {
		return errors.New("--smuggling has its own verdict: no --require-tls or --require-valid-cert")
	}
	for _, s := range f.targets {
		t, err := probe.ParseTarget(s)
		if err != nil {
			return err
		}
		if len(t.Ports) != 1 {
			return fmt.Errorf("--smuggling %q: give HOST:PORT, the port of your own server to test", s)
		}
	}
	return nil
}

// runProbe is `smtpkit probe`.
func runProbe(args []string, stdio Stdio) int {
	f, err := parseProbeFlags(args, stdio.Err)
	f.notes = stdio.Err
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit probe: %v\n", err)
		fmt.Fprintln(stdio.Err, "Run 'smtpkit probe -h' for usage.")
		return probe.ExitUsage
	}
	if f.smuggling {
		return f.runSmuggling(stdio)
	}
	opts, targets, err := f.options()
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit probe: %v\n", err)
		return probe.ExitUsage
	}
	rep := probe.Run(context.Background(), targets, opts)
	if f.json {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stdio.Err, "smtpkit probe: %v\n", err)
			return probe.ExitFailure
		}
	} else {
		color := !f.noColor && os.Getenv("NO_COLOR") == "" && isTerminalWriter(stdio.Out)
		if err := rep.WriteText(stdio.Out, probe.TextOptions{Color: color,
			RequireTLS: f.requireTLS, RequireValidCert: f.requireValidCert}); err != nil {
			fmt.Fprintf(stdio.Err, "smtpkit probe: %v\n", err)
			return probe.ExitFailure
		}
	}
	return rep.Exit(f.requireTLS, f.requireValidCert)
}

// runSmuggling is `smtpkit probe --smuggling`: the self-test on each
// HOST:PORT, one after the other.
func (f probeFlags) runSmuggling(stdio Stdio) int {
	f.hostOnly = true // targets are servers, not mail domains
	opts, targets, err := f.options()
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit probe: %v\n", err)
		return probe.ExitUsage
	}
	var reps []probe.SmuggleReport
	for _, t := range targets {
		reps = append(reps, probe.Smuggle(context.Background(), t.Host, t.Ports[0], f.rcpt, opts))
	}
	if f.json {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Smuggling []probe.SmuggleReport `json:"smuggling"`
		}{reps}); err != nil {
			fmt.Fprintf(stdio.Err, "smtpkit probe: %v\n", err)
			return probe.ExitFailure
		}
	} else {
		color := !f.noColor && os.Getenv("NO_COLOR") == "" && isTerminalWriter(stdio.Out)
		if err := probe.WriteSmuggleText(stdio.Out, reps, color); err != nil {
			fmt.Fprintf(stdio.Err, "smtpkit probe: %v\n", err)
			return probe.ExitFailure
		}
	}
	return probe.SmuggleExit(reps)
}

// options turns the flags into probe options and targets.
func (f probeFlags) options() (probe.Options, []probe.Target, error) {
	opts := probe.Options{
		ServerName:       f.serverName,
		Timeout:          f.timeout,
		EHLOName:         f.ehlo,
		RequireTLS:       f.requireTLS,
		RequireValidCert: f.requireValidCert,
		Transcript:       f.verbose,
	}
	switch {
	case f.starttls:
		opts.Mode = tlspolicy.ModeStartTLS
	case f.implicit:
		opts.Mode = tlspolicy.ModeImplicit
	case f.noTLS:
		opts.Mode = tlspolicy.ModeNone
	}
	if opts.EHLOName == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			opts.EHLOName = h
		}
	}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return opts, nil, fmt.Errorf("--ca: %w", err)
		}
		opts.Roots = x509.NewCertPool()
		if !opts.Roots.AppendCertsFromPEM(pem) {
			return opts, nil, fmt.Errorf("--ca %s: no PEM certificate found", f.caFile)
		}
	}
	var targets []probe.Target
	domains := false
	for _, s := range f.targets {
		parse := probe.ParseDestination
		if f.hostOnly {
			parse = probe.ParseTarget
		}
		t, err := parse(s)
		if err != nil {
			return opts, nil, err
		}
		domains = domains || t.Domain != ""
		targets = append(targets, t)
	}
	if domains {
		if err := f.route(&opts); err != nil {
			return opts, nil, err
		}
	}
	return opts, targets, nil
}

// route gives the options what domain targets need, built from the
// configuration exactly as the queue's courier is (newRouting): the
// router, the default policy, the roots (unless --ca) and the EHLO name
// (unless --ehlo).
func (f probeFlags) route(opts *probe.Options) error {
	cfg, source, err := resolveConfig(f.configPath, f.notes)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	rt, err := newRouting(cfg, "", nil)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	opts.Router, opts.Outbound, opts.Resolver = rt.router, rt.policy, rt.resolver
	if f.caFile == "" {
		opts.Roots = rt.roots
	}
	if f.ehlo == "" {
		opts.EHLOName = cfg.Hostname
	}
	return nil
}

// isTerminalWriter reports whether w is a terminal (an *os.File that is a
// character device).
func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}
