package userdb

import (
	"context"
	"testing"
)

// TestPasswordPreparation: a password stored in one Unicode form verifies
// in the others OpaqueString maps to the same string (RFC 8265 §4.2:
// NFC, non-ASCII spaces as U+0020), in both directions; a different
// password still fails; ASCII is unchanged.
func TestPasswordPreparation(t *testing.T) {
	tests := []struct {
		stored string
		typed  string
		ok     bool
	}{
		{"p\u00e4ss w\u00f6rd", "pa\u0308ss wo\u0308rd", true},    // composed stored, decomposed typed
		{"pa\u0308ss wo\u0308rd", "p\u00e4ss w\u00f6rd", true},    // and the other way
		{"p\u00e4ss w\u00f6rd", "p\u00e4ss\u00a0w\u00f6rd", true}, // no-break space
		{"\u00c5ngstr\u00f6m", "A\u030angstro\u0308m", true},
		{"p\u00e4ss", "pass", false},
		{"pencil", "pencil", true},
	}
	for _, tt := range tests {
		f, _ := newStore(t)
		must(t, f.Add("alice@example.com", tt.stored))
		_, err := f.Authenticate(context.Background(), "alice@example.com", tt.typed)
		if (err == nil) != tt.ok {
			t.Errorf("stored %q, typed %q: err %v, want ok=%v", tt.stored, tt.typed, err, tt.ok)
		}
	}
}
