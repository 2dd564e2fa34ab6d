package client

import (
	"strings"
	"testing"
)

// FuzzParseExtensions: any EHLO reply text gives upper-case, space-free
// keywords and never panics.
func FuzzParseExtensions(f *testing.F) {
	f.Add("mx\nPIPELINING\nSIZE 1000\nauth plain login")
	f.Add("\n\n \n")
	f.Fuzz(func(t *testing.T, s string) {
		for kw := range parseExtensions(strings.Split(s, "\n")) {
			if kw == "" || kw != strings.ToUpper(kw) || strings.ContainsAny(kw, " ") {
				t.Fatalf("keyword %q", kw)
			}
		}
	})
}

// FuzzFormatPath: whatever the caller passes, the path on the wire has no
// CR, LF or extra angle brackets, so it cannot inject a command.
func FuzzFormatPath(f *testing.F) {
	f.Add("a@example.org", true)
	f.Add("x>\r\nRSET", false)
	f.Fuzz(func(t *testing.T, s string, sender bool) {
		p, err := formatPath(s, sender)
		if err != nil {
			return
		}
		inner := strings.TrimSuffix(strings.TrimPrefix(p, "<"), ">")
		if strings.ContainsAny(p, "\r\n") || strings.ContainsAny(inner, "<>") && !strings.Contains(inner, `"`) {
			t.Fatalf("formatPath(%q) = %q", s, p)
		}
	})
}
