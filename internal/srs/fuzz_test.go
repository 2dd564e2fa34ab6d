package srs

import (
	"testing"

	"smtpkit/internal/smtp"
)

// FuzzParse: Parse never panics; what it accepts formats back to a local
// part that parses to the same fields; Reverse never panics and never
// verifies an address the fuzzer made up unless its hash is ours.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"SRS0=ABCDEF=AA=example.org=alice",
		"srs0=abcdef=zz=example.org=a=b=c",
		"SRS0+ABCDEF=AA=example.org=alice",
		"SRS1=ABCDEF=first.example==HHHH=TT=example.org=alice",
		"SRS1=ABCDEF=first.example=-HHHH=TT=example.org=alice",
		"SRS1=ABCDEF=first.example=",
		"SRS0=====",
		"SRS0",
		"SRS1=",
		"alice",
		"",
	} {
		f.Add(s)
	}
	r, err := New(Options{Secret: []byte("fuzz"), Domain: "fwd.example"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, local string) {
		a, err := Parse(local)
		if _, rerr := r.Reverse(smtp.Address{Local: local, Domain: "fwd.example"}); rerr == nil && err != nil {
			t.Fatalf("Reverse accepted %q that Parse refused: %v", local, err)
		}
		if err != nil {
			return
		}
		b, err := Parse(a.LocalPart())
		if err != nil || b != a {
			t.Fatalf("Parse(%q) = %+v; its LocalPart %q parses to %+v, %v", local, a, a.LocalPart(), b, err)
		}
	})
}
