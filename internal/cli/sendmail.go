package cli

// sendmail.go: `smtpkit sendmail` — the /usr/sbin/sendmail command line
// every Unix program uses to hand over mail: the message on stdin,
// recipients as arguments or (-t) from the header, exit codes from
// sysexits.h. The message goes to the local server's mx listener, or to a
// submission server named by SMTPKIT_SUBMIT (docs/send.md). The message
// is prepared and sent by internal/submit; this file reads the command
// line, the config or the environment, and maps the outcome to sysexits.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"smtpkit/internal/compose"
	"smtpkit/internal/config"
	"smtpkit/internal/smtp"
	"smtpkit/internal/submit"
)

// Exit codes of sendmail, from sysexits.h.
const (
	exOK          = 0
	exUsage       = 64 // bad command line, no recipients
	exDataErr     = 65 // the message on stdin is unusable
	exNoUser      = 67 // a recipient was refused permanently (5xx)
	exUnavailable = 69 // the sender or the message was refused permanently
	exTempFail    = 75 // 4xx, or the server could not be reached
	exNoPerm      = 77 // authentication refused
	exConfig      = 78 // configuration or environment unusable
)

const sendmailUsageText = `usage: smtpkit sendmail [-t] [-i|-oi] [-f sender] [-F fullname] [-v]
                        [-config FILE] [-password-file FILE] [--] [recipient...]

Reads a message on stdin and sends it: to the local smtpkit server's mx
listener (from the config), or with SMTPKIT_SUBMIT=host:port to that
submission server, authenticating as SMTPKIT_USER with SMTPKIT_PASSWORD
or -password-file. See docs/send.md.
`

// maxSubmitSize bounds the message read from stdin when no server limit
// is known (submission mode).
const maxSubmitSize = 64 << 20

// sendmailOpts is the sendmail command line.
type sendmailOpts struct {
	headerRcpts  bool // -t
	dotEnds      bool // no -i/-oi: a line "." ends the message
	from         string
	fullName     string
	configPath   string
	passwordFile string
	verbose      bool
	rcpts        []string
}

// sendmailArgError is a command line sendmail refuses (EX_USAGE).
type sendmailArgError string

func (e sendmailArgError) Error() string { return string(e) }

// parseSendmailArgs reads the sendmail options; the first argument that
// is not an option (or "--") starts the recipients. Options of other
// sendmails that do not change how a message is sent (-oem, -odb, -B, -N,
// -R, -V, -bm ...) are accepted and ignored.
func parseSendmailArgs(args []string) (sendmailOpts, error) {
	o := sendmailOpts{dotEnds: true}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.rcpts = append(o.rcpts, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			o.rcpts = append(o.rcpts, args[i:]...)
			break
		}
		long := a == "-config" || a == "--config" || a == "-password-file" || a == "--password-file"
		value := func() (string, error) { // the option's argument: attached ("-fx") or next
			if len(a) > 2 && !long {
				return a[2:], nil
			}
			if i+1 == len(args) {
				return "", sendmailArgError(fmt.Sprintf("option %s needs an argument", a))
			}
			i++
			return args[i], nil
		}
		var err error
		switch {
		case a == "-t":
			o.headerRcpts = true
		case a == "-i" || a == "-oi":
			o.dotEnds = false
		case a == "-v":
			o.verbose = true
		case a == "-config" || a == "--config":
			o.configPath, err = value()
		case a == "-password-file" || a == "--password-file":
			o.passwordFile, err = value()
		case strings.HasPrefix(a, "-f"), strings.HasPrefix(a, "-r"):
			o.from, err = value()
		case strings.HasPrefix(a, "-F"):
			o.fullName, err = value()
		case a == "-bm" || strings.HasPrefix(a, "-o"):
		case strings.HasPrefix(a, "-B"), strings.HasPrefix(a, "-N"), strings.HasPrefix(a, "-R"),
			strings.HasPrefix(a, "-V"), strings.HasPrefix(a, "-L"):
			_, err = value()
		case a == "-bs":
			err = sendmailArgError("-bs (SMTP on stdin) is not supported: connect to the server's port instead")
		default:
			err = sendmailArgError(fmt.Sprintf("unsupported option %s", a))
		}
		if err != nil {
			return o, err
		}
	}
	return o, nil
}

func runSendmail(args []string, stdio Stdio) int {
	o, err := parseSendmailArgs(args)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit sendmail: %v\n%s", err, sendmailUsageText)
		return exUsage
	}
	dest, err := sendmailDestination(o, os.Getenv, stdio.Err)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit sendmail: %v\n", err)
		return exConfig
	}
	if o.verbose {
		dest.target.Transcript = stdio.Err
	}
	input, err := compose.ReadInput(stdio.In, o.dotEnds, dest.maxSize)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit sendmail: reading the message: %v\n", err)
		return exDataErr
	}
	env, msg, err := submit.Prepare(input, o.request(), dest.defaults(), time.Now())
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit sendmail: %v\n", err)
		if errors.As(err, new(submit.ArgError)) {
			return exUsage
		}
		return exDataErr
	}
	progress := io.Discard
	if o.verbose {
		progress = stdio.Err
	}
	ctx := context.Background()
	c, err := submit.Open(ctx, dest.target, progress)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit sendmail: %v%s\n", err, sendmailHint(err))
		return sessionExit(err)
	}
	defer c.Close()
	var report strings.Builder
	out := submit.Transact(ctx, c, env, msg, &report)
	if code := sendmailExit(out); code != exOK || o.verbose {
		fmt.Fprint(stdio.Err, prefixLines("smtpkit sendmail: ", report.String()))
		return code
	}
	return exOK
}

func prefixLines(prefix, s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

// request is what the command line asks of submit.Prepare.
func (o sendmailOpts) request() submit.Request {
	return submit.Request{From: o.from, FullName: o.fullName, Rcpts: o.rcpts, HeaderRcpts: o.headerRcpts}
}

// destination is where sendmail sends and what it assumes there.
type destination struct {
	target  submit.Target
	sender  string // default envelope sender
	domain  string // qualifies recipients without a domain ("root")
	maxSize int64
}

func (d destination) defaults() submit.Defaults {
	return submit.Defaults{Sender: d.sender, Domain: d.domain}
}

// sendmailDestination chooses the server: SMTPKIT_SUBMIT when set, else
// the local server's first mx listener.
func sendmailDestination(o sendmailOpts, getenv func(string) string, notes io.Writer) (destination, error) {
	d, err := pickDestination(o, getenv, notes)
	if v := getenv("SMTPKIT_GREETING_TIMEOUT"); err == nil && v != "" {
		if d.target.GreetingTimeout, err = time.ParseDuration(v); err != nil || d.target.GreetingTimeout <= 0 {
			return d, fmt.Errorf("SMTPKIT_GREETING_TIMEOUT=%q: want a positive duration such as 10s", v)
		}
	}
	return d, err
}

// pickDestination is sendmailDestination without the greeting timeout.
func pickDestination(o sendmailOpts, getenv func(string) string, notes io.Writer) (destination, error) {
	if addr := getenv("SMTPKIT_SUBMIT"); addr != "" {
		return submitDestination(addr, o, getenv)
	}
	cfg, source, err := resolveConfigEnv(o.configPath, getenv, notes)
	if err != nil {
		return destination{}, fmt.Errorf("config %s: %v", source, err)
	}
	return localDestination(cfg)
}

// submitDestination is a submission server (RFC 6409) with AUTH:
// SMTPKIT_TLS (default: implicit on port 465, else starttls), SMTPKIT_CA,
// SMTPKIT_SERVERNAME, SMTPKIT_USER and SMTPKIT_PASSWORD / -password-file.
func submitDestination(addr string, o sendmailOpts, getenv func(string) string) (destination, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return destination{}, fmt.Errorf("SMTPKIT_SUBMIT=%q: %v", addr, err)
	}
	mode, err := submit.ParseTLSMode(getenv("SMTPKIT_TLS"), addr)
	if err != nil {
		return destination{}, fmt.Errorf("SMTPKIT_TLS=%q: %v", getenv("SMTPKIT_TLS"), err)
	}
	name := getenv("SMTPKIT_SERVERNAME")
	if name == "" {
		name = host
	}
	tc, err := submit.TLSConfig(getenv("SMTPKIT_CA"), name, false)
	if err != nil {
		return destination{}, fmt.Errorf("SMTPKIT_CA: %v", err)
	}
	d := destination{
		target:  submit.Target{Addr: addr, TLSMode: mode, TLSConfig: tc, EHLO: localHostname(), Timeout: 5 * time.Minute},
		maxSize: maxSubmitSize,
		domain:  localHostname(),
	}
	user := getenv("SMTPKIT_USER")
	if user == "" {
		return d, errors.New("SMTPKIT_SUBMIT needs SMTPKIT_USER (and SMTPKIT_PASSWORD or -password-file)")
	}
	d.target.User = user
	if o.passwordFile != "" {
		d.target.Password, err = password(o.passwordFile, Stdio{}, true)
	} else if pw := getenv("SMTPKIT_PASSWORD"); pw != "" {
		d.target.Password = pw
	} else {
		err = errors.New("SMTPKIT_SUBMIT needs SMTPKIT_PASSWORD or -password-file")
	}
	def := submit.LoginDefaults(user, loginName(), d.domain)
	d.sender, d.domain = def.Sender, def.Domain
	return d, err
}

// localDestination is the local server's first mx listener on loopback.
// Mail for local domains is accepted there without AUTH; remote
// recipients are refused (550 5.7.1) until submission settings are given.
// STARTTLS is used when the listener offers TLS and its certificate can be
// read (the generated self-signed one, or the configured files, trusted
// for the config's hostname); otherwise the loopback session stays
// plaintext, unless the listener requires TLS.
func localDestination(cfg config.Config) (destination, error) {
	var l *config.Listener
	for i := range cfg.Listeners {
		if cfg.Listeners[i].Role == config.RoleMX {
			l = &cfg.Listeners[i]
			break
		}
	}
	if l == nil {
		return destination{}, errors.New("the config has no mx listener to hand mail to (or set SMTPKIT_SUBMIT)")
	}
	host, port, err := net.SplitHostPort(l.Address)
	if err != nil {
		return destination{}, fmt.Errorf("mx listener %q: %v", l.Address, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	t := submit.Target{Addr: net.JoinHostPort(host, port), EHLO: cfg.Hostname, Timeout: 5 * time.Minute}
	roots := localRoots(cfg)
	t.TLSConfig = &tls.Config{ServerName: cfg.Hostname, RootCAs: roots, MinVersion: tls.VersionTLS12}
	switch {
	case l.TLS == config.TLSNone:
		t.TLSMode = submit.TLSNone
	case l.TLS == config.TLSImplicit:
		t.TLSMode = submit.TLSImplicit
	case l.TLS == config.TLSRequired:
		t.TLSMode = submit.TLSStartTLS
	case roots != nil:
		t.TLSMode = submit.TLSOpportunistic
	default:
		t.TLSMode = submit.TLSNone
	}
	d := destination{target: t, maxSize: int64(cfg.Limits.MessageSize), domain: cfg.Hostname}
	if len(cfg.Domains) > 0 {
		d.domain = cfg.Domains[0].Name
	}
	d.sender = loginName() + "@" + cfg.Hostname
	return d, nil
}

// localRoots trusts the local server's own certificates: the configured
// chain files, or the generated self-signed one. Nil when none is readable.
func localRoots(cfg config.Config) *x509.CertPool {
	files := []string{filepath.Join(cfg.DataDir, "tls", "selfsigned.crt")}
	if len(cfg.TLS.Certificates) > 0 {
		files = files[:0]
		for _, c := range cfg.TLS.Certificates {
			files = append(files, c.Cert)
		}
	}
	var pool *x509.CertPool
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pool == nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM(pem)
	}
	return pool
}

// loginName is the invoking user's login name.
func loginName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	for _, v := range []string{"USER", "LOGNAME"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	return "nobody"
}

// sendmailHint is what to add to a connection error: the settings that
// fix it, as environment variables (sendmail has no flags for them).
func sendmailHint(err error) string {
	if errors.As(err, new(*submit.NoGreetingError)) {
		return "; if so, set SMTPKIT_TLS=implicit"
	}
	return x509Hint(err, "SMTPKIT_CA=FILE", "SMTPKIT_SERVERNAME=NAME", "")
}

// sessionExit maps a failure to open the session to a sysexits code.
func sessionExit(err error) int {
	var se *smtp.Error
	if errors.As(err, new(*submit.AuthError)) {
		if errors.As(err, &se) && se.Temporary() {
			return exTempFail
		}
		return exNoPerm
	}
	if errors.As(err, &se) && se.Permanent() {
		return exUnavailable
	}
	return exTempFail
}

// sendmailExit maps a transaction to a sysexits code: any permanently
// refused recipient is EX_NOUSER (the others got the message), a
// temporary refusal or a lost connection EX_TEMPFAIL, a refused sender or
// message EX_UNAVAILABLE.
func sendmailExit(o submit.Outcome) int {
	if o.Transport() {
		return exTempFail
	}
	var se *smtp.Error
	if o.Err != nil { // MAIL refused, or refused before it (SIZE, 8BITMIME, SMTPUTF8)
		if errors.As(o.Err, &se) && se.Temporary() {
			return exTempFail
		}
		return exUnavailable
	}
	temp := false
	for _, e := range o.Rcpt {
		if errors.As(e, &se) && se.Permanent() {
			return exNoUser
		}
		temp = temp || e != nil
	}
	if temp {
		return exTempFail
	}
	if o.Data != nil {
		if errors.As(o.Data, &se) && se.Permanent() {
			return exUnavailable
		}
		return exTempFail
	}
	return exOK
}
