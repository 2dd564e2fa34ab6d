package cli

// send.go: `smtpkit send` — compose a message (internal/compose) or take
// one as is, and send it over SMTP with internal/submit, like swaks or
// msmtp: flags, the files of the message, the password, exit codes.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"smtpkit/internal/client"
	"smtpkit/internal/compose"
	"smtpkit/internal/submit"
)

const sendUsageText = `usage: smtpkit send --server HOST:PORT --from ADDR --to ADDR [flags]

Composes a message (or takes one with --data) and sends it over SMTP.

Exit codes: 0 accepted for every recipient; 1 a recipient, the sender or
the message was refused; 2 usage error or unreadable input; 3 connection,
TLS or protocol failure; 4 authentication failed.

flags:
`

// Exit codes of `smtpkit send` (docs/send.md).
const (
	sendExitOK      = 0
	sendExitRefused = 1
	sendExitUsage   = 2
	sendExitConnect = 3
	sendExitAuth    = 4
)

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// sendFlags are the command line of `smtpkit send`.
type sendFlags struct {
	server, from, subject, body, bodyFile, data string
	tlsMode, authUser, authMech, passwordFile   string
	ca, serverName, ehlo                        string
	to, cc, bcc, attach, header                 listFlag
	insecure, verbose, requireTLS, binary       bool
	timeout, greeting                           time.Duration
}

func parseSendFlags(args []string, stderr io.Writer) (sendFlags, error) {
	var f sendFlags
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sendUsageText); fs.PrintDefaults() }
	fs.StringVar(&f.server, "server", "", "SMTP server `host:port` (required)")
	fs.StringVar(&f.from, "from", "", "sender: `address` or \"Name <address>\" (required)")
	fs.Var(&f.to, "to", "recipient (repeatable; at least one of --to/--cc/--bcc)")
	fs.Var(&f.cc, "cc", "carbon-copy recipient (repeatable)")
	fs.Var(&f.bcc, "bcc", "blind recipient: envelope only, never in the header (repeatable)")
	fs.StringVar(&f.subject, "subject", "", "subject line")
	fs.StringVar(&f.body, "body", "", "body `text`")
	fs.StringVar(&f.bodyFile, "body-file", "", "read the body from `file`")
	fs.Var(&f.attach, "attach", "attach a `file` (repeatable)")
	fs.Var(&f.header, "header", "extra header field \"Name: value\" (repeatable)")
	fs.StringVar(&f.data, "data", "", "send the whole message from `file` (\"-\" = stdin) as is")
	fs.StringVar(&f.tlsMode, "tls", "", "none | opportunistic | starttls | implicit (default: implicit on port 465, else starttls)")
	fs.StringVar(&f.authUser, "auth-user", "", "authenticate as `user`")
	fs.StringVar(&f.authMech, "auth-mech", "", "plain | login | scram-sha-256 | scram-sha-256-plus (default: the best offered; -PLUS binds to the TLS channel)")
	fs.StringVar(&f.passwordFile, "password-file", "", "read the password from the first line of `file` (else $SMTPKIT_PASSWORD, else a prompt)")
	fs.StringVar(&f.ca, "ca", "", "trust the CA certificates in PEM `file` instead of the system roots")
	fs.BoolVar(&f.insecure, "insecure", false, "do not verify the server's certificate")
	fs.StringVar(&f.serverName, "servername", "", "`name` to verify the certificate against and send as SNI (default: the server host)")
	fs.StringVar(&f.ehlo, "ehlo", "", "`name` to say in EHLO (default: this host's name)")
	fs.BoolVar(&f.requireTLS, "require-tls", false, "send with REQUIRETLS (RFC 8689): only over verified TLS to a server that offers REQUIRETLS, asking every later hop for the same")
	fs.BoolVar(&f.binary, "binary", false, "send the --data message with BODY=BINARYMIME (RFC 3030), by BDAT, octet for octet; only to a server that offers BINARYMIME and CHUNKING")
	fs.BoolVar(&f.verbose, "v", false, "print the SMTP transcript on stderr (credentials hidden)")
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "limit for each step of the conversation")
	fs.DurationVar(&f.greeting, "greeting-timeout", submit.DefaultGreetingTimeout, "how long to wait for the greeting without TLS (then: is it implicit TLS?)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return f, f.check()
}

// check reports a command line that cannot work.
func (f *sendFlags) check() error {
	switch {
	case f.server == "":
		return errors.New("--server is required")
	case f.from == "":
		return errors.New("--from is required")
	case len(f.to)+len(f.cc)+len(f.bcc) == 0:
		return errors.New("at least one --to, --cc or --bcc is required")
	case f.body != "" && f.bodyFile != "":
		return errors.New("--body and --body-file exclude each other")
	case f.data != "" && (f.subject != "" || f.body != "" || f.bodyFile != "" || len(f.attach) > 0 || len(f.header) > 0):
		return errors.New("--data sends a message as is: it excludes --subject, --body, --body-file, --attach and --header")
	case f.timeout <= 0:
		return errors.New("--timeout must be positive")
	}
	if _, _, err := net.SplitHostPort(f.server); err != nil {
		return fmt.Errorf("--server %q: %v", f.server, err)
	}
	mode, err := submit.ParseTLSMode(f.tlsMode, f.server)
	if err != nil {
		return fmt.Errorf("--tls %q: %v", f.tlsMode, err)
	}
	f.tlsMode = string(mode)
	// RFC 8689 §2: a REQUIRETLS message travels only in a TLS session with
	// an authenticated server; the client refuses to send it elsewhere
	// (client.ErrNoRequireTLS), but a command line that can only end so
	// is refused here.
	if f.requireTLS {
		switch {
		case mode == submit.TLSNone || mode == submit.TLSOpportunistic:
			return fmt.Errorf("--require-tls needs TLS: --tls starttls or implicit, not %s", mode)
		case f.insecure:
			return errors.New("--require-tls needs a verified certificate: it excludes --insecure (use --ca for a private CA)")
		}
	}
	// RFC 3030 §3: only a whole message can be declared binary; one
	// composed from --body and --attach is MIME text.
	if f.binary && f.data == "" {
		return errors.New("--binary needs --data: only a message sent as is can be binary")
	}
	if f.authMech != "" {
		if _, err := submit.ParseMechanism(f.authMech); err != nil {
			return fmt.Errorf("--auth-mech %q: %v", f.authMech, err)
		}
	}
	return nil
}

func runSend(args []string, stdio Stdio) int {
	f, err := parseSendFlags(args, stdio.Err)
	if errors.Is(err, flag.ErrHelp) {
		return sendExitOK
	}
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit send: %v\n", err)
		return sendExitUsage
	}
	env, err := f.envelope()
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit send: %v\n", err)
		return sendExitUsage
	}
	m, err := f.readInputs(stdio)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit send: %v\n", err)
		return sendExitUsage
	}
	target, err := f.target(stdio)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit send: %v\n", err)
		return sendExitUsage
	}
	ctx := context.Background()
	c, err := submit.Open(ctx, target, stdio.Out)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit send: %v%s\n", err, sendHint(err, f))
		if errors.As(err, new(*submit.AuthError)) {
			return sendExitAuth
		}
		return sendExitConnect
	}
	defer c.Close()
	msg, err := f.message(m, c, target.EHLO)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit send: %v\n", err)
		return sendExitUsage
	}
	return sendExit(submit.Transact(ctx, c, env, msg, stdio.Out))
}

// envelope parses the sender and recipients; "Name <addr>" is allowed.
func (f *sendFlags) envelope() (client.Envelope, error) {
	from, err := mail.ParseAddress(f.from)
	if err != nil {
		return client.Envelope{}, fmt.Errorf("--from %q: %v", f.from, err)
	}
	env := client.Envelope{From: from.Address, RequireTLS: f.requireTLS, Binary: f.binary}
	for _, list := range []listFlag{f.to, f.cc, f.bcc} {
		addrs, err := parseAddrs(list)
		if err != nil {
			return env, err
		}
		for _, a := range addrs {
			env.To = append(env.To, a.Address)
		}
	}
	return env, nil
}

func parseAddrs(list []string) ([]mail.Address, error) {
	var out []mail.Address
	for _, s := range list {
		as, err := mail.ParseAddressList(s)
		if err != nil {
			return nil, fmt.Errorf("address %q: %v", s, err)
		}
		for _, a := range as {
			out = append(out, *a)
		}
	}
	return out, nil
}

// readInputs reads the files the message is made of before connecting,
// so that a missing file is a usage error and not a half-done session.
func (f *sendFlags) readInputs(stdio Stdio) (compose.Message, error) {
	var m compose.Message
	var err error
	if f.data != "" {
		if f.data == "-" {
			b, err := io.ReadAll(stdio.In)
			m.Body = string(b)
			return m, err
		}
		b, err := os.ReadFile(f.data)
		m.Body = string(b)
		return m, err
	}
	m.Body = f.body
	if f.bodyFile != "" {
		b, err := os.ReadFile(f.bodyFile)
		if err != nil {
			return m, err
		}
		m.Body = string(b)
	}
	for _, path := range f.attach {
		a := compose.Attachment{Filename: filepath.Base(path)}
		if a.Data, err = os.ReadFile(path); err != nil {
			return m, err
		}
		m.Attachments = append(m.Attachments, a)
	}
	return m, nil
}

// message is the message to send: with --data m.Body as read, else m
// with the addresses and fields of the flags, built by submit.Build once
// the server's extensions are known.
func (f *sendFlags) message(m compose.Message, c *client.Conn, ehlo string) ([]byte, error) {
	if f.data != "" {
		return []byte(m.Body), nil
	}
	from, _ := mail.ParseAddress(f.from) // checked by envelope
	m.From = *from
	m.To, _ = parseAddrs(f.to)
	m.Cc, _ = parseAddrs(f.cc)
	m.Subject = f.subject
	m.Extra = f.header
	return submit.Build(m, c, ehlo)
}

// target turns the flags into how to reach the server.
func (f *sendFlags) target(stdio Stdio) (submit.Target, error) {
	host, _, _ := net.SplitHostPort(f.server)
	name := f.serverName
	if name == "" {
		name = host
	}
	cfg, err := submit.TLSConfig(f.ca, name, f.insecure)
	if err != nil {
		return submit.Target{}, err
	}
	t := submit.Target{
		Addr: f.server, TLSMode: submit.TLSMode(f.tlsMode), TLSConfig: cfg, EHLO: f.ehlo,
		Timeout: f.timeout, User: f.authUser, Mech: f.authMech, GreetingTimeout: f.greeting,
	}
	if t.EHLO == "" {
		t.EHLO = localHostname()
	}
	if f.verbose {
		t.Transcript = stdio.Err
	}
	if f.authUser != "" {
		if t.Password, err = password(f.passwordFile, stdio, f.data == "-"); err != nil {
			return t, err
		}
	}
	return t, nil
}

// sendHint is what to add to a connection error: the flag that fixes a
// port speaking implicit TLS, and the flags for a certificate not trusted.
func sendHint(err error, f sendFlags) string {
	if errors.As(err, new(*submit.NoGreetingError)) {
		return "; if so, use --tls implicit"
	}
	if errors.As(err, new(tls.RecordHeaderError)) && f.tlsMode == string(submit.TLSImplicit) {
		return "\n  the port does not speak TLS from the first byte (a plaintext greeting came back): use --tls starttls"
	}
	return x509Hint(err, "--ca FILE", "--servername NAME", "--insecure")
}

// x509Hint names the settings that make a certificate that did not
// verify acceptable: the CA file (smtpkit's own development certificate
// is <data_dir>/tls/selfsigned.crt), the name to verify, or skipping
// verification ("" when the command has no such setting).
func x509Hint(err error, caSetting, nameSetting, insecureSetting string) string {
	var (
		ua x509.UnknownAuthorityError
		ci x509.CertificateInvalidError
		hn x509.HostnameError
	)
	skip := ""
	if insecureSetting != "" {
		skip = ", or " + insecureSetting + " to skip verification"
	}
	switch {
	case errors.As(err, &ua), errors.As(err, &ci):
		return fmt.Sprintf("\n  the server's certificate is not trusted here: give the CA that issued it with %s "+
			"(a server on smtpkit's development default: smtpkit-data/tls/selfsigned.crt in the directory it runs in)%s", caSetting, skip)
	case errors.As(err, &hn):
		return fmt.Sprintf("\n  the certificate is for another name: give that name with %s%s", nameSetting, skip)
	}
	return ""
}

// localHostname is this host's name for EHLO, "localhost" when unknown.
func localHostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// password reads the first line of file, else $SMTPKIT_PASSWORD, else
// asks on the terminal (unless stdin carries the message).
func password(file string, stdio Stdio, stdinBusy bool) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimSuffix(line, "\r"), nil
	}
	if pw, ok := os.LookupEnv("SMTPKIT_PASSWORD"); ok {
		return pw, nil
	}
	f, ok := stdio.In.(*os.File)
	if stdinBusy || !ok || !isTerminal(f) {
		return "", errors.New("no password: use --password-file or SMTPKIT_PASSWORD")
	}
	fmt.Fprint(stdio.Err, "Password: ")
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stdio.Err)
	return string(pw), err
}

// sendExit maps an outcome to the exit codes of `smtpkit send`.
func sendExit(o submit.Outcome) int {
	if o.Transport() {
		return sendExitConnect
	}
	if o.Err != nil || o.Data != nil {
		return sendExitRefused
	}
	for _, e := range o.Rcpt {
		if e != nil {
			return sendExitRefused
		}
	}
	return sendExitOK
}
