// bench.go: `smtpkit bench` — a load generator for SMTP servers
// (internal/loadgen), used by bench/run.sh and described in
// docs/performance.md.
package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"smtpkit/internal/loadgen"
	"smtpkit/internal/tlspolicy"
)

const benchUsage = `usage: smtpkit bench --server HOST:PORT [flags]

Load-test an SMTP server: --concurrency sessions at once send --messages
messages (or for --duration) of --size octets, --per-connection to a session.
Prints messages/s, sessions/s, failures by reply code and latency percentiles
(per message: MAIL to the reply after "."; per session: connect to QUIT).

With --idle N it instead opens N sessions, says EHLO on each, prints
"holding N connections" and keeps them open for --hold, to measure what idle
clients cost the server.

Exit status: 0 all messages accepted, 1 some failed, 2 usage error.

Flags:
`

// benchFlags are the parsed command line of `smtpkit bench`.
type benchFlags struct {
	server, tlsMode, authUser, passwordFile string
	from, to, ehlo, caFile                  string
	concurrency, messages, size, perConn    int
	idle                                    int
	duration, hold                          time.Duration
	insecure, json                          bool
}

func newBenchFlagSet(f *benchFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.server, "server", "", "server to load, HOST:PORT (required)")
	fs.StringVar(&f.tlsMode, "tls", "none", "none, starttls or implicit")
	fs.StringVar(&f.authUser, "auth-user", "", "authenticate each session with AUTH PLAIN as this user")
	fs.StringVar(&f.passwordFile, "password-file", "", "file whose first line is the --auth-user password")
	fs.StringVar(&f.from, "from", "bench@localhost", "envelope sender")
	fs.StringVar(&f.to, "to", "", "envelope recipient(s), comma-separated (required unless --idle)")
	fs.StringVar(&f.ehlo, "ehlo", "localhost", "name to say in EHLO")
	fs.IntVar(&f.concurrency, "concurrency", 1, "sessions at once")
	fs.IntVar(&f.messages, "messages", 0, "messages to send in all (default 1000 unless --duration)")
	fs.DurationVar(&f.duration, "duration", 0, "send for this long instead of a count")
	fs.IntVar(&f.size, "size", 1024, "message size in octets, headers included")
	fs.IntVar(&f.perConn, "per-connection", 0, "messages per session before QUIT; 1 = one per connection, 0 = no limit")
	fs.BoolVar(&f.insecure, "insecure", false, "do not verify the server's certificate")
	fs.StringVar(&f.caFile, "ca", "", "PEM file of trusted root certificates")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON")
	fs.IntVar(&f.idle, "idle", 0, "open this many sessions, EHLO each, hold them open (no mail)")
	fs.DurationVar(&f.hold, "hold", 10*time.Second, "with --idle: how long to hold the connections")
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	return fs
}

func parseBenchFlags(args []string, stderr io.Writer) (benchFlags, error) {
	var f benchFlags
	fs := newBenchFlagSet(&f, stderr)
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	switch {
	case fs.NArg() > 0:
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case f.server == "":
		return f, errors.New("--server is required")
	case f.idle < 0 || f.concurrency < 1 || f.messages < 0 || f.size < 0 || f.perConn < 0 || f.duration < 0 || f.hold < 0:
		return f, errors.New("counts, sizes and durations must not be negative, --concurrency at least 1")
	case f.idle == 0 && f.to == "":
		return f, errors.New("--to is required")
	case f.messages > 0 && f.duration > 0:
		return f, errors.New("--messages and --duration exclude each other")
	case f.authUser != "" && f.passwordFile == "":
		return f, errors.New("--auth-user needs --password-file")
	}
	if _, _, err := net.SplitHostPort(f.server); err != nil {
		return f, fmt.Errorf("--server: %v", err)
	}
	if f.messages == 0 && f.duration == 0 {
		f.messages = 1000
	}
	return f, nil
}

// options turns the flags into loadgen options.
func (f benchFlags) options() (loadgen.Options, error) {
	mode, err := tlspolicy.ParseMode(f.tlsMode)
	if err == nil && mode == tlspolicy.ModeAuto {
		err = errors.New("auto needs a policy, and a load run has none")
	}
	if err != nil {
		return loadgen.Options{}, fmt.Errorf("--tls: %w (want none, starttls or implicit)", err)
	}
	o := loadgen.Options{Addr: f.server, TLS: mode, AuthUser: f.authUser, From: f.from,
		Concurrency: f.concurrency, Messages: f.messages, Duration: f.duration, Size: f.size,
		PerConnection: f.perConn, LocalName: f.ehlo}
	for _, t := range strings.Split(f.to, ",") {
		if t = strings.TrimSpace(t); t != "" {
			o.To = append(o.To, t)
		}
	}
	if f.passwordFile != "" {
		pw, err := readFirstLine(f.passwordFile)
		if err != nil {
			return o, fmt.Errorf("--password-file: %w", err)
		}
		o.Password = pw
	}
	if mode != tlspolicy.ModeNone {
		host, _, _ := net.SplitHostPort(f.server)
		o.TLSConfig = &tls.Config{ServerName: host, InsecureSkipVerify: f.insecure}
		if f.caFile != "" {
			pem, err := os.ReadFile(f.caFile)
			if err != nil {
				return o, fmt.Errorf("--ca: %w", err)
			}
			o.TLSConfig.RootCAs = x509.NewCertPool()
			if !o.TLSConfig.RootCAs.AppendCertsFromPEM(pem) {
				return o, fmt.Errorf("--ca %s: no PEM certificate found", f.caFile)
			}
		}
	}
	return o, nil
}

// readFirstLine returns the first line of a file, without its line end.
func readFirstLine(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	line, err := bufio.NewReader(fh).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// runBench is `smtpkit bench`.
func runBench(args []string, stdio Stdio) int {
	f, err := parseBenchFlags(args, stdio.Err)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit bench: %v\nRun 'smtpkit bench -h' for usage.\n", err)
		return 2
	}
	opts, err := f.options()
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f.idle > 0 {
		return benchIdle(ctx, f, opts, stdio)
	}
	if isTerminalWriter(stdio.Err) && !f.json {
		opts.Progress = func(p loadgen.Progress) {
			fmt.Fprintf(stdio.Err, "\r%s\x1b[K", loadgen.ProgressLine(p, 30))
		}
	}
	rep, err := loadgen.Run(ctx, opts)
	if opts.Progress != nil {
		fmt.Fprintln(stdio.Err)
	}
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit bench: %v\n", err)
		return 2
	}
	if err := writeReport(stdio.Out, f.json, rep, rep.WriteText); err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit bench: %v\n", err)
		return 1
	}
	if rep.Failed > 0 || rep.Sent == 0 {
		return 1
	}
	return 0
}

// benchIdle is `smtpkit bench --idle N`.
func benchIdle(ctx context.Context, f benchFlags, opts loadgen.Options, stdio Stdio) int {
	opts.Concurrency = max(opts.Concurrency, 50)
	rep, err := loadgen.Idle(ctx, opts, f.idle, f.hold, func(r loadgen.IdleReport) {
		fmt.Fprintf(stdio.Out, "holding %d connections (%d failed) for %s\n", r.Held, r.Failed, f.hold)
		if fl, ok := stdio.Out.(interface{ Sync() error }); ok {
			fl.Sync()
		}
	})
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit bench: %v\n", err)
		return 2
	}
	if err := writeReport(stdio.Out, f.json, rep, rep.WriteText); err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit bench: %v\n", err)
		return 1
	}
	if rep.Failed > 0 {
		return 1
	}
	return 0
}

// writeReport prints v as indented JSON, or with its text writer.
func writeReport(w io.Writer, asJSON bool, v any, text func(io.Writer) error) error {
	if !asJSON {
		return text(w)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
