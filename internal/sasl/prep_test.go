package sasl

import "testing"

func TestPreparePassword(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"pencil", "pencil", true},
		{"correct horse battery", "correct horse battery", true}, // ASCII space kept
		{"a\u00a0b", "a b", true},                                // non-ASCII space → U+0020 (RFC 8265 §4.2.1)
		{"\u2163", "\u2163", true},                               // ROMAN NUMERAL FOUR: OpaqueString keeps compatibility chars
		{"e\u0301t\u00e9", "\u00e9t\u00e9", true},                // NFC
		{"\ufb01x", "\ufb01x", true},                             // ligature kept (OpaqueString does not NFKC)
		{"tab\there", "tab\there", false},                        // control character: refused, used as is
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := PreparePassword(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("PreparePassword(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPrepareUsername(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"alice@example.org", "alice@example.org", true},
		{"Alice@Example.org", "Alice@Example.org", true}, // case preserved
		{"ａｌｉｃｅ", "alice", true},                         // full width mapped (RFC 8265 §3.4.1)
		{"jo\u0308rg", "j\u00f6rg", true},                // NFC
		{"a b", "a b", false},                            // spaces refused
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := PrepareUsername(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("PrepareUsername(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestNonASCIIPasswordForms: a password typed in decomposed form, or with
// a no-break space, authenticates against keys and passwords made from the
// composed form, through SCRAM, PLAIN and LOGIN.
func TestNonASCIIPasswordForms(t *testing.T) {
	const stored = "p\u00e4ss w\u00f6rd" // composed, ASCII space
	typed := []string{stored, "pa\u0308ss wo\u0308rd", "p\u00e4ss\u00a0w\u00f6rd"}
	salt := []byte("0123456789abcdef")
	creds := memCreds{
		passwords: map[string]string{"j\u00f6rg@example.org": stored},
		keys:      map[string]ScramKeys{"j\u00f6rg@example.org": NewScramKeys(typed[1], salt, MinIterations)},
	}
	for _, pw := range typed {
		for _, user := range []string{"j\u00f6rg@example.org", "jo\u0308rg@example.org"} {
			clients := map[string]Client{
				MechScramSHA256: NewScramSHA256Client(user, pw),
				MechPlain:       NewPlainClient("", user, pw),
				MechLogin:       NewLoginClient(user, pw),
			}
			for mech, c := range clients {
				srv, err := NewServer(mech, creds)
				if err != nil {
					t.Fatal(err)
				}
				if err := drive(t, c, srv); err != nil {
					t.Errorf("%s %q/%q: %v", mech, user, pw, err)
				}
			}
		}
	}
}
