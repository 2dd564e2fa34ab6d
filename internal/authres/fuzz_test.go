package authres

import (
	"strings"
	"testing"
)

// FuzzIsOurs: reading the authserv-id never panics, and a value we would
// write with id is ours.
func FuzzIsOurs(f *testing.F) {
	for _, s := range []string{" mx.test; none", ` "mx.test"; none`, " (a (b) c) mx.test 1; spf=pass", " (", `"`, "((((", `\`} {
		f.Add(s, "mx.test")
	}
	f.Fuzz(func(t *testing.T, value, id string) {
		IsOurs(value, id)
		if id != "" && !strings.ContainsAny(id, " \t\r\n;()\"\\") {
			if !IsOurs(" "+id+"; none", id) {
				t.Errorf("%q not ours", id)
			}
		}
	})
}

// FuzzHeaderScan: any message split anywhere gives the same From domain and
// signatures as written at once.
func FuzzHeaderScan(f *testing.F) {
	f.Add("From: a@b.test\r\nDKIM-Signature: v=1; d=b.test; s=s1;\r\n\r\nbody", 7)
	f.Add("From: \"x\" <a@b.test>, c@B.TEST\r\n\r\n", 1)
	f.Add("\r\nbody", 1)
	f.Fuzz(func(t *testing.T, msg string, cut int) {
		var whole, split headerScan
		whole.feed([]byte(msg))
		if cut < 0 {
			cut = -cut
		}
		cut %= len(msg) + 1
		split.feed([]byte(msg[:cut]))
		split.feed([]byte(msg[cut:]))
		a, b := whole.parse(), split.parse()
		if a.fromDomain != b.fromDomain || a.fromErr != b.fromErr || len(a.signatures) != len(b.signatures) {
			t.Errorf("whole %+v, split at %d %+v", a, cut, b)
		}
	})
}

// FuzzPolicyNone: the RFC 7489 §6.6.3 rewrite never panics, and what it
// returns starts as a record with p=none.
func FuzzPolicyNone(f *testing.F) {
	for _, s := range []string{"v=DMARC1; p=bogus; rua=mailto:a@b.test", "v=DMARC1; rua=mailto:a@b.test,https://x", "v=DMARC1; p=", ";;=;", "v=DMARC1;rua=mailto:@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		if out, ok := policyNone(txt); ok && !strings.HasPrefix(out, "v=DMARC1; p=none") {
			t.Errorf("%q → %q", txt, out)
		}
	})
}
