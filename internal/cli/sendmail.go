package cli

// sendmail.go: `smtpkit sendmail` — the /usr/sbin/sendmail command line
// every Unix program uses to hand over mail: the message on stdin,
// recipients as arguments or (-t) from the header, exit codes from
// sysexits.h. The message goes to the local server's mx listener, or to a
// submission server named by SMTPKIT_SUBMIT (docs/send.md).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"smtpkit/internal/client"
	"smtpkit/internal/compose"
	"smtpkit/internal/config"
	"smtpkit/internal/smtp"
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
	dest, err := sendmailDestination(o, os.Getenv)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit sendmail: %v\n", err)
		return exConfig
	}
	if o.verbose {
		dest.target.transcript = stdio.Err
	}
	input, err := compose.ReadInput(stdio.In, o.dotEnds, dest.maxSize)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit sendmail: reading the message: %v\n", err)
		return exDataErr
	}
	env, msg, err := prepareSendmail(input, o, dest, time.Now())
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit sendmail: %v\n", err)
		if errors.As(err, new(sendmailArgError)) {
			return exUsage
		}
		return exDataErr
	}
	progress := io.Discard
	if o.verbose {
		progress = stdio.Err
	}
	ctx := context.Background()
	c, err := openSession(ctx, dest.target, progress)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit sendmail: %v\n", err)
		return sessionExit(err)
	}
	defer c.Close()
	env.Size, env.EightBit = int64(len(msg)), compose.Has8Bit(msg)
	var report strings.Builder
	out := transact(ctx, c, env, msg, &report)
	if code := out.sendmailExit(); code != exOK || o.verbose {
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

// destination is where sendmail sends and what it assumes there.
type destination struct {
	target  smtpTarget
	sender  string // default envelope sender
	domain  string // qualifies recipients without a domain ("root")
	maxSize int64
}

// sendmailDestination chooses the server: SMTPKIT_SUBMIT when set, else
// the local server's first mx listener.
func sendmailDestination(o sendmailOpts, getenv func(string) string) (destination, error) {
	if addr := getenv("SMTPKIT_SUBMIT"); addr != "" {
		return submitDestination(addr, o, getenv)
	}
	cfg, source, err := config.Resolve(o.configPath)
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
	mode := getenv("SMTPKIT_TLS")
	if mode == "" {
		mode = defaultTLSMode(addr)
	}
	if mode != tlsNone && mode != tlsOpportunistic && mode != tlsStartTLS && mode != tlsImplicit {
		return destination{}, fmt.Errorf("SMTPKIT_TLS=%q: want none, opportunistic, starttls or implicit", mode)
	}
	name := getenv("SMTPKIT_SERVERNAME")
	if name == "" {
		name = host
	}
	tc, err := clientTLSConfig(getenv("SMTPKIT_CA"), name, false)
	if err != nil {
		return destination{}, fmt.Errorf("SMTPKIT_CA: %v", err)
	}
	d := destination{
		target:  smtpTarget{addr: addr, tlsMode: mode, tlsConfig: tc, ehlo: localHostname(), timeout: 5 * time.Minute},
		maxSize: maxSubmitSize,
		domain:  localHostname(),
	}
	user := getenv("SMTPKIT_USER")
	if user == "" {
		return d, errors.New("SMTPKIT_SUBMIT needs SMTPKIT_USER (and SMTPKIT_PASSWORD or -password-file)")
	}
	d.target.user = user
	if o.passwordFile != "" {
		d.target.password, err = password(o.passwordFile, Stdio{}, true)
	} else if pw := getenv("SMTPKIT_PASSWORD"); pw != "" {
		d.target.password = pw
	} else {
		err = errors.New("SMTPKIT_SUBMIT needs SMTPKIT_PASSWORD or -password-file")
	}
	if strings.Contains(user, "@") {
		d.sender = user
		d.domain = user[strings.LastIndexByte(user, '@')+1:]
	} else {
		d.sender = loginName() + "@" + d.domain
	}
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
	t := smtpTarget{addr: net.JoinHostPort(host, port), ehlo: cfg.Hostname, timeout: 5 * time.Minute}
	roots := localRoots(cfg)
	t.tlsConfig = &tls.Config{ServerName: cfg.Hostname, RootCAs: roots, MinVersion: tls.VersionTLS12}
	switch {
	case l.TLS == config.TLSNone:
		t.tlsMode = tlsNone
	case l.TLS == config.TLSImplicit:
		t.tlsMode = tlsImplicit
	case l.TLS == config.TLSRequired:
		t.tlsMode = tlsStartTLS
	case roots != nil:
		t.tlsMode = tlsOpportunistic
	default:
		t.tlsMode = tlsNone
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

// prepareSendmail turns the input into the envelope and the message:
// recipients from the arguments and, with -t, from To, Cc and Bcc; the Bcc
// field removed; From (with -F's full name), Date and Message-ID added when
// missing (RFC 5322 §3.6 requires From and Date; RFC 6409 §8 lets the
// submitter add them).
func prepareSendmail(input []byte, o sendmailOpts, d destination, now time.Time) (client.Envelope, []byte, error) {
	env := client.Envelope{From: o.from}
	switch env.From {
	case "":
		env.From = d.sender
	case "<>":
		env.From = "" // the null reverse-path (RFC 5321 §4.5.5)
	}
	if env.From != "" {
		a, err := smtp.ParseAddress(env.From)
		if err != nil {
			return env, nil, sendmailArgError(fmt.Sprintf("sender %q: %v", env.From, err))
		}
		env.From = a.String()
	}
	h, body := compose.Split(input)
	rcpts, err := sendmailRecipients(o, &h, d.domain)
	if err != nil {
		return env, nil, err
	}
	env.To = rcpts
	h.Del("Bcc")
	if !h.Has("From") {
		author := env.From
		if author == "" {
			author = d.sender
		}
		h.Add(compose.FormatAddressField("From", []mail.Address{{Name: o.fullName, Address: author}}))
	}
	if !h.Has("Date") {
		h.Add(compose.FormatField("Date", compose.FormatDate(now)))
	}
	if !h.Has("Message-ID") {
		domain := d.domain
		if i := strings.LastIndexByte(env.From, '@'); i >= 0 {
			domain = env.From[i+1:]
		}
		h.Add(compose.FormatField("Message-ID", "<"+compose.NewMessageID(domain)+">"))
	}
	return env, compose.Join(h, body), nil
}

// sendmailRecipients collects the recipients: the arguments (each may be
// a comma-separated list), then with -t those of To, Cc and Bcc; names
// without a domain get domain; duplicates are dropped.
func sendmailRecipients(o sendmailOpts, h *compose.Header, domain string) ([]string, error) {
	var addrs []string
	for _, arg := range o.rcpts {
		for _, s := range strings.Split(arg, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if a, err := mail.ParseAddress(s); err == nil {
				s = a.Address
			}
			addrs = append(addrs, s)
		}
	}
	if o.headerRcpts {
		list, err := headerRecipients(h)
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, list...)
	}
	var out []string
	seen := map[string]bool{}
	for _, s := range addrs {
		if !strings.Contains(s, "@") && !strings.EqualFold(s, "postmaster") {
			s += "@" + domain
		}
		a, err := smtp.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("recipient %q: %v", s, err)
		}
		if key := strings.ToLower(a.String()); !seen[key] {
			seen[key] = true
			out = append(out, a.String())
		}
	}
	if len(out) == 0 {
		return nil, sendmailArgError("no recipients: give them as arguments or use -t with To/Cc/Bcc")
	}
	return out, nil
}

// headerRecipients returns the addresses of To, Cc and Bcc. A field that
// is not an RFC 5322 address list may still be a list of local names
// ("To: root, admin"), as cron writes them.
func headerRecipients(h *compose.Header) ([]string, error) {
	var out []string
	for _, f := range h.Fields {
		if !strings.EqualFold(f.Name, "To") && !strings.EqualFold(f.Name, "Cc") && !strings.EqualFold(f.Name, "Bcc") {
			continue
		}
		one := compose.Header{Fields: []compose.Field{f}}
		list, err := one.Addresses(f.Name)
		if err == nil {
			for _, a := range list {
				out = append(out, a.Address)
			}
			continue
		}
		for _, name := range strings.Split(f.Value(), ",") {
			name = strings.TrimSpace(name)
			if name == "" || strings.ContainsAny(name, "@<>\" ()[]:;") {
				return nil, err
			}
			out = append(out, name)
		}
	}
	return out, nil
}

// sessionExit maps a failure to open the session to a sysexits code.
func sessionExit(err error) int {
	var se *smtp.Error
	if errors.As(err, new(*authError)) {
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
func (o outcome) sendmailExit() int {
	var se *smtp.Error
	if o.err != nil && !errors.As(o.err, &se) {
		return exTempFail
	}
	if o.err != nil { // MAIL refused, or refused before it (SIZE, 8BITMIME, SMTPUTF8)
		if se.Temporary() {
			return exTempFail
		}
		return exUnavailable
	}
	temp := false
	for _, e := range o.rcpt {
		if errors.As(e, &se) && se.Permanent() {
			return exNoUser
		}
		temp = temp || e != nil
	}
	if temp {
		return exTempFail
	}
	if o.data != nil {
		if errors.As(o.data, &se) && se.Permanent() {
			return exUnavailable
		}
		return exTempFail
	}
	return exOK
}
