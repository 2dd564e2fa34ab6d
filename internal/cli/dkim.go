package cli

// dkim.go: `smtpkit dkim keygen|check` — DKIM signing keys (RFC 6376,
// RFC 8463) and their DNS records; and loadSigner, the [[dkim]] keys serve
// signs with.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"smtpkit/internal/config"
	"smtpkit/internal/dkim"
	"smtpkit/internal/dns"
	"smtpkit/internal/inbound"
)

const dkimUsage = `usage: smtpkit dkim keygen -domain D -selector S [-algorithm ed25519|rsa] [-bits 2048] [-out FILE]
       smtpkit dkim check -domain D -selector S [-config FILE]

keygen writes a new private key (PEM, mode 0600; an existing file is never
overwritten) and prints the DNS TXT record to publish, as a zone-file line:

  S._domainkey.D. TXT "v=DKIM1; k=ed25519; p=..."

(an RSA record is split into strings of at most 255 bytes). -out defaults to
S.D.pem in the current directory. Then add a [[dkim]] entry (domain, selector,
key) to the configuration and restart serve.

check looks the record up through the configured resolver (outbound.resolver)
and says whether it matches the key of the [[dkim]] entry for D and S.

Exit status: 0 written / the record matches the key; 1 keygen failed, or
the record is missing, malformed or for another key; 2 usage or
configuration error (no such [[dkim]] entry, unreadable key); 3 the DNS
lookup failed (try again).

Flags:
`

func runDKIM(args []string, stdio Stdio) int {
	if len(args) == 0 || (args[0] != "keygen" && args[0] != "check") {
		fmt.Fprint(stdio.Err, dkimUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return 0
		}
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("dkim "+verb, flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	fs.Usage = func() { fmt.Fprint(stdio.Err, dkimUsage); fs.PrintDefaults() }
	domain := fs.String("domain", "", "the signing domain (d=)")
	selector := fs.String("selector", "", "the selector (s=)")
	algorithm := fs.String("algorithm", dkim.Ed25519, "keygen: ed25519 (RFC 8463) or rsa")
	bits := fs.Int("bits", dkim.DefaultRSABits, "keygen: RSA key size (2048 to 4096)")
	out := fs.String("out", "", "keygen: the key file to write (default S.D.pem)")
	configPath := fs.String("config", "", "check: config file (default "+DefaultConfigPath+", or the built-in development default)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stdio.Err, "smtpkit dkim %s: unexpected argument %q\n", verb, fs.Arg(0))
		return 2
	}
	*domain = strings.ToLower(strings.TrimSuffix(*domain, "."))
	if !validHostName(*domain) || !validHostName(*selector) {
		fmt.Fprintf(stdio.Err, "smtpkit dkim %s: -domain and -selector must be DNS names (got %q, %q)\n", verb, *domain, *selector)
		return 2
	}
	if verb == "keygen" {
		return dkimKeygen(stdio, *domain, *selector, *algorithm, *bits, *out)
	}
	return dkimCheck(stdio, *domain, *selector, *configPath)
}

func dkimKeygen(stdio Stdio, domain, selector, algorithm string, bits int, out string) int {
	if algorithm != dkim.Ed25519 && algorithm != dkim.RSA {
		fmt.Fprintf(stdio.Err, "smtpkit dkim keygen: -algorithm %q: want ed25519 or rsa\n", algorithm)
		return 2
	}
	if algorithm == dkim.RSA && (bits < dkim.MinRSABits || bits > dkim.MaxRSABits) {
		fmt.Fprintf(stdio.Err, "smtpkit dkim keygen: -bits %d: want %d to %d (RFC 8301 §3.2)\n", bits, dkim.MinRSABits, dkim.MaxRSABits)
		return 2
	}
	if out == "" {
		out = selector + "." + domain + ".pem"
	}
	key, err := dkim.GenerateKey(algorithm, bits)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit dkim keygen: %v\n", err)
		return 1
	}
	pemData, err := dkim.MarshalKey(key)
	if err == nil {
		err = writeNewFile(out, pemData)
	}
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit dkim keygen: %v\n", err)
		return 1
	}
	rec, err := dkim.Record(key.Public())
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit dkim keygen: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdio.Out, dkim.ZoneLine(selector, domain, rec))
	abs, _ := filepath.Abs(out)
	fmt.Fprintf(stdio.Err, "wrote %s (mode 0600). Publish the record above, then add to the configuration:\n\n[[dkim]]\ndomain = %q\nselector = %q\nkey = %q\n", out, domain, selector, abs)
	return 0
}

// writeNewFile writes data to a new file of mode 0600, durably; an
// existing file is an error (a key is never overwritten).
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

func dkimCheck(stdio Stdio, domain, selector, configPath string) int {
	cfg, _, err := resolveConfig(configPath, stdio.Err)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit dkim check: %v\n", err)
		return 2
	}
	var entry *config.DKIM
	for i, d := range cfg.DKIM {
		if strings.EqualFold(d.Domain, domain) && strings.EqualFold(d.Selector, selector) {
			entry = &cfg.DKIM[i]
		}
	}
	if entry == nil {
		fmt.Fprintf(stdio.Err, "smtpkit dkim check: no [[dkim]] entry with domain %q and selector %q in the configuration\n", domain, selector)
		return 2
	}
	signer, err := dkim.LoadKey(entry.Key)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit dkim check: dkim key: %v\n", err)
		return 2
	}
	want, err := dkim.Record(signer.Public())
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit dkim check: %v\n", err)
		return 2
	}
	var servers []string
	if cfg.Outbound.Resolver != "" {
		servers = []string{cfg.Outbound.Resolver}
	}
	res, err := dns.New(dns.Options{Servers: servers})
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit dkim check: resolver: %v\n", err)
		return 2
	}
	name := dkim.RecordName(selector, domain)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ans, err := res.LookupTXT(ctx, name)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit dkim check: looking up %s: %v\n", name, err)
		if errors.Is(err, dns.ErrTemporary) {
			return 3
		}
		return 1
	}
	err = dkim.Check(dkim.Key{Domain: domain, Selector: selector, Signer: signer}, ans.Records)
	for _, r := range ans.Records {
		fmt.Fprintf(stdio.Out, "published: %s TXT %q\n", name, r)
	}
	if err != nil {
		fmt.Fprintf(stdio.Out, "MISMATCH: %s: %v\nexpected:  %s\n", name, err, dkim.ZoneLine(selector, domain, want))
		return 1
	}
	fmt.Fprintf(stdio.Out, "OK: %s matches the key in %s\n", name, entry.Key)
	return 0
}

// loadSigner reads the keys of the [[dkim]] entries (each must be Ed25519
// or RSA of 2048 to 4096 bits: serve refuses to start otherwise). No
// entries give a nil Signer, which signs nothing.
func loadSigner(cfg config.Config) (*dkim.Signer, error) {
	if len(cfg.DKIM) == 0 {
		return nil, nil
	}
	var keys []dkim.Key
	for i, d := range cfg.DKIM {
		k, err := dkim.LoadKey(d.Key)
		if err != nil {
			return nil, fmt.Errorf("dkim[%d] (%s, selector %s): %w", i, d.Domain, d.Selector, err)
		}
		keys = append(keys, dkim.Key{Domain: d.Domain, Selector: d.Selector, Signer: k, Subdomains: d.Subdomains})
	}
	return dkim.New(keys)
}

// messageSigner is inbound's Options.Sign: nil without keys, so that no
// message is teed into a signer that has nothing to sign with.
func (o *outbound) messageSigner() func(senderDomain string) inbound.MessageSigner {
	if o.signer == nil {
		return nil
	}
	return func(senderDomain string) inbound.MessageSigner { return o.signer.BeginFor(senderDomain) }
}
