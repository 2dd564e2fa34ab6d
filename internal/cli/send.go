package cli

// send.go: `smtpkit send` — compose a message (internal/compose) or take
// one as is, and send it over SMTP with internal/client, like swaks or
// msmtp. The session code (connect, TLS, AUTH, one transaction, progress)
// is shared with sendmail.go.

import (
	"bytes"
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
	"smtpkit/internal/sasl"
	"smtpkit/internal/smtp"
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

// TLS modes of the client side (--tls).
const (
	tlsNone          = "none"          // plaintext
	tlsOpportunistic = "opportunistic" // STARTTLS when offered, verified when used
	tlsStartTLS      = "starttls"      // STARTTLS required
	tlsImplicit      = "implicit"      // TLS from the first byte (RFC 8314 §3.3)
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
	insecure, verbose                           bool
	timeout                                     time.Duration
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
	fs.StringVar(&f.authMech, "auth-mech", "", "plain | login | scram-sha-256 (default: the best offered)")
	fs.StringVar(&f.passwordFile, "password-file", "", "read the password from the first line of `file` (else $SMTPKIT_PASSWORD, else a prompt)")
	fs.StringVar(&f.ca, "ca", "", "trust the CA certificates in PEM `file` instead of the system roots")
	fs.BoolVar(&f.insecure, "insecure", false, "do not verify the server's certificate")
	fs.StringVar(&f.serverName, "servername", "", "`name` to verify the certificate against and send as SNI (default: the server host)")
	fs.StringVar(&f.ehlo, "ehlo", "", "`name` to say in EHLO (default: this host's name)")
	fs.BoolVar(&f.verbose, "v", false, "print the SMTP transcript on stderr (credentials hidden)")
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "limit for each step of the conversation")
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
	if f.tlsMode == "" {
		f.tlsMode = defaultTLSMode(f.server)
	}
	switch f.tlsMode {
	case tlsNone, tlsOpportunistic, tlsStartTLS, tlsImplicit:
	default:
		return fmt.Errorf("--tls %q: want none, opportunistic, starttls or implicit", f.tlsMode)
	}
	if _, err := mechanism(f.authMech, ""); f.authMech != "" && err != nil {
		return err
	}
	return nil
}

// defaultTLSMode is implicit TLS for port 465 (RFC 8314 §3.3), STARTTLS
// required everywhere else.
func defaultTLSMode(addr string) string {
	if _, port, _ := net.SplitHostPort(addr); port == "465" {
		return tlsImplicit
	}
	return tlsStartTLS
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
	c, err := openSession(ctx, target, stdio.Out)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit send: %v\n", err)
		if errors.As(err, new(*authError)) {
			return sendExitAuth
		}
		return sendExitConnect
	}
	defer c.Close()
	msg, err := f.message(m, c, target.ehlo)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit send: %v\n", err)
		return sendExitUsage
	}
	env.Size, env.EightBit = int64(len(msg)), compose.Has8Bit(msg)
	out := transact(ctx, c, env, msg, stdio.Out)
	return out.sendExit()
}

// envelope parses the sender and recipients; "Name <addr>" is allowed.
func (f *sendFlags) envelope() (client.Envelope, error) {
	from, err := mail.ParseAddress(f.from)
	if err != nil {
		return client.Envelope{}, fmt.Errorf("--from %q: %v", f.from, err)
	}
	env := client.Envelope{From: from.Address}
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

// message builds the message once the server's extensions are known: a
// non-ASCII body goes 8bit only when the server offers 8BITMIME. With
// --data the message is m.Body as read.
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
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	if !strings.Contains(from.Address, "@") || domain == "" {
		domain = ehlo
	}
	m.MessageID = compose.NewMessageID(domain)
	_, m.EightBit = c.Ext("8BITMIME")
	return m.Build()
}

// target turns the flags into how to reach the server.
func (f *sendFlags) target(stdio Stdio) (smtpTarget, error) {
	host, _, _ := net.SplitHostPort(f.server)
	name := f.serverName
	if name == "" {
		name = host
	}
	cfg, err := clientTLSConfig(f.ca, name, f.insecure)
	if err != nil {
		return smtpTarget{}, err
	}
	t := smtpTarget{
		addr: f.server, tlsMode: f.tlsMode, tlsConfig: cfg, ehlo: f.ehlo,
		timeout: f.timeout, user: f.authUser, mech: f.authMech,
	}
	if t.ehlo == "" {
		t.ehlo = localHostname()
	}
	if f.verbose {
		t.transcript = stdio.Err
	}
	if f.authUser != "" {
		if t.password, err = password(f.passwordFile, stdio, f.data == "-"); err != nil {
			return t, err
		}
	}
	return t, nil
}

// localHostname is this host's name for EHLO, "localhost" when unknown.
func localHostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// clientTLSConfig verifies the server's certificate against the system
// roots, or the PEM certificates in caFile, for serverName; insecure
// skips verification.
func clientTLSConfig(caFile, serverName string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate found", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
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

// smtpTarget is how to reach one server and what to say to it.
type smtpTarget struct {
	addr       string
	tlsMode    string
	tlsConfig  *tls.Config
	ehlo       string
	timeout    time.Duration
	transcript io.Writer
	// AUTH: none when user is empty; mech "" = the best the server offers.
	user, password, mech string
	// plaintextAuth allows AUTH without TLS (--tls none, or loopback).
	plaintextAuth bool
}

// authError marks a failed AUTH, for the exit code.
type authError struct{ err error }

func (e *authError) Error() string { return "authentication failed: " + e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// openSession connects, says EHLO, sets up TLS as t.tlsMode asks and
// authenticates, reporting each step on out. Failures of AUTH are
// *authError; every other error is a connection, TLS or protocol failure.
func openSession(ctx context.Context, t smtpTarget, out io.Writer) (*client.Conn, error) {
	opts := client.Options{
		LocalName: t.ehlo, Transcript: t.transcript,
		AllowPlaintextAuth: t.plaintextAuth || t.tlsMode == tlsNone,
		Timeouts: client.Timeouts{Connect: t.timeout, Greeting: t.timeout, Mail: t.timeout, Rcpt: t.timeout,
			DataInit: t.timeout, DataBlock: t.timeout, DataEnd: t.timeout, Command: t.timeout},
	}
	var c *client.Conn
	var err error
	if t.tlsMode == tlsImplicit {
		c, err = client.DialTLS(ctx, t.addr, t.tlsConfig, opts)
	} else {
		c, err = client.Dial(ctx, t.addr, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", t.addr, err)
	}
	if err := setupSession(c, t, out); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func setupSession(c *client.Conn, t smtpTarget, out io.Writer) error {
	if err := c.Hello(); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if t.tlsMode == tlsStartTLS || t.tlsMode == tlsOpportunistic {
		err := c.StartTLS(t.tlsConfig)
		var te *client.TLSError
		switch {
		case err == nil:
		case t.tlsMode == tlsOpportunistic && (errors.Is(err, client.ErrNoStartTLS) || errors.As(err, &te) && te.Refused):
			fmt.Fprintf(out, "STARTTLS not available (%v): continuing without TLS\n", err)
		case errors.Is(err, client.ErrNoStartTLS):
			return fmt.Errorf("%s does not offer STARTTLS, which --tls %s requires", t.addr, t.tlsMode)
		default:
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if st, ok := c.TLSState(); ok {
		fmt.Fprintf(out, "connected to %s with %s (%s)\n", t.addr, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	} else {
		fmt.Fprintf(out, "connected to %s without TLS\n", t.addr)
	}
	if t.user == "" {
		return nil
	}
	offered, _ := c.Ext("AUTH")
	mech, err := mechanism(t.mech, offered)
	if err != nil {
		return &authError{err}
	}
	if err := c.Auth(saslClient(mech, t.user, t.password)); err != nil {
		return &authError{err}
	}
	fmt.Fprintf(out, "authenticated as %s with %s\n", t.user, mech)
	return nil
}

// mechanism picks the SASL mechanism: the one asked for, or the best one
// offered (the AUTH parameters of EHLO): SCRAM-SHA-256, which never
// reveals the password, then PLAIN, then LOGIN.
func mechanism(asked, offered string) (string, error) {
	if asked != "" {
		for _, m := range []string{sasl.MechScramSHA256, sasl.MechPlain, sasl.MechLogin} {
			if strings.EqualFold(asked, m) {
				return m, nil
			}
		}
		return "", fmt.Errorf("--auth-mech %q: want plain, login or scram-sha-256", asked)
	}
	have := strings.Fields(strings.ToUpper(offered))
	for _, m := range []string{sasl.MechScramSHA256, sasl.MechPlain, sasl.MechLogin} {
		for _, h := range have {
			if h == m {
				return m, nil
			}
		}
	}
	if offered == "" {
		return "", errors.New("the server does not offer AUTH")
	}
	return "", fmt.Errorf("no supported mechanism among %q", offered)
}

func saslClient(mech, user, pw string) sasl.Client {
	switch mech {
	case sasl.MechScramSHA256:
		return sasl.NewScramSHA256Client(user, pw)
	case sasl.MechLogin:
		return sasl.NewLoginClient(user, pw)
	}
	return sasl.NewPlainClient("", user, pw)
}

// outcome is what became of one transaction.
type outcome struct {
	err       error   // transport failure, or MAIL refused (*smtp.Error)
	rcpt      []error // per recipient
	data      error   // the message (nil: accepted)
	delivered bool    // accepted for at least one recipient
}

// transact sends msg to env and prints per recipient and for the message
// what the server said.
func transact(ctx context.Context, c *client.Conn, env client.Envelope, msg []byte, out io.Writer) outcome {
	res, err := c.Send(ctx, env, bytes.NewReader(msg))
	o := outcome{err: err, rcpt: res.Rcpt, data: res.Data}
	var se *smtp.Error
	if err != nil && !errors.As(err, &se) {
		// A transport failure: what the recipients' replies were is not
		// known for all of them.
		fmt.Fprintf(out, "connection failed: %v\n", err)
		return o
	}
	for i, e := range res.Rcpt {
		if e == nil {
			fmt.Fprintf(out, "<%s>: accepted\n", env.To[i])
		} else {
			fmt.Fprintf(out, "<%s>: refused: %v\n", env.To[i], e)
		}
	}
	switch {
	case err != nil:
		fmt.Fprintf(out, "message not sent: %v\n", err)
	case errors.Is(res.Data, client.ErrNoRecipients):
		fmt.Fprintln(out, "message not sent: no recipient accepted")
	case res.Data != nil:
		fmt.Fprintf(out, "message refused: %v\n", res.Data)
	default:
		o.delivered = true
		fmt.Fprintf(out, "message accepted: %s\n", replyLine(res.Reply))
	}
	c.Quit()
	return o
}

func replyLine(r smtp.Reply) string {
	s := fmt.Sprint(r.Code)
	if r.Enhanced != "" {
		s += " " + string(r.Enhanced)
	}
	return s + " " + r.Text()
}

// sendExit maps an outcome to the exit codes of `smtpkit send`.
func (o outcome) sendExit() int {
	var se *smtp.Error
	if o.err != nil && !errors.As(o.err, &se) {
		return sendExitConnect // transport failure
	}
	if o.err != nil || o.data != nil {
		return sendExitRefused
	}
	for _, e := range o.rcpt {
		if e != nil {
			return sendExitRefused
		}
	}
	return sendExitOK
}
