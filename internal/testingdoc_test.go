package internal_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestTestingDocPackages keeps docs/testing.md true about the test
// command: it names every Debian package scripts/install-test-deps.sh
// installs, and every step test.sh runs before the fuzz pass.
func TestTestingDocPackages(t *testing.T) {
	script, err := os.ReadFile("../scripts/install-test-deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/testing.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^packages=\(([^)]*)\)`).FindSubmatch(script)
	if m == nil {
		t.Fatal("install-test-deps.sh: no packages=(...) line")
	}
	section := string(doc)
	if i := strings.Index(section, "## What install-test-deps.sh installs"); i >= 0 {
		section = section[i:]
	}
	for _, p := range strings.Fields(string(m[1])) {
		if !regexp.MustCompile("(^|[`\\s])" + regexp.QuoteMeta(p) + "([`\\s]|$)").MatchString(section) {
			t.Errorf("docs/testing.md does not name the package %s that install-test-deps.sh installs", p)
		}
	}
	if !strings.Contains(string(script), "DPkg::Lock::Timeout") {
		t.Error("install-test-deps.sh: apt-get without a lock timeout")
	}

	test, err := os.ReadFile("../scripts/test.sh")
	if err != nil {
		t.Fatal(err)
	}
	fixed := len(regexp.MustCompile(`(?m)^step "[^"$]+"`).FindAll(test, -1))
	if want := fmt.Sprintf("So the count is %d plus the number of fuzz targets", fixed); !strings.Contains(string(doc), want) {
		t.Errorf("docs/testing.md should say %q: test.sh has %d steps before the fuzz pass", want, fixed)
	}
}
