package mtasts

import (
	"slices"
	"strings"
	"testing"
)

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=STSv1; id=20160831085700Z;", "v=STSv1;id=a", "v=STSv1 ; id=a ; x=y ;", "v=STSv1; id=a; id=b",
		"v=STSv1;", "v=STSv2; id=a", "v=STSv1; id=a;;", "v=STSv1; x=a=b; id=c", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		id, err := ParseRecord(txt)
		if err != nil {
			return
		}
		if !isID(id) {
			t.Fatalf("ParseRecord(%q) = %q: not a valid id", txt, id)
		}
		if !isSTSRecord(txt) {
			t.Fatalf("ParseRecord(%q) accepted a record isSTSRecord discards", txt)
		}
		if !strings.Contains(txt, "id="+id) {
			t.Fatalf("ParseRecord(%q) = %q: not in the record", txt, id)
		}
	})
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n",
		"version: STSv1\nmode: none\nmax_age: 0",
		"version: STSv1\nmode: testing\nmx: A.Example.\nmax_age: 99999999999\n",
		"mode: enforce\nversion:STSv1\n\n x: é \nmx: a\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\rmx: a\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePolicy(body)
		if err != nil {
			return
		}
		switch {
		case p.Mode != Enforce && p.Mode != Testing && p.Mode != None:
			t.Fatalf("mode %q", p.Mode)
		case p.MaxAge < 0 || p.MaxAge > MaxMaxAge:
			t.Fatalf("max_age %v", p.MaxAge)
		case p.Mode != None && len(p.MX) == 0:
			t.Fatalf("mode %s without mx", p.Mode)
		case len(p.Text) == 0:
			t.Fatal("no text lines")
		}
		for _, pat := range p.MX {
			if !isMXPattern(pat) {
				t.Fatalf("mx pattern %q", pat)
			}
			// A pattern's own name (or one instance of its wildcard) matches.
			host := strings.Replace(pat, "*", "x", 1)
			if !p.Matches(host) || !p.Matches(strings.ToUpper(host)+".") {
				t.Fatalf("pattern %q does not match %q", pat, host)
			}
		}
		for _, line := range p.Text {
			if strings.ContainsAny(line, "\r\n") {
				t.Fatalf("text line %q has a line end", line)
			}
		}
		// The text lines are a policy that parses to the same thing.
		q, err := ParsePolicy([]byte(strings.Join(p.Text, "\r\n")))
		if err != nil || q.Mode != p.Mode || q.MaxAge != p.MaxAge || !slices.Equal(q.MX, p.MX) {
			t.Fatalf("reparsing the text lines: %+v, %v; want %+v", q, err, p)
		}
	})
}

func FuzzMatches(f *testing.F) {
	f.Add("*.example.net", "mx1.example.net")
	f.Add("mail.example.com", "MAIL.example.com.")
	f.Add("*.example.net", "a.b.example.net")
	f.Add("*.example.net", "example.net")
	f.Fuzz(func(t *testing.T, pattern, host string) {
		pat := strings.ToLower(strings.TrimSuffix(pattern, "."))
		if !isMXPattern(pat) {
			return
		}
		p := &Policy{MX: []string{pat}}
		got := p.Matches(host)
		h, ascii := asciiLower(strings.TrimSuffix(host, "."))
		var want bool
		if !ascii {
			want = false
		} else if rest, ok := strings.CutPrefix(pat, "*."); ok {
			labels := strings.SplitN(h, ".", 2)
			want = len(labels) == 2 && labels[0] != "" && labels[1] == rest
		} else {
			want = h == pat
		}
		if got != want {
			t.Fatalf("Matches(%q) with pattern %q = %v, want %v", host, pat, got, want)
		}
	})
}
