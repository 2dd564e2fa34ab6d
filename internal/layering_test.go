// Package internal_test holds the dependency rules between smtpkit's
// packages (docs/architecture.md): dependencies point down, the protocol
// vocabulary imports nothing of ours, the server never sees the queue or
// Maildir, and only cli sees the config.
package internal_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// allowed lists, for each package under internal/, the smtpkit packages
// it may import. A package missing from the table fails the test, so a new
// package must state its place.
var allowed = map[string][]string{
	"smtp":        {},
	"atomicfile":  {},
	"vfs":         {},
	"vfs/crashfs": {"vfs"},
	"testcert":    {}, // test helper: throwaway certificates
	"sasl":        {},
	"config":      {},
	"certs":       {"atomicfile"},
	"wal":         {"vfs"},
	"maildir":     {"vfs", "wal"},
	"local":       {"smtp", "maildir", "userdb"},
	"compose":     {},
	"userdb":      {"atomicfile", "sasl"},
	"tlspolicy":   {"smtp"},
	"control":     {},
	"dns":         {},
	"dns/dnstest": {"dns"},
	"dsn":         {"smtp"},
	"route":       {"dns", "smtp", "tlspolicy"},
	"server":      {"smtp", "sasl"},
	"client":      {"smtp", "sasl", "tlspolicy"},
	"queue":       {"smtp", "dsn", "vfs"},
	"inbound":     {"smtp", "server", "local", "queue"},
	"delivery":    {"smtp", "sasl", "client", "route", "dns", "tlspolicy", "queue", "local"},
	"probe":       {"smtp", "sasl", "client", "route", "tlspolicy"},
	"metrics":     {"queue", "smtp"},
	"loadgen":     {"smtp", "client", "sasl", "tlspolicy"},
	"submit":      {"smtp", "client", "compose", "sasl"},
	"cli":         nil, // wiring: may import everything
}

func TestLayering(t *testing.T) {
	const prefix = "smtpkit/internal/"
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if pkg == "." {
			return nil
		}
		rules, known := allowed[pkg]
		if !known {
			t.Errorf("package internal/%s is not in the layering table (internal/layering_test.go)", pkg)
			return nil
		}
		if rules == nil && pkg == "cli" {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if !strings.HasPrefix(p, prefix) {
				continue
			}
			dep := strings.TrimPrefix(p, prefix)
			ok := false
			for _, a := range rules {
				ok = ok || a == dep
			}
			if !ok {
				t.Errorf("%s imports internal/%s: not allowed for internal/%s", path, dep, pkg)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
