package internal_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var (
	// literalEnhanced is an enhanced status code (RFC 3463 §2) in a string,
	// not a piece of an RFC section number such as "§4.5.3.1".
	literalEnhanced = regexp.MustCompile(`(?:^|[^§.0-9])[245]\.[0-9]{1,3}\.[0-9]{1,3}(?:[^.0-9]|$)`)
	// literalReply is a string that starts like a reply on the wire: "250 ",
	// "550-" (RFC 5321 §4.2).
	literalReply = regexp.MustCompile(`^[2-5][0-9][0-9][ -]`)
)

// TestNamedReplies keeps reply codes and enhanced codes in one place,
// internal/smtp/codes.go: a non-test file outside internal/smtp that spells
// an enhanced code, starts a string with a reply code, or hands smtp.R,
// smtp.E or an smtp.Reply a number instead of a named code fails. Name the
// code in codes.go (the 5.x.x form; Temp() gives its 4.x.x twin).
func TestNamedReplies(t *testing.T) {
	for _, root := range []string{".", "../cmd"} {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if filepath.ToSlash(path) == "smtp" || d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			for _, p := range literalCodes(t, path) {
				t.Errorf("%s: literal %s; name it in internal/smtp/codes.go", p.pos, p.what)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

type literal struct {
	pos  token.Position
	what string
}

// parseGo parses one Go file.
func parseGo(t *testing.T, path string) (*token.FileSet, *ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fset, f
}

// literalCodes returns the literal codes in one Go file.
func literalCodes(t *testing.T, path string) []literal {
	t.Helper()
	fset, f := parseGo(t, path)
	var found []literal
	add := func(n ast.Node, what string) { found = append(found, literal{fset.Position(n.Pos()), what}) }
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if n.Kind != token.STRING {
				break
			}
			v, err := strconv.Unquote(n.Value)
			if err != nil {
				break
			}
			if literalEnhanced.MatchString(v) {
				add(n, "enhanced code "+n.Value)
			} else if literalReply.MatchString(v) {
				add(n, "reply code "+n.Value)
			}
		case *ast.CallExpr:
			// smtp.R(550, …) and smtp.E(451, …)
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && isIdent(sel.X, "smtp") &&
				(sel.Sel.Name == "R" || sel.Sel.Name == "E") && len(n.Args) > 0 && isInt(n.Args[0]) {
				add(n.Args[0], "reply code in smtp."+sel.Sel.Name)
			}
		case *ast.CompositeLit:
			// smtp.Reply{Code: 250, …}
			if sel, ok := n.Type.(*ast.SelectorExpr); ok && isIdent(sel.X, "smtp") && sel.Sel.Name == "Reply" {
				for _, e := range n.Elts {
					if kv, ok := e.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "Code") && isInt(kv.Value) {
						add(kv.Value, "reply code in smtp.Reply")
					}
				}
			}
		}
		return true
	})
	return found
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func isInt(e ast.Expr) bool {
	b, ok := e.(*ast.BasicLit)
	return ok && b.Kind == token.INT
}

// TestNamedRepliesSees checks the scanner itself on the forms it must
// refuse and the look-alikes it must let pass.
func TestNamedRepliesSees(t *testing.T) {
	src := `package x

import "smtpkit/internal/smtp"

var (
	a = smtp.R(smtp.CodeOK, "2.0.0", "ok")
	b = smtp.Enhanced("4.7.5")
	c = "550 5.1.1 no such user"
	d = smtp.E(451, smtp.EnhSystem, "x")
	e = smtp.Reply{Code: 250}
	f = "relay said 4.4.1 go away"

	ok1 = "RFC 5321 §4.5.3.1.6"
	ok2 = "465"
	ok3 = "127.0.0.1"
	ok4 = "version 1.2.3"
	ok5 = smtp.R(smtp.CodeOK, smtp.EnhOK, "2500 octets")
)
`
	path := filepath.Join(t.TempDir(), "x.go")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, l := range literalCodes(t, path) {
		lines = append(lines, l.pos.Line)
	}
	want := []int{6, 7, 8, 9, 10, 11}
	if !slices.Equal(lines, want) {
		t.Errorf("found literals on lines %v, want %v", lines, want)
	}
}

// repliesFile names, for a package that answers SMTP clients, the one file
// where its replies are built (issue #12): a handler refers to a named
// reply, so every text the package can send is read in one place.
var repliesFile = map[string]string{
	"server":  "replies.go",
	"inbound": "replies.go",
	"local":   "replies.go",
}

// TestRepliesInOneFile fails on an smtp.R or smtp.E call, or an
// smtp.Reply literal with fields, in a non-test file of a package in
// repliesFile other than its replies file.
func TestRepliesInOneFile(t *testing.T) {
	for dir, keep := range repliesFile {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(files, filepath.Join(dir, keep)) {
			t.Errorf("%s: no %s", dir, keep)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") || filepath.Base(path) == keep {
				continue
			}
			for _, p := range replyBuilders(t, path) {
				t.Errorf("%s: %s; name the reply in %s", p.pos, p.what, filepath.Join(dir, keep))
			}
		}
	}
}

// replyBuilders returns the places in one Go file that build a reply.
func replyBuilders(t *testing.T, path string) []literal {
	t.Helper()
	fset, f := parseGo(t, path)
	var found []literal
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && isIdent(sel.X, "smtp") && (sel.Sel.Name == "R" || sel.Sel.Name == "E") {
				found = append(found, literal{fset.Position(n.Pos()), "smtp." + sel.Sel.Name + " call"})
			}
		case *ast.CompositeLit:
			// smtp.Reply{} (no reply, "go on") is allowed anywhere.
			if sel, ok := n.Type.(*ast.SelectorExpr); ok && isIdent(sel.X, "smtp") && sel.Sel.Name == "Reply" && len(n.Elts) > 0 {
				found = append(found, literal{fset.Position(n.Pos()), "smtp.Reply literal"})
			}
		}
		return true
	})
	return found
}

// TestRepliesInOneFileSees checks replyBuilders on the forms it must
// find and the ones it must let pass.
func TestRepliesInOneFileSees(t *testing.T) {
	src := `package x

import "smtpkit/internal/smtp"

var (
	a = smtp.R(smtp.CodeOK, smtp.EnhOK, "ok")
	b = smtp.E(smtp.CodeSyntax, smtp.EnhSyntax, "x")
	c = smtp.Reply{Code: smtp.CodeOK}

	ok1 = smtp.Reply{}
	ok2 = replyOK
	ok3 = smtp.Wrap(replyOK, nil)
)
`
	path := filepath.Join(t.TempDir(), "x.go")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, l := range replyBuilders(t, path) {
		lines = append(lines, l.pos.Line)
	}
	if want := []int{6, 7, 8}; !slices.Equal(lines, want) {
		t.Errorf("found reply builders on lines %v, want %v", lines, want)
	}
}
