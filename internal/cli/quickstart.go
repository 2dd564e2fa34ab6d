package cli

// quickstart.go: `smtpkit quickstart DOMAIN [-dir DIR]` — a production
// setup for one domain in one command: the config file (the four
// listeners, the data dir, the certificate from [acme] or from files, the
// DKIM keys), the first account, and every DNS record to publish with the
// checks to run afterwards (quickstartdns.go). It never overwrites: when
// the config, a key or the account exists, nothing is written.

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"smtpkit/internal/config"
	"smtpkit/internal/dkim"
	"smtpkit/internal/userdb"
)

const quickstartUsage = `usage: smtpkit quickstart [flags] DOMAIN

Sets up smtpkit for the mail domain DOMAIN: writes DIR/smtpkit.toml (the
four listeners :25 mx, :587 and :2525 submission, :465 submissions; the
data dir; the certificate from [acme], or from -cert and -key; two DKIM
keys, Ed25519 and RSA, in DIR/dkim), creates the first account (an admin,
with a generated password shown once, or the one in -password-file), and
prints every DNS record to publish and the checks to run afterwards.

Nothing is overwritten: when DIR/smtpkit.toml, a DKIM key file or the
account exists already, quickstart writes nothing and exits 3.

Exit status: 0 done; 1 failed; 2 usage; 3 already set up (nothing written).

Flags:
`

// Exit codes of quickstart.
const (
	quickstartOK     = 0
	quickstartFailed = 1
	quickstartUsageE = 2
	quickstartExists = 3
)

// DefaultACMEDirectory is the certificate authority quickstart's [acme]
// uses unless -acme-directory says otherwise: Let's Encrypt's production
// directory.
const DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"

// quickstartFlags is the command line of quickstart.
type quickstartFlags struct {
	domain, dir, hostname, dataDir string
	account, passwordFile          string
	cert, key                      string
	acmeDirectory, acmeEmail       string
	owner                          string // the system user serve runs as
}

func parseQuickstartFlags(args []string, stderr io.Writer) (quickstartFlags, error) {
	var f quickstartFlags
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, quickstartUsage); fs.PrintDefaults() }
	fs.StringVar(&f.dir, "dir", filepath.Dir(config.DefaultPath), "write the config and the DKIM keys into `DIR`")
	fs.StringVar(&f.hostname, "hostname", "", "this server's fully qualified `name`, the one the MX record names (default mail.DOMAIN)")
	fs.StringVar(&f.dataDir, "data-dir", config.Default().DataDir, "the data `directory` (mailboxes, queue, accounts)")
	fs.StringVar(&f.account, "account", "", "the first account's `address` (default postmaster@DOMAIN)")
	fs.StringVar(&f.passwordFile, "password-file", "", "read the first account's password from the first line of `file` (default: generate one and print it once)")
	fs.StringVar(&f.cert, "cert", "", "PEM certificate chain `file` to use instead of [acme] (with -key)")
	fs.StringVar(&f.key, "key", "", "PEM private key `file` of -cert")
	fs.StringVar(&f.acmeDirectory, "acme-directory", DefaultACMEDirectory, "the ACME CA's directory `URL` for [acme]")
	fs.StringVar(&f.acmeEmail, "acme-email", "", "contact `address` of the ACME account (default: the first account)")
	fs.StringVar(&f.owner, "owner", "smtpkit", "the system `user` serve runs as: the data dir and the keys are made its own when it exists (\"\" = leave them to the caller)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return f, err
	}
	if len(pos) != 1 {
		return f, errors.New("want exactly one DOMAIN")
	}
	f.domain = strings.ToLower(strings.TrimSuffix(pos[0], "."))
	if f.hostname == "" {
		f.hostname = "mail." + f.domain
	}
	f.hostname = strings.ToLower(strings.TrimSuffix(f.hostname, "."))
	if f.account == "" {
		f.account = "postmaster@" + f.domain
	}
	if (f.cert == "") != (f.key == "") {
		return f, errors.New("-cert and -key go together")
	}
	return f, nil
}

// quickstartPlan is what quickstart writes, decided before anything is.
type quickstartPlan struct {
	f          quickstartFlags
	configPath string
	keys       []quickstartKey
	account    string // canonical
	accounts   string // the account store's path
}

// quickstartKey is one DKIM key to generate.
type quickstartKey struct {
	algorithm, selector, path string
}

func runQuickstart(args []string, stdio Stdio) int {
	f, err := parseQuickstartFlags(args, stdio.Err)
	if errors.Is(err, flag.ErrHelp) {
		return quickstartOK
	}
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit quickstart: %v\n", err)
		return quickstartUsageE
	}
	p, err := planQuickstart(f)
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit quickstart: %v\n", err)
		return quickstartUsageE
	}
	if existing := p.existing(); len(existing) > 0 {
		fmt.Fprintf(stdio.Err, "smtpkit quickstart: already set up, nothing written:\n")
		for _, e := range existing {
			fmt.Fprintf(stdio.Err, "  %s\n", e)
		}
		fmt.Fprintf(stdio.Err, "quickstart never overwrites: edit %s, or move these away to start over\n", p.configPath)
		return quickstartExists
	}
	if err := p.write(stdio); err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit quickstart: %v\n", err)
		return quickstartFailed
	}
	return quickstartOK
}

// planQuickstart checks the flags and names the files.
func planQuickstart(f quickstartFlags) (quickstartPlan, error) {
	account, err := userdb.Canonical(f.account)
	if err != nil {
		return quickstartPlan{}, fmt.Errorf("-account: %v", err)
	}
	if !strings.HasSuffix(account, "@"+f.domain) {
		return quickstartPlan{}, fmt.Errorf("-account %s is not in %s", account, f.domain)
	}
	dataDir, err := filepath.Abs(f.dataDir)
	if err != nil {
		return quickstartPlan{}, err
	}
	f.dataDir = dataDir
	if f.dir, err = filepath.Abs(f.dir); err != nil {
		return quickstartPlan{}, err
	}
	year := time.Now().UTC().Format("2006")
	p := quickstartPlan{f: f, configPath: filepath.Join(f.dir, filepath.Base(config.DefaultPath)), account: account,
		accounts: filepath.Join(dataDir, "accounts.json")}
	for _, k := range []struct{ alg, sel string }{{dkim.Ed25519, "ed" + year}, {dkim.RSA, "rsa" + year}} {
		p.keys = append(p.keys, quickstartKey{algorithm: k.alg, selector: k.sel,
			path: filepath.Join(f.dir, "dkim", k.sel+"."+f.domain+".pem")})
	}
	// The config the plan writes must be valid: the same check as
	// `config check`, before anything is on disk.
	if _, err := config.Parse([]byte(p.configText()), p.configPath); err != nil {
		return p, fmt.Errorf("the config for these flags does not validate:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return p, nil
}

// existing lists what is already there of what the plan writes.
func (p quickstartPlan) existing() []string {
	var out []string
	paths := []string{p.configPath}
	for _, k := range p.keys {
		paths = append(paths, k.path)
	}
	for _, path := range paths {
		if _, err := os.Lstat(path); err == nil {
			out = append(out, path+" exists")
		}
	}
	if _, err := os.Stat(p.accounts); err == nil {
		if store, err := userdb.Open(p.accounts); err != nil {
			out = append(out, fmt.Sprintf("%s cannot be read: %v", p.accounts, err))
		} else if _, ok := store.Lookup(p.account); ok {
			out = append(out, "the account "+p.account+" exists in "+p.accounts)
		}
	}
	return out
}

// write makes the keys, the account and the config (last: its presence
// means a finished quickstart), then prints the records and the checks.
func (p quickstartPlan) write(stdio Stdio) error {
	owner, note := lookupOwner(p.f.owner)
	if err := os.MkdirAll(filepath.Join(p.f.dir, "dkim"), 0o750); err != nil {
		return err
	}
	records := make([]string, 0, len(p.keys))
	for _, k := range p.keys {
		key, err := dkim.GenerateKey(k.algorithm, 0)
		if err != nil {
			return err
		}
		pemBytes, err := dkim.MarshalKey(key)
		if err != nil {
			return err
		}
		if err := writeNew(k.path, pemBytes, 0o600); err != nil {
			return err
		}
		if err := owner.chown(k.path); err != nil {
			return err
		}
		rec, err := dkim.Record(key.Public())
		if err != nil {
			return err
		}
		records = append(records, dkim.ZoneLine(k.selector, p.f.domain, rec))
	}
	password, generated, err := p.password()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.f.dataDir, 0o700); err != nil {
		return err
	}
	store, err := userdb.Open(p.accounts)
	if err != nil {
		return err
	}
	if err := store.AddAdmin(p.account, password); err != nil {
		return err
	}
	if err := owner.chownTree(p.f.dataDir); err != nil {
		return err
	}
	if err := writeNew(p.configPath, []byte(p.configText()), 0o640); err != nil {
		return err
	}
	if err := owner.chgrp(p.configPath, p.f.dir, filepath.Join(p.f.dir, "dkim")); err != nil {
		return err
	}
	out := stdio.Out
	fmt.Fprintf(out, "wrote %s\n", p.configPath)
	for _, k := range p.keys {
		fmt.Fprintf(out, "wrote %s (DKIM %s, selector %s)\n", k.path, k.algorithm, k.selector)
	}
	fmt.Fprintf(out, "created the account %s (admin) in %s\n", p.account, p.accounts)
	if note != "" {
		fmt.Fprintf(out, "note: %s\n", note)
	}
	if generated {
		fmt.Fprintf(out, "\nits password, shown this once (only a hash is stored): %s\n", password)
	}
	fmt.Fprintln(out)
	p.printDNS(out, records)
	p.printChecks(out)
	return nil
}

// password is the first account's: the -password-file's first line, or
// 26 random base32 characters (130 bits).
func (p quickstartPlan) password() (pw string, generated bool, err error) {
	if p.f.passwordFile != "" {
		b, err := os.ReadFile(p.f.passwordFile)
		if err != nil {
			return "", false, err
		}
		line, _, _ := strings.Cut(string(b), "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			return "", false, fmt.Errorf("%s: the first line is empty", p.f.passwordFile)
		}
		return line, false, nil
	}
	buf := make([]byte, 17)
	if _, err := rand.Read(buf); err != nil {
		return "", false, err
	}
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	return strings.ToLower(enc.EncodeToString(buf))[:26], true, nil
}

// writeNew creates path with data; an existing file is an error, never
// replaced. The data is synced before it is closed.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fileOwner is the system user serve runs as, when it exists and we may
// give files to it (root); the zero value changes nothing.
type fileOwner struct {
	uid, gid int
	set      bool
}

// lookupOwner finds name; the note says why files stay the caller's.
func lookupOwner(name string) (fileOwner, string) {
	if name == "" {
		return fileOwner{}, ""
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fileOwner{}, fmt.Sprintf("no system user %q: the data dir and the keys stay yours; serve must run as a user that can read them (the .deb and packaging/install.sh create %q)", name, name)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if os.Geteuid() != 0 && os.Geteuid() != uid {
		return fileOwner{}, fmt.Sprintf("not root: the data dir and the keys stay yours, not %s's", name)
	}
	return fileOwner{uid: uid, gid: gid, set: true}, ""
}

func (o fileOwner) chown(path string) error {
	if !o.set {
		return nil
	}
	return os.Lchown(path, o.uid, o.gid)
}

// chownTree gives dir and everything in it to the owner.
func (o fileOwner) chownTree(dir string) error {
	if !o.set {
		return nil
	}
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, o.uid, o.gid)
	})
}

// chgrp gives the config file and its directories to the owner's group
// (root stays the owner: serve reads the config, it does not write it).
func (o fileOwner) chgrp(paths ...string) error {
	if !o.set {
		return nil
	}
	for _, p := range paths {
		if err := os.Lchown(p, -1, o.gid); err != nil {
			return err
		}
	}
	return nil
}
