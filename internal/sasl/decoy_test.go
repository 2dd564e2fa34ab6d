package sasl

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"
)

// decoyCreds is testCreds with a decoy for unknown names: the salt is a
// hash of the name, as a store's keyed derivation would be.
type decoyCreds struct{ memCreds }

func (decoyCreds) ScramDecoy(username string) ([]byte, int) {
	sum := sha256.Sum256([]byte("decoy " + username))
	return sum[:16], 4096
}

// serverFirst runs client-first for user against creds and returns the
// server-first-message without its nonce (the part that must not tell
// known from unknown names).
func serverFirst(t *testing.T, creds Credentials, user string) string {
	t.Helper()
	srv, err := NewServer(MechScramSHA256, creds)
	if err != nil {
		t.Fatal(err)
	}
	msg, done, err := srv.Next(context.Background(), []byte("n,,n="+user+",r=abc"))
	if done || err != nil {
		t.Fatalf("client-first for %s: done=%v err=%v", user, done, err)
	}
	if srv.Identity() != user {
		t.Errorf("Identity() = %q after client-first, want %q", srv.Identity(), user)
	}
	_, rest, _ := strings.Cut(string(msg), ",")
	return rest // s=...,i=...
}

// TestScramDecoy: with a store that has decoys, an unknown name gets the
// same salt and iteration count in every exchange (RFC 5802 §9), names
// differ from each other, and the shape equals a known account's. Without
// decoys (the old behaviour) the salt changes per exchange.
func TestScramDecoy(t *testing.T) {
	creds := decoyCreds{testCreds()}
	known := serverFirst(t, creds, "alice@example.org")
	a1 := serverFirst(t, creds, "nobody@example.org")
	a2 := serverFirst(t, creds, "nobody@example.org")
	b := serverFirst(t, creds, "other@example.org")
	if a1 != a2 {
		t.Errorf("unknown name got %q, then %q: want the same salt every time", a1, a2)
	}
	if a1 == b {
		t.Errorf("two unknown names got the same salt %q", a1)
	}
	if len(a1) != len(known) || !strings.HasSuffix(a1, ",i=4096") || !strings.HasSuffix(known, ",i=4096") {
		t.Errorf("unknown %q and known %q differ in shape", a1, known)
	}
	if x, y := serverFirst(t, testCreds(), "nobody@example.org"), serverFirst(t, testCreds(), "nobody@example.org"); x == y {
		t.Errorf("without decoys the salt was stable too (%q): the fallback is a fresh salt", x)
	}
	// The decoy exchange still fails, whatever the proof.
	srv, _ := NewServer(MechScramSHA256, creds)
	first, _, _ := srv.Next(context.Background(), []byte("n,,n=nobody@example.org,r=abc"))
	final := scramFinal(t, "any", "n=nobody@example.org,r=abc", string(first), "biws")
	if _, done, err := srv.Next(context.Background(), []byte(final)); !done || err != ErrInvalidCredentials {
		t.Errorf("decoy proof: done=%v err=%v, want ErrInvalidCredentials", done, err)
	}
}

// TestIdentity: every server mechanism reports the claimed name of an
// exchange that failed or did not finish, so the session can count it.
func TestIdentity(t *testing.T) {
	for _, tc := range []struct {
		mech  string
		steps [][]byte
		want  string
	}{
		{MechPlain, [][]byte{[]byte("\x00alice@example.org\x00wrong")}, "alice@example.org"},
		{MechPlain, [][]byte{nil}, ""},
		{MechLogin, [][]byte{nil, []byte("bob@example.org")}, "bob@example.org"},
		{MechLogin, [][]byte{nil}, ""},
		{MechScramSHA256, [][]byte{[]byte("n,,n=carol@example.org,r=abc")}, "carol@example.org"},
	} {
		srv, _ := NewServer(tc.mech, testCreds())
		for _, s := range tc.steps {
			srv.Next(context.Background(), s)
		}
		if got := srv.Identity(); got != tc.want {
			t.Errorf("%s after %q: Identity() = %q, want %q", tc.mech, tc.steps, got, tc.want)
		}
	}
}
