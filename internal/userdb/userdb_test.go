package userdb

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// newStore opens an empty store in a temp dir.
func newStore(t *testing.T) (*File, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "accounts.json")
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	return f, p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"alice@example.com", "alice@example.com"},
		{" Alice.Smith@EXAMPLE.com ", "alice.smith@example.com"},
		{"o'brien@example.com", "o'brien@example.com"},
		{"jörg@example.com", "jörg@example.com"},
		{"a@b", "a@b"},
		{"", ""},
		{"alice", ""},
		{"@example.com", ""},
		{"alice@", ""},
		{"a+b@example.com", ""},
		{"../x@example.com", ""},
		{"a/b@example.com", ""},
		{".a@example.com", ""},
		{"a..b@example.com", ""},
		{"a b@example.com", ""},
		{"\"q\"@example.com", ""},
		{"a@exa_mple.com", ""},
		{"a@-x.com", ""},
		{"a@x..com", ""},
		{"a@example.com.", ""},
		{"a@ex/ample.com", ""},
		{"a\x00@example.com", ""},
		{strings.Repeat("a", 65) + "@example.com", ""},
	} {
		got, err := Canonical(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("Canonical(%q) = %q, want error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// fixture is a store with two accounts and a few aliases.
func fixture(t *testing.T) *File {
	t.Helper()
	f, _ := newStore(t)
	must(t, f.Add("alice@example.com", "alice-pw"))
	must(t, f.Add("Bob@Example.com", "bob-pw"))
	must(t, f.AddAlias("info@example.com", "alice@example.com", "BOB@example.com"))
	must(t, f.AddAlias("team@example.com", "info@example.com", "Ext.User@Remote.NET", "alice+team@example.com"))
	must(t, f.AddAlias("postmaster@example.com", "alice@example.com"))
	must(t, f.AddAlias("loop1@example.com", "loop2@example.com"))
	must(t, f.AddAlias("loop2@example.com", "loop1@example.com"))
	return f
}

func TestResolve(t *testing.T) {
	f := fixture(t)
	for _, tc := range []struct {
		in   string
		want []string // nil: not ok
	}{
		{"alice@example.com", []string{"alice@example.com"}},
		{"ALICE@Example.COM", []string{"alice@example.com"}},
		{"bob@example.com", []string{"bob@example.com"}},
		{"alice+news@example.com", []string{"alice@example.com"}},
		{"alice+@example.com", []string{"alice@example.com"}},
		{"alice+a+b@example.com", []string{"alice@example.com"}},
		{"+tag@example.com", nil},
		{"info@example.com", []string{"alice@example.com", "bob@example.com"}},
		{"info+x@example.com", []string{"alice@example.com", "bob@example.com"}},
		{"team@example.com", []string{"alice@example.com", "bob@example.com", "Ext.User@remote.net"}},
		{"postmaster@example.com", []string{"alice@example.com"}},
		{"POSTMASTER@example.com", []string{"alice@example.com"}},
		{"postmaster@example.org", []string{"postmaster@example.org"}},
		{"PostMaster@Example.ORG", []string{"postmaster@example.org"}},
		{"postmaster+x@example.org", nil},
		{"nobody@example.com", nil},
		{"alice@example.org", nil},
		{"loop1@example.com", nil},
		{"not-an-address", nil},
		{"", nil},
	} {
		got, ok := f.Resolve(tc.in)
		if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

func TestAliasDepthBounded(t *testing.T) {
	f, _ := newStore(t)
	must(t, f.Add("end@example.com", "pw"))
	prev := "end@example.com"
	for i := range maxAliasDepth + 3 {
		name := "hop" + string(rune('a'+i)) + "@example.com"
		must(t, f.AddAlias(name, prev))
		prev = name
	}
	if got, ok := f.Resolve("hopc@example.com"); !ok || !slices.Equal(got, []string{"end@example.com"}) {
		t.Errorf("short chain: %v %v", got, ok)
	}
	if got, ok := f.Resolve(prev); ok {
		t.Errorf("chain deeper than %d resolved: %v", maxAliasDepth, got)
	}
}

func TestAuthenticate(t *testing.T) {
	f := fixture(t)
	for _, tc := range []struct {
		user, pw string
		ok       bool
	}{
		{"alice@example.com", "alice-pw", true},
		{"ALICE@example.COM", "alice-pw", true},
		{"bob@example.com", "bob-pw", true},
		{"alice@example.com", "bob-pw", false},
		{"alice@example.com", "Alice-pw", false},
		{"alice@example.com", "", false},
		{"alice+tag@example.com", "alice-pw", false},
		{"info@example.com", "alice-pw", false},
		{"nobody@example.com", "alice-pw", false},
		{"alice@example.com", strings.Repeat("x", maxPasswordLen+1), false},
	} {
		acct, err := f.Authenticate(context.Background(), tc.user, tc.pw)
		if tc.ok {
			if err != nil || acct.Address != strings.ToLower(tc.user) {
				t.Errorf("Authenticate(%q, %q) = %v, %v", tc.user, tc.pw, acct.Address, err)
			}
		} else if !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Authenticate(%q, %q) err = %v, want ErrBadCredentials", tc.user, tc.pw, err)
		}
	}
}

func TestOwns(t *testing.T) {
	f := fixture(t)
	for _, tc := range []struct {
		account, addr string
		want          bool
	}{
		{"alice@example.com", "alice@example.com", true},
		{"alice@example.com", "Alice@EXAMPLE.com", true},
		{"alice@example.com", "alice+lists@example.com", true},
		{"alice@example.com", "info@example.com", true},
		{"alice@example.com", "info+x@example.com", true},
		{"alice@example.com", "team@example.com", true},
		{"alice@example.com", "postmaster@example.com", true},
		{"bob@example.com", "postmaster@example.com", false},
		{"bob@example.com", "team@example.com", true},
		{"alice@example.com", "bob@example.com", false},
		{"alice@example.com", "bob+alice@example.com", false},
		{"alice@example.com", "ext.user@remote.net", false},
		{"alice@example.com", "alice@example.org", false},
		{"alice@example.com", "", false},
		{"ghost@example.com", "ghost@example.com", false},
	} {
		if got := f.Owns(tc.account, tc.addr); got != tc.want {
			t.Errorf("Owns(%q, %q) = %v, want %v", tc.account, tc.addr, got, tc.want)
		}
	}
}

func TestAdminErrors(t *testing.T) {
	f := fixture(t)
	for name, err := range map[string]error{
		"add existing":       f.Add("ALICE@example.com", "x"),
		"add over alias":     f.Add("info@example.com", "x"),
		"alias over account": f.AddAlias("alice@example.com", "bob@example.com"),
	} {
		if !errors.Is(err, ErrExists) {
			t.Errorf("%s: err = %v, want ErrExists", name, err)
		}
	}
	for name, err := range map[string]error{
		"passwd unknown":    f.SetPassword("nobody@example.com", "x"),
		"delete unknown":    f.Delete("nobody@example.com"),
		"del alias unknown": f.DeleteAlias("nobody@example.com"),
		"del alias account": f.DeleteAlias("alice@example.com"),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", name, err)
		}
	}
	for name, err := range map[string]error{
		"empty password":   f.Add("carol@example.com", ""),
		"bad address":      f.Add("carol", "pw"),
		"no targets":       f.AddAlias("x@example.com"),
		"self target":      f.AddAlias("x@example.com", "X@example.com"),
		"bad target":       f.AddAlias("x@example.com", "not an address"),
		"bracketed target": f.AddAlias("x@example.com", "<a@b.c>"),
	} {
		if err == nil {
			t.Errorf("%s: succeeded", name)
		}
	}
}

func TestAdminRoundTrip(t *testing.T) {
	f := fixture(t)
	must(t, f.SetPassword("alice@example.com", "new-pw"))
	if _, err := f.Authenticate(context.Background(), "alice@example.com", "alice-pw"); err == nil {
		t.Error("old password still works")
	}
	if _, err := f.Authenticate(context.Background(), "alice@example.com", "new-pw"); err != nil {
		t.Errorf("new password: %v", err)
	}
	must(t, f.AddAlias("info@example.com", "Alice@example.com", "carol@remote.net"))
	if got := f.Aliases()["info@example.com"]; !slices.Equal(got, []string{"alice@example.com", "bob@example.com", "carol@remote.net"}) {
		t.Errorf("merged alias = %q", got)
	}
	must(t, f.Delete("bob@example.com"))
	must(t, f.DeleteAlias("loop1@example.com"))
	var addrs []string
	for _, a := range f.List() {
		addrs = append(addrs, a.Address)
	}
	if !slices.Equal(addrs, []string{"alice@example.com"}) {
		t.Errorf("List = %v", addrs)
	}
	if _, ok := f.Aliases()["loop1@example.com"]; ok {
		t.Error("deleted alias still listed")
	}
	if _, ok := f.Lookup("bob@example.com"); ok {
		t.Error("deleted account still found")
	}
}

func TestFileContent(t *testing.T) {
	f, p := newStore(t)
	must(t, f.Add("alice@example.com", "secret-password"))
	must(t, f.AddAlias("info@example.com", "alice@example.com"))
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "secret-password") {
		t.Fatal("clear password stored")
	}
	var df diskFormat
	if err := json.Unmarshal(raw, &df); err != nil {
		t.Fatal(err)
	}
	if df.Version != 1 || len(df.Accounts) != 1 || df.Accounts[0].Address != "alice@example.com" {
		t.Errorf("file content %s", raw)
	}
	if !strings.HasPrefix(df.Accounts[0].PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q", df.Accounts[0].PasswordHash)
	}
	if !slices.Equal(df.Aliases["info@example.com"], []string{"alice@example.com"}) {
		t.Errorf("aliases %v", df.Aliases)
	}
	// Only the file and its lock remain: no temp files.
	es, _ := os.ReadDir(filepath.Dir(p))
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"accounts.json", "accounts.json.lock"}) {
		t.Errorf("directory holds %v", names)
	}
}

func TestReloadAcrossInstances(t *testing.T) {
	server, p := newStore(t)
	if _, ok := server.Resolve("alice@example.com"); ok {
		t.Fatal("empty store resolved alice")
	}
	admin, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	must(t, admin.Add("alice@example.com", "pw1"))
	if _, ok := server.Resolve("alice@example.com"); !ok {
		t.Fatal("server did not see the new account")
	}
	// The server's own write must keep the admin's account (flock +
	// fresh read), and the admin must see the server's change.
	must(t, server.Add("bob@example.com", "pw2"))
	if got := len(admin.List()); got != 2 {
		t.Fatalf("admin sees %d accounts", got)
	}
	must(t, admin.SetPassword("alice@example.com", "pw3"))
	if _, err := server.Authenticate(context.Background(), "alice@example.com", "pw3"); err != nil {
		t.Errorf("server did not pick up the new password: %v", err)
	}
	must(t, os.Remove(p))
	if _, ok := server.Lookup("alice@example.com"); ok {
		t.Error("account still there after the file was removed")
	}
}

func TestCorruptFileKeepsLastGood(t *testing.T) {
	f, p := newStore(t)
	must(t, f.Add("alice@example.com", "pw"))
	must(t, os.WriteFile(p, []byte("{not json"), 0o600))
	if _, ok := f.Lookup("alice@example.com"); !ok {
		t.Error("last good content lost")
	}
	if err := f.Reload(); err == nil {
		t.Error("Reload reported no error for a corrupt file")
	}
	if err := f.Add("bob@example.com", "pw"); err == nil {
		t.Error("Add overwrote a corrupt file")
	}
	if raw, _ := os.ReadFile(p); string(raw) != "{not json" {
		t.Errorf("corrupt file was changed: %q", raw)
	}
	if _, err := Open(p); err == nil {
		t.Error("Open accepted a corrupt file")
	}
}

func TestConcurrentWriters(t *testing.T) {
	_, p := newStore(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 2 {
		f, err := Open(p) // one instance per "process"
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- f.AddAlias("list@example.com", string(rune('a'+w))+string(rune('0'+i))+"@remote.net")
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	f, err := Open(p)
	must(t, err)
	if got := f.Aliases()["list@example.com"]; len(got) != 6 {
		t.Fatalf("lost updates: %v", got)
	}
}

func TestParseRejects(t *testing.T) {
	for name, raw := range map[string]string{
		"version":        `{"version":2}`,
		"unknown field":  `{"version":1,"extra":true}`,
		"bad address":    `{"version":1,"accounts":[{"address":"x"}]}`,
		"duplicate":      `{"version":1,"accounts":[{"address":"a@b"},{"address":"A@b"}]}`,
		"alias=account":  `{"version":1,"accounts":[{"address":"a@b"}],"aliases":{"a@b":["c@d"]}}`,
		"empty alias":    `{"version":1,"aliases":{"a@b":[]}}`,
		"bad alias name": `{"version":1,"aliases":{"a/b@c":["c@d"]}}`,
		"bad target":     `{"version":1,"aliases":{"a@b":["c d"]}}`,
	} {
		if _, err := parse([]byte(raw)); err == nil {
			t.Errorf("%s: parse accepted %s", name, raw)
		}
	}
}

// hi is an independent PBKDF2-HMAC-SHA-256 for one output block, written
// from RFC 5802 §2.2's definition of Hi().
func hi(password, salt []byte, iterations int) []byte {
	mac := func(key, msg []byte) []byte { m := hmac.New(sha256.New, key); m.Write(msg); return m.Sum(nil) }
	u := mac(password, append(append([]byte(nil), salt...), 0, 0, 0, 1))
	out := slices.Clone(u)
	for range iterations - 1 {
		u = mac(password, u)
		for i := range out {
			out[i] ^= u[i]
		}
	}
	return out
}

func TestScramKeysIndependent(t *testing.T) {
	f, _ := newStore(t)
	must(t, f.Add("alice@example.com", "pencil"))
	acct, ok := f.Lookup("alice@example.com")
	if !ok {
		t.Fatal("no account")
	}
	k := acct.Scram
	if k.Iterations != 4096 || len(k.Salt) != 16 {
		t.Fatalf("iterations %d, salt %d bytes", k.Iterations, len(k.Salt))
	}
	salted := hi([]byte("pencil"), k.Salt, k.Iterations)
	m := hmac.New(sha256.New, salted)
	m.Write([]byte("Client Key"))
	stored := sha256.Sum256(m.Sum(nil))
	if !hmac.Equal(stored[:], k.StoredKey) {
		t.Error("StoredKey differs from an independent computation")
	}
	m = hmac.New(sha256.New, salted)
	m.Write([]byte("Server Key"))
	if !hmac.Equal(m.Sum(nil), k.ServerKey) {
		t.Error("ServerKey differs from an independent computation")
	}
}

// TestScramRFC7677Vector checks DeriveScram against the exchange in
// RFC 7677 §3 (user "user", password "pencil"): the client proof must
// verify against StoredKey and the server signature must match.
func TestScramRFC7677Vector(t *testing.T) {
	dec := base64.StdEncoding.DecodeString
	salt, _ := dec("W22ZaJ0SNY7soEsUEjb6gQ==")
	k, err := DeriveScram("pencil", salt, 4096)
	must(t, err)
	authMessage := "n=user,r=rOprNGfwEbeRWgbNEkqO," +
		"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096," +
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	proof, _ := dec("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
	wantServerSig, _ := dec("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
	clientSig := hmacSHA256(k.StoredKey, authMessage)
	clientKey := make([]byte, len(proof))
	for i := range proof {
		clientKey[i] = proof[i] ^ clientSig[i]
	}
	if got := sha256.Sum256(clientKey); !hmac.Equal(got[:], k.StoredKey) {
		t.Error("RFC 7677 client proof does not verify against StoredKey")
	}
	if got := hmacSHA256(k.ServerKey, authMessage); !hmac.Equal(got, wantServerSig) {
		t.Error("server signature differs from RFC 7677")
	}
}

func TestParsePHC(t *testing.T) {
	f, _ := newStore(t)
	must(t, f.Add("a@example.com", "pw"))
	a, _ := f.Lookup("a@example.com")
	if _, err := parsePHC(a.PasswordHash); err != nil {
		t.Fatalf("own hash: %v", err)
	}
	for _, bad := range []string{
		"",
		"$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
	} {
		if _, err := parsePHC(bad); err == nil {
			t.Errorf("parsePHC(%q) accepted", bad)
		}
	}
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
