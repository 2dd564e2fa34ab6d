package cli

// configcmd.go: `smtpkit config check|default|dev` — validate a config file
// and print the built-in configurations as TOML.

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/BurntSushi/toml"

	"smtpkit/internal/certs"
	"smtpkit/internal/config"
)

const configUsage = `usage:
  smtpkit config check [-certs] FILE   validate FILE; print a summary or every problem
  smtpkit config default               print the production default configuration
  smtpkit config dev                   print the development default (used when no file exists)

check exits 0 when FILE is valid and 1 when it is not. With -certs it also
loads the certificate files named by [[tls.certificate]] and the DKIM keys
of [[dkim]] (Ed25519, or RSA of 2048 to 4096 bits).
`

func runConfig(args []string, stdio Stdio) int {
	if len(args) == 0 {
		fmt.Fprint(stdio.Err, configUsage)
		return 2
	}
	switch args[0] {
	case "check":
		return configCheck(args[1:], stdio)
	case "default":
		return printDefault(stdio, args[1:])
	case "dev":
		return printConfig(stdio, args[1:], config.DevDefault(), config.DevDefaultSource)
	case "-h", "--help", "help":
		fmt.Fprint(stdio.Out, configUsage)
		return 0
	}
	fmt.Fprintf(stdio.Err, "smtpkit config: unknown subcommand %q\n\n%s", args[0], configUsage)
	return 2
}

func configCheck(args []string, stdio Stdio) int {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	fs.Usage = func() { fmt.Fprint(stdio.Err, configUsage) }
	loadCerts := fs.Bool("certs", false, "also load the certificate files and the DKIM keys")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	path := fs.Arg(0)
	cfg, err := config.Load(path)
	if err != nil {
		problems := config.Problems(err)
		fmt.Fprintf(stdio.Err, "%s: %s\n", path, problemCount(len(problems)))
		for _, p := range problems {
			fmt.Fprintf(stdio.Err, "  %v\n", p)
		}
		return 1
	}
	if *loadCerts && len(cfg.TLS.Certificates) > 0 {
		pairs := make([]certs.Pair, len(cfg.TLS.Certificates))
		for i, c := range cfg.TLS.Certificates {
			pairs[i] = certs.Pair{Cert: c.Cert, Key: c.Key}
		}
		if _, err := certs.Load(pairs); err != nil {
			fmt.Fprintf(stdio.Err, "%s: certificates:\n  %s\n", path, strings.ReplaceAll(err.Error(), "\n", "\n  "))
			return 1
		}
	}
	if *loadCerts && cfg.ACME.Enabled() {
		if _, err := acmeHTTPClient(cfg.ACME.CA); err != nil {
			fmt.Fprintf(stdio.Err, "%s: %v\n", path, err)
			return 1
		}
	}
	if *loadCerts {
		if _, err := loadSigner(cfg); err != nil {
			fmt.Fprintf(stdio.Err, "%s: %v\n", path, err)
			return 1
		}
	}
	fmt.Fprintf(stdio.Out, "%s: ok\n", path)
	summarize(stdio.Out, cfg)
	return 0
}

// summarize prints the parts of cfg an operator checks first.
func summarize(w io.Writer, cfg config.Config) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	names := make([]string, len(cfg.Domains))
	for i, d := range cfg.Domains {
		names[i] = d.Name
	}
	fmt.Fprintf(tw, "hostname\t%s\n", cfg.Hostname)
	fmt.Fprintf(tw, "data_dir\t%s\n", cfg.DataDir)
	fmt.Fprintf(tw, "domains\t%s\n", strings.Join(names, ", "))
	printACME(tw, cfg) // acme.go
	switch {
	case len(cfg.TLS.Certificates) > 0:
		for i, c := range cfg.TLS.Certificates {
			label := ""
			if i == 0 {
				label = "certificates"
			}
			fmt.Fprintf(tw, "%s\t%s\n", label, c.Cert)
		}
	case cfg.ACME.Enabled():
	case cfg.TLS.SelfSigned:
		fmt.Fprintf(tw, "certificates\tself-signed, generated in %s\n", filepath.Join(cfg.DataDir, "tls"))
	default:
		fmt.Fprintf(tw, "certificates\tnone\n")
	}
	fmt.Fprintf(tw, "outbound tls\t%s\n", cfg.Outbound.TLS)
	for _, r := range cfg.Routes {
		fmt.Fprintf(tw, "route\t%s → %s\n", r.Domain, r.Host)
	}
	for _, d := range cfg.DKIM {
		sub := ""
		if d.Subdomains {
			sub = " (and subdomains)"
		}
		fmt.Fprintf(tw, "dkim	%s selector %s%s\n", d.Domain, d.Selector, sub)
	}
	printScreening(tw, cfg)
	printGreylist(tw, cfg)
	printMilters(tw, cfg)
	if a := cfg.HTTPAddress(); a != "" {
		pprof := ""
		if cfg.HTTP.PProf {
			pprof = " (pprof on)"
		}
		fmt.Fprintf(tw, "http\t%s%s\n", a, pprof)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "ADDRESS\tROLE\tTLS\tAUTH")
	for _, l := range cfg.Listeners {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Address, l.Role, l.TLS, authWord(l))
	}
	tw.Flush()
}

// authWord is the AUTH column of the listener tables of `config check` and
// `serve`: the server offers AUTH only inside TLS (RFC 4954 §4).
func authWord(l config.Listener) string {
	switch {
	case l.AuthEnabled():
		return "after TLS"
	case l.TLS == config.TLSNone && (l.Role == config.RoleSubmission || l.Role == config.RoleSubmissions):
		return "no (tls none)"
	}
	return "no"
}

// defaultEdits are the lines of `config default` an operator must edit,
// each marked by a comment above it: the key's line prefix → the comment.
var defaultEdits = []struct{ prefix, note string }{
	{"hostname = ", "EDIT: this server's fully qualified name (greeting, EHLO; the host your MX record names)"},
	{"[[domain]]", "EDIT: your mail domain(s); one [[domain]] each"},
	{"[[tls.certificate]]", "EDIT: your certificate chain and key (e.g. certbot's fullchain.pem and privkey.pem), readable by smtpkit's user"},
}

// printDefault prints the production default with a placeholder domain,
// hostname and certificate, so that it passes `config check` as printed;
// the lines to edit are marked "# EDIT:".
func printDefault(stdio Stdio, args []string) int {
	cfg := config.Default()
	cfg.Hostname = "mail.example.com"
	cfg.Domains = []config.Domain{{Name: "example.com"}}
	cfg.TLS.Certificates = []config.Certificate{{Cert: "/etc/smtpkit/tls/fullchain.pem", Key: "/etc/smtpkit/tls/privkey.pem"}}
	var buf strings.Builder
	code := printConfig(Stdio{Out: &buf, Err: stdio.Err}, args, cfg,
		"production default: edit the lines marked EDIT, then run `smtpkit config check -certs FILE`")
	if code != 0 {
		return code
	}
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		for _, e := range defaultEdits {
			if strings.HasPrefix(line, e.prefix) {
				fmt.Fprintf(stdio.Out, "# %s\n", e.note)
			}
		}
		fmt.Fprint(stdio.Out, line)
	}
	return 0
}

// printConfig writes cfg as TOML, under a comment naming it.
func printConfig(stdio Stdio, args []string, cfg config.Config, what string) int {
	if len(args) != 0 {
		fmt.Fprint(stdio.Err, configUsage)
		return 2
	}
	fmt.Fprintf(stdio.Out, "# smtpkit %s\n# Every key is described in docs/config.md.\n\n", what)
	enc := toml.NewEncoder(stdio.Out)
	enc.Indent = ""
	if err := enc.Encode(cfg); err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit config: %v\n", err)
		return 1
	}
	return 0
}

func problemCount(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}
