package cli

// user.go: `smtpkit user add|passwd|del|list|alias` — manage the account
// store (internal/userdb) of the configured data directory. The running
// server notices the changes by itself; no restart or reload is needed.

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/term"

	"smtpkit/internal/config"
	"smtpkit/internal/userdb"
)

const userUsage = `usage:
  smtpkit user add    [-config FILE] [-admin] ADDRESS   create an account (asks for a password);
                                                    -admin: it may log in to the status page
  smtpkit user admin  [-config FILE] ADDRESS yes|no create or take away an account's admin mark
  smtpkit user passwd [-config FILE] ADDRESS        change an account's password
  smtpkit user del    [-config FILE] ADDRESS        delete an account (its Maildir is kept)
  smtpkit user list   [-config FILE] [-json]        list accounts, one per line ("admin" after admins)
  smtpkit user alias add  [-config FILE] ALIAS TARGET...   add targets to an alias
  smtpkit user alias del  [-config FILE] ALIAS             delete an alias
  smtpkit user alias list [-config FILE] [-json]           list aliases

The password is read twice without echo from a terminal, or as one line
from standard input otherwise. The store is <data_dir>/accounts.json.
`

// userCmd is one `smtpkit user` subcommand: the positional arguments it
// needs (-1: at least one more than min) and its action.
type userCmd struct {
	min, max int // number of positional arguments
	json     bool
	admin    bool // takes -admin
	write    bool // creates the data directory if needed
	run      func(u *userEnv, args []string) error
}

// userEnv is what a subcommand's action works with.
type userEnv struct {
	stdio   Stdio
	cfg     config.Config
	store   *userdb.File
	jsonOut bool
	admin   bool // -admin
}

func userCommands() map[string]userCmd {
	return map[string]userCmd{
		"add":        {min: 1, max: 1, write: true, admin: true, run: (*userEnv).add},
		"admin":      {min: 2, max: 2, run: (*userEnv).setAdmin},
		"passwd":     {min: 1, max: 1, run: (*userEnv).passwd},
		"del":        {min: 1, max: 1, run: (*userEnv).del},
		"list":       {json: true, run: (*userEnv).list},
		"alias add":  {min: 2, max: -1, write: true, run: (*userEnv).aliasAdd},
		"alias del":  {min: 1, max: 1, run: (*userEnv).aliasDel},
		"alias list": {json: true, run: (*userEnv).aliasList},
	}
}

// errUsage marks a mistake in the command line (exit code 2).
var errUsage = errors.New("usage")

func runUser(args []string, stdio Stdio) int {
	name, rest := userSubcommand(args)
	if name == "" || name == "help" || name == "-h" || name == "--help" {
		fmt.Fprint(stdio.Err, userUsage)
		if name == "" {
			return 2
		}
		return 0
	}
	cmd, ok := userCommands()[name]
	if !ok {
		fmt.Fprintf(stdio.Err, "smtpkit user: unknown subcommand %q\n\n%s", name, userUsage)
		return 2
	}
	env, pos, err := setupUser(name, cmd, rest, stdio)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errUsage) {
		fmt.Fprint(stdio.Err, userUsage)
		return 2
	}
	if err == nil {
		err = cmd.run(env, pos)
	}
	if err != nil {
		fmt.Fprintf(stdio.Err, "smtpkit user %s: %v\n", name, err)
		return 1
	}
	return 0
}

// userSubcommand splits off "add", "list", ... or "alias add", ...
func userSubcommand(args []string) (string, []string) {
	switch {
	case len(args) == 0:
		return "", nil
	case args[0] == "alias" && len(args) > 1:
		return "alias " + args[1], args[2:]
	}
	return args[0], args[1:]
}

// setupUser parses the flags (allowed anywhere among the arguments), checks
// the number of positional arguments, loads the config and opens the store.
func setupUser(name string, cmd userCmd, args []string, stdio Stdio) (*userEnv, []string, error) {
	fs := flag.NewFlagSet("smtpkit user "+name, flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	cfgPath := fs.String("config", "", "config `file` (default "+config.DefaultPath+" if it exists, else the development default)")
	var jsonOut, admin *bool
	if cmd.json {
		jsonOut = fs.Bool("json", false, "print JSON")
	}
	if cmd.admin {
		admin = fs.Bool("admin", false, "mark the account admin: it may log in to the status page")
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, errUsage
	}
	if len(pos) < cmd.min || (cmd.max >= 0 && len(pos) > cmd.max) {
		return nil, nil, errUsage
	}
	cfg, source, err := resolveConfig(*cfgPath, stdio.Err)
	if err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", source, err)
	}
	if cmd.write {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, nil, err
		}
	}
	var store *userdb.File
	if cfg.Cluster.Database != "" {
		// Cluster mode: the accounts of every node, in the database; a
		// change is one transaction, served by every node within
		// userdb.DefaultTTL. (The connections end with the command.)
		store, _, err = openClusterAccounts(cfg.Cluster.Database, userdb.Options{})
	} else {
		store, err = userdb.Open(filepath.Join(cfg.DataDir, "accounts.json"))
	}
	if err != nil {
		return nil, nil, err
	}
	env := &userEnv{stdio: stdio, cfg: cfg, store: store}
	if jsonOut != nil {
		env.jsonOut = *jsonOut
	}
	if admin != nil {
		env.admin = *admin
	}
	return env, pos, nil
}

// parseInterspersed parses fs over args, allowing flags after positional
// arguments ("add alice@example.com -config f"); "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// localDomain checks that addr's domain is one of the configured domains.
func (u *userEnv) localDomain(addr string) error {
	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	var names []string
	for _, d := range u.cfg.Domains {
		if strings.EqualFold(d.Name, domain) {
			return nil
		}
		names = append(names, d.Name)
	}
	return fmt.Errorf("%s is not a local domain (the config lists: %s); add a [[domain]] first",
		domain, strings.Join(names, ", "))
}

func (u *userEnv) add(args []string) error {
	addr, err := userdb.Canonical(args[0])
	if err != nil {
		return err
	}
	if err := u.localDomain(addr); err != nil {
		return err
	}
	if _, ok := u.store.Lookup(addr); ok {
		return fmt.Errorf("%w: account %s", userdb.ErrExists, addr)
	}
	pw, err := readPassword(u.stdio)
	if err != nil {
		return err
	}
	add, what := u.store.Add, ""
	if u.admin {
		add, what = u.store.AddAdmin, " (admin)"
	}
	if err := add(addr, pw); err != nil {
		return err
	}
	fmt.Fprintf(u.stdio.Err, "added %s%s\n", addr, what)
	return nil
}

func (u *userEnv) setAdmin(args []string) error {
	var admin bool
	switch strings.ToLower(args[1]) {
	case "yes", "true", "on":
		admin = true
	case "no", "false", "off":
	default:
		return fmt.Errorf("%q: want yes or no", args[1])
	}
	if err := u.store.SetAdmin(args[0], admin); err != nil {
		return err
	}
	if admin {
		fmt.Fprintf(u.stdio.Err, "%s is admin (may log in to the status page)\n", strings.ToLower(args[0]))
	} else {
		fmt.Fprintf(u.stdio.Err, "%s is not admin\n", strings.ToLower(args[0]))
	}
	return nil
}

func (u *userEnv) passwd(args []string) error {
	if _, ok := u.store.Lookup(args[0]); !ok {
		return fmt.Errorf("%w: %s", userdb.ErrNotFound, args[0])
	}
	pw, err := readPassword(u.stdio)
	if err != nil {
		return err
	}
	if err := u.store.SetPassword(args[0], pw); err != nil {
		return err
	}
	fmt.Fprintf(u.stdio.Err, "password changed for %s\n", strings.ToLower(args[0]))
	return nil
}

func (u *userEnv) del(args []string) error {
	if err := u.store.Delete(args[0]); err != nil {
		return err
	}
	fmt.Fprintf(u.stdio.Err, "deleted %s (its Maildir is kept)\n", strings.ToLower(args[0]))
	return nil
}

func (u *userEnv) list([]string) error {
	accounts := u.store.List()
	if u.jsonOut {
		type entry struct {
			Address string `json:"address"`
			Admin   bool   `json:"admin,omitempty"`
		}
		out := make([]entry, 0, len(accounts))
		for _, a := range accounts {
			out = append(out, entry{a.Address, a.Admin})
		}
		return writeJSON(u.stdio.Out, out)
	}
	for _, a := range accounts {
		if a.Admin {
			fmt.Fprintln(u.stdio.Out, a.Address+" admin")
		} else {
			fmt.Fprintln(u.stdio.Out, a.Address)
		}
	}
	return nil
}

func (u *userEnv) aliasAdd(args []string) error {
	alias, err := userdb.Canonical(args[0])
	if err != nil {
		return err
	}
	if err := u.localDomain(alias); err != nil {
		return err
	}
	if err := u.store.AddAlias(alias, args[1:]...); err != nil {
		return err
	}
	for _, t := range args[1:] {
		// A target in a local domain that nothing receives would bounce.
		if u.localDomain(t) == nil {
			if _, ok := u.store.Resolve(t); !ok {
				fmt.Fprintf(u.stdio.Err, "warning: %s is in a local domain but is no account or alias\n", t)
			}
		}
	}
	fmt.Fprintf(u.stdio.Err, "alias %s -> %s\n", alias, strings.Join(u.store.Aliases()[alias], ", "))
	return nil
}

func (u *userEnv) aliasDel(args []string) error {
	if err := u.store.DeleteAlias(args[0]); err != nil {
		return err
	}
	fmt.Fprintf(u.stdio.Err, "deleted alias %s\n", strings.ToLower(args[0]))
	return nil
}

func (u *userEnv) aliasList([]string) error {
	aliases := u.store.Aliases()
	if u.jsonOut {
		return writeJSON(u.stdio.Out, aliases)
	}
	names := make([]string, 0, len(aliases))
	for a := range aliases {
		names = append(names, a)
	}
	slices.Sort(names)
	for _, a := range names {
		fmt.Fprintf(u.stdio.Out, "%s -> %s\n", a, strings.Join(aliases[a], ", "))
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readPassword asks twice without echo on a terminal; otherwise it reads
// one line from stdin (for scripts: `echo pw | smtpkit user add ...`).
func readPassword(stdio Stdio) (string, error) {
	if f, ok := stdio.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return promptPassword(int(f.Fd()), stdio.Err)
	}
	line, err := bufio.NewReader(stdio.In).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", errors.New("no password on standard input")
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("empty password")
	}
	return pw, nil
}

func promptPassword(fd int, prompt io.Writer) (string, error) {
	fmt.Fprint(prompt, "Password: ")
	first, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", err
	}
	fmt.Fprint(prompt, "Again: ")
	second, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", err
	}
	if string(first) != string(second) {
		return "", errors.New("the passwords do not match")
	}
	if len(first) == 0 {
		return "", errors.New("empty password")
	}
	return string(first), nil
}
