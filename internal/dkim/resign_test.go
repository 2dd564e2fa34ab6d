package dkim

import (
	"strings"
	"testing"
)

// TestOwn: the DKIM-Signature fields made by one of the signer's keys
// (d= and s=, any case, folded anywhere) are taken out and their keys
// returned once each; every other field stays byte for byte.
func TestOwn(t *testing.T) {
	ed, _ := testKeys(t)
	s, err := New([]Key{{Domain: "example.com", Selector: "ed", Signer: ed}, {Domain: "example.com", Selector: "two", Signer: ed}})
	if err != nil {
		t.Fatal(err)
	}
	const (
		ours    = "DKIM-Signature: v=1; a=ed25519-sha256; d=example.com;\r\n s=ed; b=abc\r\n def\r\n"
		folded  = "dkim-signature: v=1; d = Example.COM. ;\r\n\ts\r\n =\r\n two ; b=x\r\n"
		other   = "DKIM-Signature: v=1; d=example.org; s=ed; b=abc\r\n"
		otherS  = "DKIM-Signature: v=1; d=example.com; s=old; b=abc\r\n"
		foreign = "X-Other: d=example.com; s=ed\r\n"
	)
	tests := []struct {
		name, fields, rest string
		keys               []string
	}{
		{"empty", "", "", nil},
		{"ours", ours, "", []string{"ed"}},
		{"ours twice", ours + ours, "", []string{"ed"}},
		{"folded, case", folded, "", []string{"two"}},
		{"both keys", ours + folded, "", []string{"ed", "two"}},
		{"other domain kept", other + ours, other, []string{"ed"}},
		{"unknown selector kept", otherS, otherS, nil},
		{"other field kept", ours + foreign, foreign, []string{"ed"}},
		{"no final CRLF", "X-A: 1", "X-A: 1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, rest := s.Own(tt.fields)
			var sel []string
			for _, k := range keys {
				sel = append(sel, k.Selector)
			}
			if strings.Join(sel, ",") != strings.Join(tt.keys, ",") || rest != tt.rest {
				t.Errorf("Own = %v, %q; want %v, %q", sel, rest, tt.keys, tt.rest)
			}
		})
	}
	var none *Signer
	if keys, rest := none.Own(ours); keys != nil || rest != ours {
		t.Errorf("nil signer: %v, %q", keys, rest)
	}
}

// TestBeginWith: the keys given sign whatever the From domain (the
// message was signed by them before a conversion changed it).
func TestBeginWith(t *testing.T) {
	ed, _ := testKeys(t)
	k := Key{Domain: "example.com", Selector: "ed", Signer: ed}
	s, err := New([]Key{k})
	if err != nil {
		t.Fatal(err)
	}
	m := msg("From: a@elsewhere.example\r\nSubject: x\r\n")
	w := s.BeginWith([]Key{k})
	w.Write(m)
	fields, err := w.Finish()
	if err != nil || fields == "" {
		t.Fatalf("Finish: %q, %v", fields, err)
	}
	if ok, bad := verify(t, append([]byte(fields), m...), []Key{k}); len(ok) != 1 || len(bad) != 0 {
		t.Errorf("verified %v, errors %v", ok, bad)
	}
}
