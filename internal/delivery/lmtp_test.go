package delivery

import "testing"

// TestLMTPRoutes: a mailbox's own entry wins over its domain's, "" keeps
// it in its Maildir, names match case-insensitively, Set replaces all.
func TestLMTPRoutes(t *testing.T) {
	r := NewLMTPRoutes()
	if _, ok := r.Route("a@example.org"); ok {
		t.Fatal("an empty table routes")
	}
	r.Set(map[string]string{"Example.ORG": "unix:/run/dovecot/lmtp"},
		map[string]string{"Keep@example.org": "", "carol@example.org": "127.0.0.1:24", "solo@other.example": "[::1]:24"})
	for _, tt := range []struct {
		box, dest string
		ok        bool
	}{
		{"alice@example.org", "unix:/run/dovecot/lmtp", true},
		{"ALICE@EXAMPLE.org", "unix:/run/dovecot/lmtp", true},
		{"keep@Example.org", "", false},
		{"carol@example.org", "127.0.0.1:24", true},
		{"solo@other.example", "[::1]:24", true},
		{"someone@other.example", "", false},
		{"no-domain", "", false},
	} {
		dest, ok := r.Route(tt.box)
		if dest != tt.dest || ok != tt.ok || r.Handed(tt.box) != tt.ok {
			t.Errorf("Route(%q) = %q, %v; want %q, %v", tt.box, dest, ok, tt.dest, tt.ok)
		}
	}
	r.Set(nil, nil)
	if r.Handed("alice@example.org") {
		t.Error("Set(nil, nil) kept the old table")
	}
}
