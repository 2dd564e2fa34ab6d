package compose

import (
	"mime"
	"strings"
	"testing"
)

// FuzzFormatField checks the header encoder on any value: the field is one
// CRLF-terminated line or folded lines, each within 998 octets, only
// printable ASCII and tabs, no line of only whitespace; and unfolding then
// decoding the encoded-words gives back the value exactly.
func FuzzFormatField(f *testing.F) {
	for _, s := range []string{"", "hello", "Grüße", "=?utf-8?q?x?=", "a  b", "   ", "\r\n", "\t", strings.Repeat("x", 1200),
		strings.Repeat("日本語 ", 50), "a" + strings.Repeat(" ", 1000) + "b", "\xff\xfe", "x_y?z="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		out := FormatField("Subject", v)
		if !strings.HasPrefix(out, "Subject: ") || !strings.HasSuffix(out, "\r\n") {
			t.Fatalf("bad field %q", out)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
		for i, l := range lines {
			if len(l) > maxLine {
				t.Fatalf("line of %d octets", len(l))
			}
			if i > 0 && (l == "" || strings.Trim(l, " \t") == "" || (l[0] != ' ' && l[0] != '\t')) {
				t.Fatalf("bad continuation line %q in %q", l, out)
			}
			for j := 0; j < len(l); j++ {
				if c := l[j]; (c < 32 && c != '\t') || c > 126 {
					t.Fatalf("octet %#x in %q", c, out)
				}
			}
		}
		value := strings.TrimPrefix(Unfold(strings.TrimSuffix(out, "\r\n")), "Subject: ")
		got, err := new(mime.WordDecoder).DecodeHeader(value)
		if err != nil {
			t.Fatalf("decoding %q: %v", value, err)
		}
		if got != v {
			t.Fatalf("round trip: %q → %q → %q", v, out, got)
		}
	})
}

// FuzzSplit checks that splitting any CRLF text into header and body and
// joining it again loses nothing but may add the separating empty line.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"A: 1\r\n\r\nb\r\n", "x\r\n", "A: 1\r\n b\r\nc\r\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		msg := ToCRLF([]byte(s))
		h, body := Split(msg)
		if !strings.HasSuffix(string(msg), string(body)) {
			t.Fatalf("body %q is not the end of %q", body, msg)
		}
		head := string(msg[:len(msg)-len(body)])
		out := string(Join(h, body))
		if out != string(msg) && out != head+"\r\n"+string(body) {
			t.Fatalf("Split/Join(%q) = %q", msg, out)
		}
		for _, f := range h.Fields {
			_ = f.Value()
		}
	})
}

// FuzzRecipients checks the -t recipient reader on any header: it does not
// panic, and what it returns is either an address net/mail accepts or a
// local name without the characters of an address.
func FuzzRecipients(f *testing.F) {
	for _, s := range []string{"To: a@b.example, C <c@d.example>\r\n\r\n", "To: root, admin\r\n\r\n",
		"Cc: g:a@b.example;\r\nBcc: x@y,\r\n z@w\r\n\r\n", "To: <a@\r\n\r\n", "To: ,,\r\n\r\n", "To: \"a b\"@c\r\n\r\n",
		"To: alice, bob@localhost\r\n\r\n", "To: Alice <alice>\r\n\r\n", "To: \"S, J\" <j>, c (x, y), g: d;\r\n\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, _ := Split(ToCRLF([]byte(s)))
		list, err := h.Recipients()
		if err != nil {
			return
		}
		for _, r := range list {
			if r == "" {
				t.Fatalf("empty recipient from %q", s)
			}
			if strings.ContainsAny(r, "@<>\" ()[]:;") {
				continue // an address: net/mail parsed it
			}
			if strings.TrimSpace(r) != r || strings.Contains(r, ",") {
				t.Fatalf("local name %q from %q", r, s)
			}
		}
		// Qualified, every recipient field with recipients is an RFC 5322
		// address list naming the same ones, with the domain.
		h.QualifyRecipients("q.example")
		var again []string
		for _, f := range h.Fields {
			if !strings.EqualFold(f.Name, "To") && !strings.EqualFold(f.Name, "Cc") && !strings.EqualFold(f.Name, "Bcc") {
				continue
			}
			one := Header{Fields: []Field{f}}
			addrs, err := one.Addresses(f.Name)
			if err != nil {
				if loose, _ := looseAddrs(f.Value()); len(loose) > 0 {
					t.Fatalf("after QualifyRecipients of %q: %q: %v", s, f.Raw, err)
				}
				continue
			}
			for _, a := range addrs {
				again = append(again, a.Address)
			}
		}
		if len(again) != len(list) {
			t.Fatalf("%q: %d recipients, %d after QualifyRecipients", s, len(list), len(again))
		}
		for i, a := range again {
			if want := list[i]; a != want && a != want+"@q.example" {
				t.Fatalf("%q: recipient %d is %q, was %q", s, i, a, want)
			}
		}
	})
}
