package internal_test

import (
	"bufio"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// modules names the third-party modules in docs/architecture.md's import
// column (docs/deps.md says why each is there).
var modules = map[string]string{
	"github.com/BurntSushi/toml":          "toml",
	"golang.org/x/crypto":                 "x/crypto",
	"golang.org/x/term":                   "x/term",
	"golang.org/x/sys":                    "x/sys",
	"github.com/miekg/dns":                "miekg/dns",
	"github.com/prometheus/client_golang": "prometheus",
	"github.com/emersion/go-msgauth":      "go-msgauth",
	"blitiri.com.ar/go/spf":               "spf",
	"golang.org/x/net":                    "x/net",
	"github.com/emersion/go-milter":       "go-milter",
	"golang.org/x/text":                   "x/text",
	"github.com/jackc/pgx/v5":             "pgx",
}

const modulePrefix = "smtpkit/internal/"

// pkgImports is what the non-test files of one package import.
type pkgImports struct {
	ours  map[string]bool // smtpkit packages, relative to internal/
	other map[string]bool // third-party modules, by their name in modules
}

// scanImports reads the imports of every package under internal/ (this
// directory), test files left out: tests may reach further.
func scanImports(t *testing.T) map[string]*pkgImports {
	t.Helper()
	pkgs := map[string]*pkgImports{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if pkg == "." || strings.Contains(pkg, "testdata") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		p := pkgs[pkg]
		if p == nil {
			p = &pkgImports{ours: map[string]bool{}, other: map[string]bool{}}
			pkgs[pkg] = p
		}
		for _, imp := range f.Imports {
			ip := strings.Trim(imp.Path.Value, `"`)
			switch {
			case strings.HasPrefix(ip, modulePrefix):
				p.ours[strings.TrimPrefix(ip, modulePrefix)] = true
			case isStdlib(ip):
			default:
				name, ok := moduleName(ip)
				if !ok {
					t.Errorf("%s imports %s: a module the test does not know; name it in modules (internal/layering_test.go) and docs/deps.md", path, ip)
					continue
				}
				p.other[name] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// isStdlib reports an import path of the standard library: its first
// element has no dot.
func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func moduleName(path string) (string, bool) {
	for mod, name := range modules {
		if path == mod || strings.HasPrefix(path, mod+"/") {
			return name, true
		}
	}
	return "", false
}

func TestLayering(t *testing.T) {
	pkgs := scanImports(t)
	for _, pkg := range slices.Sorted(maps.Keys(pkgs)) {
		rules, known := allowed[pkg]
		if !known {
			t.Errorf("package internal/%s is not in the layering table (internal/layering_test.go)", pkg)
			continue
		}
		if rules == nil && pkg == "cli" {
			continue
		}
		for _, dep := range slices.Sorted(maps.Keys(pkgs[pkg].ours)) {
			if !slices.Contains(rules, dep) {
				t.Errorf("internal/%s imports internal/%s: not allowed (internal/layering_test.go)", pkg, dep)
			}
		}
		for _, dep := range rules {
			if !pkgs[pkg].ours[dep] {
				t.Errorf("internal/%s may import internal/%s but no file does: drop the edge from internal/layering_test.go", pkg, dep)
			}
		}
	}
	for pkg := range allowed {
		if pkgs[pkg] == nil {
			t.Errorf("internal/%s is in the layering table but has no Go files", pkg)
		}
	}
}

// TestArchitectureDoc checks docs/architecture.md's table against the
// code: every package under internal/ has a row; its "imports" column
// names exactly the smtpkit packages its non-test files import (cli:
// "everything") and the third-party modules, by their names in modules
// ("stdlib" is free text); and every smtpkit package a row imports has its
// row further down, so that dependencies point down the list.
func TestArchitectureDoc(t *testing.T) {
	const doc = "docs/architecture.md"
	pkgs := scanImports(t)
	rows := readArchitectureTable(t, "../"+doc)
	for _, pkg := range slices.Sorted(maps.Keys(pkgs)) {
		row, ok := rows[pkg]
		if !ok {
			t.Errorf("%s: no row for internal/%s", doc, pkg)
			continue
		}
		for _, dep := range slices.Sorted(maps.Keys(pkgs[pkg].ours)) {
			if r, ok := rows[dep]; ok && r.line < row.line {
				t.Errorf("%s: internal/%s (line %d) imports internal/%s, whose row is above it (line %d)", doc, pkg, row.line, dep, r.line)
			}
		}
		if pkg == "cli" {
			if !slices.Equal(row.imports, []string{"everything"}) {
				t.Errorf("%s: internal/cli imports %v, want everything", doc, row.imports)
			}
			continue
		}
		want := append(slices.Sorted(maps.Keys(pkgs[pkg].ours)), slices.Sorted(maps.Keys(pkgs[pkg].other))...)
		var got []string
		for _, w := range row.imports {
			if w != "stdlib" && w != "stdlib only" {
				got = append(got, w)
			}
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: internal/%s imports %s; the table says %s", doc, pkg, orStdlib(want), orStdlib(got))
		}
	}
	for _, pkg := range slices.Sorted(maps.Keys(rows)) {
		if pkgs[pkg] == nil {
			t.Errorf("%s: a row for internal/%s, which has no Go files", doc, pkg)
		}
	}
}

func orStdlib(deps []string) string {
	if len(deps) == 0 {
		return "stdlib"
	}
	return strings.Join(deps, ", ")
}

// docRow is one package's row of the architecture table.
type docRow struct {
	line    int
	imports []string // the words of the last column
}

// readArchitectureTable returns the rows of the table whose first column
// names `internal/x` packages.
func readArchitectureTable(t *testing.T, path string) map[string]docRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]docRow{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		cells := strings.Split(strings.Trim(strings.TrimSpace(sc.Text()), "|"), "|")
		if len(cells) != 3 || !strings.Contains(cells[0], "`internal/") {
			continue
		}
		row := docRow{line: line}
		for _, w := range strings.Split(cells[2], ",") {
			if w = strings.Trim(strings.TrimSpace(w), "`"); w != "" {
				row.imports = append(row.imports, w)
			}
		}
		for _, name := range strings.Split(cells[0], ",") {
			name = strings.TrimPrefix(strings.Trim(strings.TrimSpace(name), "`"), "internal/")
			if _, dup := rows[name]; dup {
				t.Errorf("%s:%d: a second row for internal/%s", path, line, name)
			}
			rows[name] = row
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}
